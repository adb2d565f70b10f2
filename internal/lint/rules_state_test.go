package lint

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/portcullis-dev/portcullis/internal/conf"
)

// TestStateRules: settings that validate but silently do nothing in a fleet
// or for the queue are warned about, each at its line with its fix.
func TestStateRules(t *testing.T) {
	const redis = "state: {backend: redis, redis_url: \"redis://redis.internal:6379/0\"}\n"
	type finding struct {
		ID   conf.Code
		Path string
		Line int
	}
	tests := []struct {
		name    string
		replace [][2]string // old, new pairs applied to hardened
		add     string      // appended to hardened
		want    []finding
		fix     []string // substrings of each finding's fix, in order
	}{
		{name: "redis-with-per-replica-limit", add: redis,
			want: []finding{{conf.PerReplicaLimit, "integrations.payments.rate_limit", 17}},
			fix:  []string{"Add global: true to integrations.payments.rate_limit"}},
		{name: "redis-with-global-limit", add: redis, replace: [][2]string{{"burst: 5}", "burst: 5, global: true}"}}},
		{name: "memory-with-per-replica-limit-is-fine"},
		{name: "fallback-queue-without-queued-routes", add: "    fallback: {stale_for: 1m, queue: true}\n",
			want: []finding{{conf.QueueWithoutRoutes, "integrations.payments.fallback.queue", 21}},
			fix:  []string{"Add queue: true to the routes of integrations.payments"}},
		{name: "queued-route-without-queue-fallback",
			replace: [][2]string{{`path: "/v1/charges", callers: [billing]}`, `path: "/v1/charges", callers: [billing], queue: true}`}},
			want:    []finding{{conf.QueueRouteWithoutFallback, "integrations.payments.routes[1].queue", 14}},
			fix:     []string{"Add fallback: {queue: true} to integrations.payments"}},
		{name: "queued-route-with-stale-only-fallback", add: "    fallback: {stale_for: 1m}\n",
			replace: [][2]string{{`path: "/v1/charges", callers: [billing]}`, `path: "/v1/charges", callers: [billing], queue: true}`}},
			want:    []finding{{conf.QueueRouteWithoutFallback, "integrations.payments.routes[1].queue", 14}},
			fix:     []string{"Add fallback: {queue: true} to integrations.payments"}},
		{name: "queue-at-both-ends", add: "    fallback: {queue: true}\n",
			replace: [][2]string{{`path: "/v1/charges", callers: [billing]}`, `path: "/v1/charges", callers: [billing], queue: true}`}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := hardened
			for _, r := range tc.replace {
				if !strings.Contains(src, r[0]) {
					t.Fatalf("test setup: %q not in the base config", r[0])
				}
				src = strings.Replace(src, r[0], r[1], 1)
			}
			r := Check("t.yaml", []byte(src+tc.add))
			var got []finding
			for _, f := range r.Findings {
				got = append(got, finding{f.ID, f.Path, f.Line})
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Fatalf("findings (-want +got):\n%s\n%+v", d, r.Findings)
			}
			for i, f := range r.Findings {
				if f.Severity != conf.Warning || !strings.Contains(f.Fix, tc.fix[i]) {
					t.Errorf("%s: severity %s, fix %q; want a warning whose fix says %q", f.ID, f.Severity, f.Fix, tc.fix[i])
				}
			}
		})
	}
}
