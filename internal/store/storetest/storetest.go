// Package storetest owns the conformance suite every store backend must pass:
// Run checks the KV, Queue, Usage and RateLimiter contracts on a fresh store
// per case, and RunDurable checks what a backend acknowledged survives a
// restart (or a replica's death). It also holds the shared convention for
// tests that need a real Redis (RedisURL).
package storetest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/portcullis-dev/portcullis/internal/store"
)

// Opener returns a fresh, empty store and arranges for it to be closed when
// t ends.
type Opener func(t *testing.T) store.Store

// Reopener closes s and returns another handle on the same state: a restart
// of the process for the embedded store, another replica for Redis.
type Reopener func(t *testing.T, s store.Store) store.Store

type suiteCase struct {
	name string
	// serial cases run alone (timing-sensitive); the rest run in parallel,
	// so their short sleeps overlap.
	serial bool
	fn     func(t *testing.T, s store.Store)
}

// Run runs the conformance suite against the stores open returns. Every
// backend must also implement store.RateLimiter.
func Run(t *testing.T, open Opener) {
	t.Helper()
	var cases []suiteCase
	cases = append(cases, kvCases...)
	cases = append(cases, queueCases...)
	cases = append(cases, usageCases...)
	cases = append(cases, limiterCases...)
	cases = append(cases, suiteCase{name: "ping", fn: func(t *testing.T, s store.Store) {
		if err := s.Ping(context.Background()); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	}})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.serial {
				t.Parallel()
			}
			tc.fn(t, open(t))
		})
	}
}

// RedisURL returns PORTCULLIS_REDIS_URL. When it is unset the test is
// skipped, unless PORTCULLIS_REQUIRE_SERVERS=1, when it fails: CI never
// silently skips the real-server tests.
func RedisURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("PORTCULLIS_REDIS_URL")
	if u != "" {
		return u
	}
	if os.Getenv("PORTCULLIS_REQUIRE_SERVERS") == "1" {
		t.Fatal("PORTCULLIS_REDIS_URL is unset but PORTCULLIS_REQUIRE_SERVERS=1 (run scripts/start-redis.sh)")
	}
	t.Skip("PORTCULLIS_REDIS_URL is unset; run scripts/start-redis.sh and export it")
	return ""
}

// jobCmp compares jobs across backends: times by instant (location and
// monotonic readings differ after a round trip through disk or Redis), nil
// and empty byte slices alike, and Updated (set by the backend) ignored.
var jobCmp = []cmp.Option{
	cmpopts.EquateApproxTime(0),
	cmpopts.EquateEmpty(),
	cmpopts.IgnoreFields(store.Job{}, "Updated"),
}

func ctx() context.Context { return context.Background() }

// eventually polls cond every 20ms until it holds or d passes; backends whose
// clock is elsewhere (Redis TIME) may see a deadline a little later.
func eventually(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}
