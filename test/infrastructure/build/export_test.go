package build

import (
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// QuickRetries makes the tries of a build that failed on the network follow each other at once.
func QuickRetries() (restore func()) {
	old := buildBackoff
	buildBackoff = wait.Backoff{Duration: 1, Steps: old.Steps}
	return func() { buildBackoff = old }
}

// QuickGauge makes the gauge measure every millisecond.
func QuickGauge() (restore func()) {
	old := gaugeInterval
	gaugeInterval = time.Millisecond
	return func() { gaugeInterval = old }
}
