package build

import "k8s.io/apimachinery/pkg/util/wait"

// QuickRetries makes the tries of a build that failed on the network follow each other at once.
func QuickRetries() (restore func()) {
	old := buildBackoff
	buildBackoff = wait.Backoff{Duration: 1, Steps: old.Steps}
	return func() { buildBackoff = old }
}
