package gateway

import (
	"context"
	"errors"

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
		ok, wait, err := rl.Allow(ctx, key, rate, burst, timeNow())
		if err != nil {
			if in.globalFailClosed {
				return problem.Wrap(problem.RateLimited, "the shared rate limit cannot be checked; retry later", err)
			}
			g.log.Debug("global rate limit unavailable; local limiter only", "integration", in.name, "cause", err)
			return nil
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
