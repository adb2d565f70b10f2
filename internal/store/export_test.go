package store

import (
	"context"
	"net"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// CountRoundTrips returns a counter of the network round trips r makes from
// now on: every command and every pipeline is one.
func CountRoundTrips(r *Redis) *atomic.Int64 {
	n := new(atomic.Int64)
	r.client.AddHook(rttHook{n})
	return n
}

type rttHook struct{ n *atomic.Int64 }

func (h rttHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) { return next(ctx, network, addr) }
}

func (h rttHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { h.n.Add(1); return next(ctx, cmd) }
}

func (h rttHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { h.n.Add(1); return next(ctx, cmds) }
}

// MarkedDown reports whether r currently fails calls at once (an outage).
func MarkedDown(r *Redis) bool { return r.down.Load() }
