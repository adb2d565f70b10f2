package webhook

import (
	"context"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/portcullis-dev/portcullis/internal/clock"
	"github.com/portcullis-dev/portcullis/internal/store"
	"github.com/portcullis-dev/portcullis/internal/store/storetest"
)

// redisURL returns the test Redis (scripts/test.sh starts it), skipping the
// test when there is none unless PORTCULLIS_REQUIRE_SERVERS=1.
func redisURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv("PORTCULLIS_REDIS_URL")
	if u == "" {
		if os.Getenv("PORTCULLIS_REQUIRE_SERVERS") == "1" {
			t.Fatal("PORTCULLIS_REDIS_URL is unset but PORTCULLIS_REQUIRE_SERVERS=1")
		}
		t.Skip("PORTCULLIS_REDIS_URL unset (scripts/test.sh sets it)")
	}
	return u
}

// Two replicas over one Redis: a webhook accepted by one is a replay to the
// other, and whichever Forwarder claims it delivers it once.
func TestReplicasShareReplayIDsAndQueueOverRedis(t *testing.T) {
	url := redisURL(t)
	prefix := "portcullis-test-" + newID("webhook_") + ":"
	rcv := newReceiver(t, time.Now)
	rcv.up()
	replica := func() (*fixture, *Handler, *Forwarder) {
		r, err := store.OpenRedis(url, store.RedisOptions{Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Close() })
		f := newFixture(t, testWebhooks(rcv.url()))
		f.clock, f.store = clock.NewFake(time.Now()), r
		f.opts.Store, f.opts.Clock = r, clock.System()
		return f, f.handler(), f.forwarder()
	}
	fa, ha, fwA := replica()
	fb, hb, fwB := replica()

	if rec := serve(ha, fa.signed("payments", "msg_replicas", eventBody, "env:STD_NEW")); rec.Code != http.StatusOK {
		t.Fatalf("replica A: %d %s", rec.Code, rec.Body)
	}
	if rec := serve(hb, fb.signed("payments", "msg_replicas", eventBody, "env:STD_NEW")); rec.Code != http.StatusUnauthorized {
		t.Fatalf("replay to replica B: %d %s, want 401", rec.Code, rec.Body)
	}
	ctx := context.Background()
	fwB.pass(ctx)
	fwA.pass(ctx)
	time.Sleep(50 * time.Millisecond)
	fwA.pass(ctx)
	if diff := cmp.Diff(map[string]int{"msg_replicas": 1}, idCounts(rcv.deliveries())); diff != "" {
		t.Errorf("deliveries (-want +got):\n%s", diff)
	}
	if depth, _, err := fa.store.Stats(ctx, QueueName("payments")); err != nil || depth != 0 {
		t.Errorf("queue depth %d (%v), want 0", depth, err)
	}
}

// TestReplayCheckWhenRedisHangs: with Redis silent (paused, so connections
// hang rather than fail), a webhook is answered within state.redis_timeout,
// as on_redis_down.replay says: fail_closed refuses it with 503 (the vendor
// retries), fail_open accepts it unchecked unless it must be stored for
// forwarding. Before the bound, go-redis waited 5 s for the reply.
func TestReplayCheckWhenRedisHangs(t *testing.T) {
	srv := storetest.StartServer(t)
	const slack = 750 * time.Millisecond // scheduling on a loaded machine under -race
	tests := []struct {
		name      string
		failOpen  bool
		forwardTo string
		want      int
	}{
		{"fail-closed", false, "http://127.0.0.1:1/unused", http.StatusServiceUnavailable},
		{"fail-open-unforwarded", true, "", http.StatusOK},
		{"fail-open-forwarded-still-needs-the-store", true, "http://127.0.0.1:1/unused", http.StatusServiceUnavailable},
	}
	handlers := make([]*Handler, len(tests))
	fixtures := make([]*fixture, len(tests))
	for i, tc := range tests {
		r, err := store.OpenRedis(srv.URL(), store.RedisOptions{Prefix: "portcullis-test-" + newID("hang_") + ":"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Close() })
		if err := r.Ping(context.Background()); err != nil { // a pooled connection, as a running replica has
			t.Fatal(err)
		}
		f := newFixture(t, testWebhooks(tc.forwardTo))
		f.store, f.opts.Store, f.opts.ReplayFailOpen = r, r, tc.failOpen
		fixtures[i], handlers[i] = f, f.handler()
	}
	srv.Pause()
	defer srv.Resume()
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			rec := serve(handlers[i], fixtures[i].signed("payments", "msg_hang", eventBody, "env:STD_NEW"))
			took := time.Since(start)
			if rec.Code != tc.want {
				t.Errorf("status %d %s, want %d", rec.Code, rec.Body, tc.want)
			}
			if took > store.DefaultTimeout+slack {
				t.Errorf("answered after %v, want within the %v bound (+%v slack)", took, store.DefaultTimeout, slack)
			}
		})
	}
}
