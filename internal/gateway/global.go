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
		if g.globalDown.Load() {
			return g.globalUnavailable(in, errStoreDown)
		}
		// A shared limit that cannot answer quickly is treated as down: a
		// Redis outage must not add seconds to every call.
		actx, cancel := context.WithTimeout(ctx, globalLimitTimeout)
		ok, wait, err := rl.Allow(actx, key, rate, burst, g.opts.Clock.Now())
		cancel()
		if err != nil {
			g.markGlobalDown()
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
	// globalLimitTimeout bounds one shared-limit check. It is tighter than
	// state.redis_timeout (which bounds every store call, this one too)
	// because every call of a globally limited integration makes it.
	globalLimitTimeout = 100 * time.Millisecond
	// globalProbeEvery is how often a down store is pinged until it answers.
	globalProbeEvery = 100 * time.Millisecond
)

var errStoreDown = errors.New("shared store down; waiting for it to answer a ping")

// markGlobalDown stops asking the store on the request path and starts one
// prober that pings it until it answers, then lets requests use it again:
// during an outage callers pay no timeout, and recovery follows within a
// probe interval.
func (g *Gateway) markGlobalDown() {
	g.globalDown.Store(true)
	if g.globalProbing.Swap(true) {
		return
	}
	go func() {
		defer g.globalProbing.Store(false)
		for {
			time.Sleep(globalProbeEvery)
			ctx, cancel := context.WithTimeout(context.Background(), globalLimitTimeout)
			err := g.opts.Store.Ping(ctx)
			cancel()
			if err == nil {
				g.globalDown.Store(false)
				g.log.Info("shared state store answers again; global rate limits back on")
				return
			}
		}
	}()
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
