package store

import (
	"context"
	"sync"
	"time"

	"github.com/portcullis-dev/portcullis/internal/clock"
)

// RateLimiter is a rate limiter whose budget is shared by everything using
// the same backend: with Redis, every replica draws from one budget per key
// (issue 7's global limits); with Memory and Embedded, the one process does.
//
// It implements GCRA (the generic cell rate algorithm): each key holds one
// timestamp, the theoretical arrival time (TAT) of the next call, so there is
// no background refill and no per-token state. A call is admitted when, after
// adding one emission interval (1/rate) to max(TAT, now), the TAT would be at
// most burst intervals ahead of now. From idle, burst calls pass at once and
// then one per interval: over t seconds at most rate×t + burst.
type RateLimiter interface {
	// Allow reports whether one call under key may proceed at ratePerSec with
	// bursts of up to burst calls (burst < 1 counts as 1). When it may not,
	// retryAfter is how long until it would, and nothing is consumed.
	// now is the caller's clock for in-process backends (zero: the backend's
	// own clock); Redis ignores it and uses the server's clock, so replicas
	// whose clocks disagree still share one timeline. A rate that is not a
	// positive number is ErrInvalid.
	Allow(ctx context.Context, key string, ratePerSec float64, burst int, now time.Time) (ok bool, retryAfter time.Duration, err error)
}

// gcraStep is one GCRA decision: given the stored TAT, it returns the TAT to
// store, whether the call is admitted and, if not, how long until it would be.
func gcraStep(tat, now time.Time, interval, tolerance time.Duration) (time.Time, bool, time.Duration) {
	if tat.Before(now) {
		tat = now
	}
	next := tat.Add(interval)
	if allowAt := next.Add(-tolerance); now.Before(allowAt) {
		return tat, false, allowAt.Sub(now)
	}
	return next, true, 0
}

// localLimiter is the in-process GCRA used by Memory and Embedded: a single
// process needs no shared state, and limiter state need not survive a
// restart (an empty TAT is the same as a fully recovered budget).
type localLimiter struct {
	clk clock.Clock

	mu    sync.Mutex
	tat   map[string]time.Time
	calls int
}

// sweepEvery is how many Allow calls pass between sweeps of keys whose TAT
// is already in the past (indistinguishable from absent keys), so a limiter
// keyed per caller does not grow without bound.
const sweepEvery = 4096

func newLocalLimiter(clk clock.Clock) *localLimiter {
	return &localLimiter{clk: clk, tat: map[string]time.Time{}}
}

func (l *localLimiter) Allow(_ context.Context, key string, ratePerSec float64, burst int, now time.Time) (bool, time.Duration, error) {
	interval, tolerance, err := limitParams(ratePerSec, burst)
	if err != nil {
		return false, 0, err
	}
	if now.IsZero() {
		now = l.clk.Now()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls++
	if l.calls%sweepEvery == 0 {
		for k, t := range l.tat {
			if !t.After(now) {
				delete(l.tat, k)
			}
		}
	}
	tat, ok, retry := gcraStep(l.tat[key], now, interval, tolerance)
	if ok {
		l.tat[key] = tat
	}
	return ok, retry, nil
}
