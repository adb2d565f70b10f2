package gateway

import (
	"context"
	"errors"

	"github.com/portcullis-dev/portcullis/internal/problem"
	"github.com/portcullis-dev/portcullis/internal/resilience"
)

// globalLimit applies rate_limit.global: the same token buckets, kept in
// the shared store so that every replica spends from one budget. The local
// limiter always runs first and stays the floor; when the store is down,
// state.on_redis_down.rate_limit decides: fail_open (default: the local
// limiter alone) or fail_closed (refuse).
func (g *Gateway) globalLimit(ctx context.Context, in *integration, caller string) error {
	if !in.global || g.global == nil {
		return nil
	}
	check := func(key string, rate float64, burst int) error {
		ok, wait, err := g.global.Allow(ctx, key, rate, burst)
		if err != nil {
			return g.globalUnavailable(in, err)
		}
		if !ok {
			pe := problem.Wrap(problem.RateLimited, "rate limit reached; retry later", errors.New("global limit"))
			pe.RetryAfter = resilience.RetryAfterSeconds(wait)
			return pe
		}
		return nil
	}
	// The same bucket sizes as the local limiter (LimiterConfig.Buckets):
	// burst for the integration, caller_burst for each caller.
	b := in.globalBuckets
	if err := check("rl:"+in.name, b.Rate, b.Burst); err != nil {
		return err
	}
	return check("rl:"+in.name+":"+caller, b.PerCaller, b.CallerBurst)
}

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
