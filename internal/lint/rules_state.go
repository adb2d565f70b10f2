package lint

import (
	"fmt"
	"slices"

	"github.com/portcullis-dev/portcullis/internal/conf"
	"github.com/portcullis-dev/portcullis/internal/config"
)

// stateUse finds settings of one integration that validate but silently do
// nothing, or less than they seem, given the state backend: a per-replica
// rate limit in a fleet, and queueing switched on at one end only (the
// gateway queues a call only when fallback.queue and the route's queue are
// both set).
func (c *checker) stateUse(p string, in *config.Integration) {
	if rl := in.RateLimit; rl != nil && !rl.Global && c.cfg.State.Backend == "redis" {
		c.add(conf.PerReplicaLimit, p+".rate_limit",
			fmt.Sprintf("Add global: true to %s.rate_limit, so that every replica spends from one budget kept in Redis; if the limit is meant per replica, divide it by the number of replicas.", p),
			"state.backend is redis, so several replicas may run, but this rate_limit is not global: each replica allows the full rate on its own, so N replicas allow N × the vendor's quota")
	}
	queueRoutes := slices.ContainsFunc(in.Routes, func(r *config.Route) bool { return r != nil && r.Queue })
	fallbackQueue := in.Fallback != nil && in.Fallback.Queue
	if fallbackQueue && !queueRoutes {
		c.add(conf.QueueWithoutRoutes, p+".fallback.queue",
			fmt.Sprintf("Add queue: true to the routes of %s whose calls may be queued, e.g. {method: POST, path: /v1/charges, callers: [billing], queue: true}; or remove fallback.queue.", p),
			"fallback.queue is on but no route has queue: true, so no call is ever queued: Prefer: respond-async is honoured only on routes marked queue: true")
	}
	if fallbackQueue {
		return
	}
	for i, r := range in.Routes {
		if r != nil && r.Queue {
			c.add(conf.QueueRouteWithoutFallback, fmt.Sprintf("%s.routes[%d].queue", p, i),
				fmt.Sprintf("Add fallback: {queue: true} to %s; or remove queue: true from this route.", p),
				"%s %s has queue: true but the integration has no fallback.queue, so Prefer: respond-async calls are sent to the vendor as usual and never queued", r.Method, r.Path)
		}
	}
}
