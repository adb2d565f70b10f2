package gateway

import (
	"context"
	"errors"
	"time"

	"github.com/portcullis-dev/portcullis/internal/problem"
	"github.com/portcullis-dev/portcullis/internal/resilience"
	"github.com/portcullis-dev/portcullis/internal/store"
)

// globalLimit applies rate_limit.global: the same token buckets, kept in
// the shared store so that every replica spends from one budget. The local
// limiter always runs first and stays the floor; when the store is down,
// state.on_redis_down.rate_limit decides: fail_open (default: the local
// limiter alone) or fail_closed (refuse).
func (g *Gateway) globalLimit(ctx context.Context, in *integration, caller string) error {
	if !in.global {
		return nil
	}
	rl, ok := g.opts.Store.(store.RateLimiter)
	if !ok {
		return nil
	}
	check := func(key string, rate float64, burst int) error {
		if rate <= 0 {
			return nil
		}
		if burst <= 0 {
			burst = 1
		}
		if g.globalDownUntil.Load() > timeNow().UnixNano() {
			return g.globalUnavailable(in, errStoreRecentlyDown)
		}
		// A shared limit that cannot answer quickly is treated as down: a
		// Redis outage must not add seconds to every call.
		actx, cancel := context.WithTimeout(ctx, globalLimitTimeout)
		ok, wait, err := rl.Allow(actx, key, rate, burst, timeNow())
		cancel()
		if err != nil {
			g.globalDownUntil.Store(timeNow().Add(globalLimitBackoff).UnixNano())
			return g.globalUnavailable(in, err)
		}
		if !ok {
			pe := problem.Wrap(problem.RateLimited, "rate limit reached; retry later", errors.New("global limit"))
			pe.RetryAfter = resilience.RetryAfterSeconds(wait)
			return pe
		}
		return nil
	}
	if err := check("rl:"+in.name, in.globalRate, in.globalBurst); err != nil {
		return err
	}
	return check("rl:"+in.name+":"+caller, in.globalPerCaller, in.globalBurst)
}

const (
	// globalLimitTimeout bounds one shared-limit check.
	globalLimitTimeout = 100 * time.Millisecond
	// globalLimitBackoff is how long the store is skipped after it failed.
	globalLimitBackoff = time.Second
)

var errStoreRecentlyDown = errors.New("shared store failed within the last second")

// globalUnavailable applies on_redis_down.rate_limit.
func (g *Gateway) globalUnavailable(in *integration, err error) error {
	if in.globalFailClosed {
		pe := problem.Wrap(problem.RateLimited, "the shared rate limit cannot be checked; retry later", err)
		pe.RetryAfter = 1
		return pe
	}
	g.log.Debug("global rate limit unavailable; local limiter only", "integration", in.name, "cause", err)
	return nil
}
