package store

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/redis/go-redis/v9"
)

// How the Redis store keeps an outage from holding callers up. Two parts:
//
//  1. Every call is bounded by RedisOptions.Timeout (bound), and the
//     go-redis client is set up so that nothing inside it outlives that
//     deadline (boundClient): socket reads and writes follow the context,
//     and dialing, waiting for a pooled connection and the retry are each
//     capped by the same duration.
//  2. A call that Redis does not answer (a timeout, a refused or reset
//     connection, an exhausted pool) marks the store down (outageHook):
//     later calls fail at once with ErrUnavailable instead of each waiting
//     out the bound, and a prober pings Redis every probeEvery until it
//     answers. Ping always asks Redis (readiness, the prober); its context
//     carries probing{}, so that the handshake of a connection it dials
//     (HELLO, SELECT: go-redis runs them through the same hooks) is let
//     through too.
//
// An answer from Redis, even an error reply (OOM under noeviction, a
// script's own error), is not an outage. Nor is a caller giving up first:
// a deadline shorter than the bound (the shared rate limit's) or a
// cancelled request says nothing about Redis.

// probeEvery is how often a store marked down pings Redis.
const probeEvery = 100 * time.Millisecond

// errNoAnswer is the cause of a call's context when the store's own bound
// ran out (not the caller's deadline).
var errNoAnswer = errors.New("redis did not answer within state.redis_timeout")

// errDown is what calls get while the store is marked down.
var errDown = errors.New("redis did not answer a recent call; failing at once until it answers a ping")

// boundClient sets the go-redis options so that no call can take longer
// than timeout, whatever the URL's query parameters said. go-redis's
// defaults would not: socket deadlines ignore the context unless
// ContextTimeoutEnabled, reads wait 5 s, a pool wait up to 6 s, a dial
// is tried 5 times 100 ms apart, and a failed command 3 more times.
func boundClient(o *redis.Options, timeout time.Duration) {
	o.ContextTimeoutEnabled = true
	o.DialTimeout = timeout
	o.ReadTimeout = timeout
	o.WriteTimeout = timeout
	o.PoolTimeout = timeout
	// One retry (after 8 to 24 ms) still covers a pooled connection that
	// Redis closed while idle; the context's deadline ends it like any
	// other wait. The dial itself is not retried: the next call dials again.
	o.MaxRetries = 1
	o.DialerRetries = 1
}

// bound gives one call its deadline: Timeout from now, or the caller's
// own deadline if that comes first.
func (r *Redis) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(ctx, r.opts.Timeout, errNoAnswer)
}

// probing marks the context of Ping, which reaches Redis even while the
// store is down.
type probing struct{}

// failFast reports whether a command under ctx must not reach Redis.
func (r *Redis) failFast(ctx context.Context) bool {
	return r.down.Load() && ctx.Value(probing{}) == nil
}

// outageHook fails commands at once while the store is down, and marks it
// down when a command finds Redis not answering.
type outageHook struct{ r *Redis }

func (h outageHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) { return next(ctx, network, addr) }
}

func (h outageHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if h.r.failFast(ctx) {
			cmd.SetErr(errDown)
			return errDown
		}
		err := next(ctx, cmd)
		h.r.observe(ctx, err)
		return err
	}
}

func (h outageHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if h.r.failFast(ctx) {
			for _, cmd := range cmds {
				cmd.SetErr(errDown)
			}
			return errDown
		}
		err := next(ctx, cmds)
		h.r.observe(ctx, err)
		return err
	}
}

// observe marks the store down if err says Redis did not answer.
func (r *Redis) observe(ctx context.Context, err error) {
	if err == nil || errors.Is(err, redis.Nil) || errors.Is(err, redis.ErrClosed) {
		return
	}
	var reply redis.Error
	if errors.As(err, &reply) {
		return // Redis answered, with an error
	}
	if ctx.Err() != nil && !errors.Is(context.Cause(ctx), errNoAnswer) {
		return // the caller gave up first
	}
	r.markDown(err)
}

// markDown switches to failing at once and starts the prober, unless the
// store is already down.
func (r *Redis) markDown(cause error) {
	r.downMu.Lock()
	defer r.downMu.Unlock()
	if r.down.Load() {
		return
	}
	r.down.Store(true)
	r.opts.Logger.Warn("state store unavailable: redis did not answer; calls fail at once until it answers a ping",
		"timeout", r.opts.Timeout.String(), "cause", cause.Error())
	go r.probe()
}

// probe pings Redis every probeEvery until it answers (then calls reach
// Redis again) or the store is closed.
func (r *Redis) probe() {
	t := time.NewTicker(probeEvery)
	defer t.Stop()
	for {
		select {
		case <-r.closed:
			return
		case <-t.C:
		}
		if r.Ping(context.Background()) == nil {
			r.downMu.Lock()
			r.down.Store(false)
			r.downMu.Unlock()
			r.opts.Logger.Info("state store available again: redis answers")
			return
		}
	}
}
