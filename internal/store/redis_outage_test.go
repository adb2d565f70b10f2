package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/store"
	"github.com/portcullis-dev/portcullis/internal/store/storetest"
)

// storeCall is one call of the Store (or RateLimiter) API.
type storeCall struct {
	name string
	call func(ctx context.Context, r *store.Redis) error
}

// everyCall is one call of each method that a caller's request, a webhook
// or a worker can make.
var everyCall = []storeCall{
	{"ping", func(ctx context.Context, r *store.Redis) error { return r.Ping(ctx) }},
	{"get", func(ctx context.Context, r *store.Redis) error { _, err := r.Get(ctx, "k"); return err }},
	{"set", func(ctx context.Context, r *store.Redis) error { return r.Set(ctx, "k", []byte("v"), time.Minute) }},
	{"set-nx", func(ctx context.Context, r *store.Redis) error {
		_, err := r.SetNX(ctx, "n", nil, time.Minute)
		return err
	}},
	{"delete", func(ctx context.Context, r *store.Redis) error { return r.Delete(ctx, "k") }},
	{"enqueue", func(ctx context.Context, r *store.Redis) error { return r.Enqueue(ctx, "q", store.Job{ID: "a"}) }},
	{"claim", func(ctx context.Context, r *store.Redis) error {
		_, err := r.Claim(ctx, "q", 1, time.Minute)
		return err
	}},
	{"complete", func(ctx context.Context, r *store.Redis) error {
		return r.Complete(ctx, "q", "a", store.JobSucceeded, nil, "")
	}},
	{"retry", func(ctx context.Context, r *store.Redis) error { return r.Retry(ctx, "q", "a", time.Now(), "") }},
	{"get-job", func(ctx context.Context, r *store.Redis) error { _, err := r.GetJob(ctx, "q", "a"); return err }},
	{"stats", func(ctx context.Context, r *store.Redis) error { _, _, err := r.Stats(ctx, "q"); return err }},
	{"append-usage", func(ctx context.Context, r *store.Redis) error {
		return r.AppendUsage(ctx, []store.UsageRecord{{Time: time.Now()}})
	}},
	{"scan-usage", func(ctx context.Context, r *store.Redis) error {
		return r.ScanUsage(ctx, time.Time{}, time.Now(), func(store.UsageRecord) error { return nil })
	}},
	{"allow", func(ctx context.Context, r *store.Redis) error {
		_, _, err := r.Allow(ctx, "k", 1, 1, time.Now())
		return err
	}},
}

// slack is what the outage tests allow beyond the store's bound for the
// machine's scheduling (a loaded 2-core machine under -race). Without the
// bound, go-redis waits 5 s for a reply from a silent Redis.
const slack = 750 * time.Millisecond

// openOwn opens a store on srv's Redis (url adds query parameters) and
// makes sure it has a pooled connection, as a running replica would.
func openOwn(t *testing.T, srv *storetest.Server, query string, opts store.RedisOptions) *store.Redis {
	t.Helper()
	opts.Prefix = testPrefix()
	r, err := store.OpenRedis(srv.URL()+query, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	if err := r.Set(bg, "warm", []byte("1"), time.Minute); err != nil {
		t.Fatalf("Redis up: %v", err)
	}
	return r
}

// TestRedisOutageBoundsEveryCall: with Redis silent (paused: connections
// hang) or dead (killed: connections refused), every call ends with
// ErrUnavailable within RedisOptions.Timeout, whatever the URL asks of
// go-redis; after the first, calls fail at once; and the store comes back
// by itself when Redis does.
func TestRedisOutageBoundsEveryCall(t *testing.T) {
	srv := storetest.StartServer(t)
	// The URL asks go-redis for long waits and many retries; the store's
	// bound replaces them.
	const greedy = "?dial_timeout=10s&read_timeout=10s&write_timeout=10s&pool_timeout=10s&max_retries=5"

	t.Run("error-reply-is-not-an-outage", func(t *testing.T) {
		r := openOwn(t, srv, "", store.RedisOptions{})
		job := store.Job{ID: "dup"}
		if err := r.Enqueue(bg, "q", job); err != nil {
			t.Fatal(err)
		}
		if err := r.Enqueue(bg, "q", job); !errors.Is(err, store.ErrJobExists) {
			t.Fatalf("second enqueue: %v, want ErrJobExists", err)
		}
		if store.MarkedDown(r) {
			t.Error("an error reply from Redis marked the store down")
		}
	})

	// Stores opened while Redis answers, one per call and URL, so that each
	// call meets a silent Redis first (not a store already marked down).
	type target struct {
		name string
		r    *store.Redis
		c    storeCall
	}
	var hung []target
	for _, q := range []struct{ name, query string }{{"defaults", ""}, {"greedy-url", greedy}} {
		for _, c := range everyCall {
			hung = append(hung, target{q.name + "/" + c.name, openOwn(t, srv, q.query, store.RedisOptions{}), c})
		}
	}
	failFast := openOwn(t, srv, greedy, store.RedisOptions{Timeout: time.Second})
	patient := openOwn(t, srv, "", store.RedisOptions{})
	pool := openOwn(t, srv, greedy, store.RedisOptions{})
	srv.Pause()
	paused := true
	t.Cleanup(func() {
		if paused {
			srv.Resume()
		}
	})

	t.Run("paused", func(t *testing.T) {
		for _, h := range hung {
			t.Run(h.name, func(t *testing.T) {
				t.Parallel()
				start := time.Now()
				err := h.c.call(bg, h.r)
				took := time.Since(start)
				if !errors.Is(err, store.ErrUnavailable) {
					t.Errorf("error = %v, want ErrUnavailable", err)
				}
				if took > store.DefaultTimeout+slack {
					t.Errorf("took %v with Redis silent, want at most the %v bound (+%v slack)", took, store.DefaultTimeout, slack)
				}
				if !store.MarkedDown(h.r) {
					t.Error("a call Redis did not answer left the store up")
				}
			})
		}
		t.Run("pool-exhausted", func(t *testing.T) {
			t.Parallel()
			// Ten times the pool (10 per CPU): most calls wait for a
			// connection that hangs; that wait is bounded too.
			var wg sync.WaitGroup
			var mu sync.Mutex
			var slowest time.Duration
			var errs []error
			for range 200 {
				wg.Go(func() {
					start := time.Now()
					_, err := pool.Get(bg, "k")
					took := time.Since(start)
					mu.Lock()
					defer mu.Unlock()
					slowest = max(slowest, took)
					if !errors.Is(err, store.ErrUnavailable) {
						errs = append(errs, err)
					}
				})
			}
			wg.Wait()
			if len(errs) > 0 {
				t.Errorf("%d of 200 calls: %v, want ErrUnavailable", len(errs), errs[0])
			}
			if slowest > store.DefaultTimeout+slack {
				t.Errorf("slowest of 200 concurrent calls took %v, want at most the %v bound (+%v slack)", slowest, store.DefaultTimeout, slack)
			}
		})
		t.Run("then-calls-fail-at-once", func(t *testing.T) {
			t.Parallel()
			if _, err := failFast.Get(bg, "k"); !errors.Is(err, store.ErrUnavailable) {
				t.Fatalf("first call: %v, want ErrUnavailable", err)
			}
			// Each of these would wait out the 1 s bound if the store still
			// asked Redis.
			start := time.Now()
			for range 10 {
				if _, err := failFast.Get(bg, "k"); !errors.Is(err, store.ErrUnavailable) {
					t.Fatalf("call while down: %v, want ErrUnavailable", err)
				}
			}
			if took := time.Since(start); took >= time.Second {
				t.Errorf("10 calls on a store marked down took %v; each waited instead of failing at once", took)
			}
		})
		t.Run("callers-shorter-deadline-is-not-an-outage", func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(bg, 20*time.Millisecond)
			defer cancel()
			if _, err := patient.Get(ctx, "k"); !errors.Is(err, store.ErrUnavailable) {
				t.Fatalf("error = %v, want ErrUnavailable", err)
			}
			if store.MarkedDown(patient) {
				t.Error("a caller giving up before the store's bound marked the store down")
			}
		})
	})

	srv.Resume()
	paused = false
	t.Run("recovers-after-resume", func(t *testing.T) {
		r := hung[1].r // marked down by its get
		waitUp(t, r)
	})

	t.Run("killed", func(t *testing.T) {
		r := openOwn(t, srv, greedy, store.RedisOptions{})
		srv.Kill()
		start := time.Now()
		_, err := r.Get(bg, "k")
		if took := time.Since(start); !errors.Is(err, store.ErrUnavailable) || took > store.DefaultTimeout+slack {
			t.Errorf("Redis killed: %v after %v, want ErrUnavailable within the %v bound (+%v slack)", err, took, store.DefaultTimeout, slack)
		}
		if !store.MarkedDown(r) {
			t.Error("a refused connection left the store up")
		}
		srv.Start()
		waitUp(t, r)
	})
}

// waitUp waits until r is no longer marked down and answers a call.
func waitUp(t *testing.T, r *store.Redis) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if !store.MarkedDown(r) && r.Set(bg, "k", []byte("v"), time.Minute) == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("store still down 5s after Redis answered again")
		}
	}
}
