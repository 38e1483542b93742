package controller

import "time"

// Backoff is an exponential backoff: Base after the first failure, doubling, at most Max.
type Backoff struct {
	Base time.Duration
	Max  time.Duration
}

// Delay returns the wait after the n-th consecutive failure (n >= 1).
func (b Backoff) Delay(n int32) time.Duration {
	d := b.Base
	for i := int32(1); i < n && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}

// sooner returns the smaller of two waits, ignoring zero (no wait).
func sooner(a, b time.Duration) time.Duration {
	switch {
	case a <= 0:
		return b
	case b <= 0:
		return a
	default:
		return min(a, b)
	}
}
