package supervisor

import "time"

// backoff is the delay before the next retry of failed kernel operations: base after the first failure,
// doubled after each failed retry, at most max; a success starts again from base. A plain value the owner
// steps, tested with no clock.
type backoff struct {
	base, max time.Duration
	fails     int // consecutive failed attempts
}

// failed records a failed attempt and returns the delay before the next one.
func (b *backoff) failed() time.Duration {
	b.fails++
	d := b.base
	for i := 1; i < b.fails && d < b.max; i++ {
		d *= 2
	}
	return min(d, b.max)
}

// succeeded records an attempt that worked.
func (b *backoff) succeeded() { b.fails = 0 }
