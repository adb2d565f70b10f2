package storetest

import (
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/store"
)

func limiter(t *testing.T, s store.Store) store.RateLimiter {
	t.Helper()
	l, ok := s.(store.RateLimiter)
	if !ok {
		t.Fatalf("%T does not implement store.RateLimiter", s)
	}
	return l
}

func allow(t *testing.T, l store.RateLimiter, key string, rate float64, burst int) (bool, time.Duration) {
	t.Helper()
	ok, retry, err := l.Allow(ctx(), key, rate, burst, time.Now())
	if err != nil {
		t.Fatalf("Allow(%s): %v", key, err)
	}
	return ok, retry
}

var limiterCases = []suiteCase{
	{name: "limiter/burst-then-deny", fn: func(t *testing.T, s store.Store) {
		l := limiter(t, s)
		for i := range 5 {
			if ok, _ := allow(t, l, "k", 1, 5); !ok {
				t.Fatalf("call %d of a burst of 5 denied", i+1)
			}
		}
		ok, retry := allow(t, l, "k", 1, 5)
		if ok || retry <= 0 || retry > time.Second {
			t.Errorf("6th call: ok=%v retryAfter=%v; want denied with 0 < retryAfter <= 1s", ok, retry)
		}
	}},
	{name: "limiter/keys-are-independent", fn: func(t *testing.T, s store.Store) {
		l := limiter(t, s)
		allow(t, l, "a", 1, 1)
		if ok, _ := allow(t, l, "a", 1, 1); ok {
			t.Error("second call on a was admitted at 1/s burst 1")
		}
		if ok, _ := allow(t, l, "b", 1, 1); !ok {
			t.Error("first call on b was denied because of a")
		}
	}},
	{name: "limiter/admits-again-after-retry-after", fn: func(t *testing.T, s store.Store) {
		l := limiter(t, s)
		allow(t, l, "k", 10, 1)
		ok, retry := allow(t, l, "k", 10, 1)
		if ok {
			t.Fatal("second immediate call admitted at 10/s burst 1")
		}
		for range 50 { // denied calls consume nothing
			allow(t, l, "k", 10, 1)
		}
		time.Sleep(retry + 20*time.Millisecond)
		if ok, _ := allow(t, l, "k", 10, 1); !ok {
			t.Errorf("call after waiting retryAfter=%v was denied", retry)
		}
	}},
	{name: "limiter/invalid-rate", fn: func(t *testing.T, s store.Store) {
		l := limiter(t, s)
		for _, rate := range []float64{0, -1, math.NaN(), math.Inf(1)} {
			if _, _, err := l.Allow(ctx(), "k", rate, 1, time.Now()); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("Allow(rate=%v) error = %v, want ErrInvalid", rate, err)
			}
		}
	}},
	{name: "limiter/accuracy-under-contention", serial: true, fn: func(t *testing.T, s store.Store) {
		// N goroutines hammer one key for 2s: GCRA admits at most
		// burst + rate×window, window being first call to last, and a
		// saturated limiter gets close to it. It falls short only when no
		// caller runs for longer than burst/rate (500ms here: budget past a
		// full burst is not banked), which a machine shared with other
		// builds does now and then.
		l := limiter(t, s)
		const (
			rate    = 500.0
			burst   = 250
			workers = 8
			run     = 2 * time.Second
		)
		// gap is the longest time in which no call completed anywhere.
		var admitted, calls, last, lastDone, gap atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for range workers {
			wg.Go(func() {
				for {
					now := time.Now()
					if now.Sub(start) >= run {
						return
					}
					ok, _, err := l.Allow(ctx(), "global", rate, burst, now)
					if err != nil {
						t.Errorf("Allow: %v", err)
						return
					}
					calls.Add(1)
					done := int64(time.Since(start))
					storeMax(&gap, done-lastDone.Swap(done))
					if ok {
						admitted.Add(1)
					}
					storeMax(&last, int64(now.Sub(start)))
				}
			})
		}
		wg.Wait()
		window := time.Duration(last.Load())
		ceiling := burst + rate*window.Seconds()
		got := float64(admitted.Load())
		t.Logf("limiter accuracy: %d goroutines, %v window, %.0f calls: admitted %.0f of a ceiling of %.1f (%.2f%%)",
			workers, window.Round(time.Millisecond), float64(calls.Load()), got, ceiling, 100*got/ceiling)
		if got > ceiling+1 {
			t.Errorf("admitted %.0f, more than burst + rate×window = %.1f", got, ceiling)
		}
		// If no call completed for half the burst window, this process or
		// the server was starved long enough to risk losing budget that no
		// limiter banks: then only the ceiling is checked.
		if stall := time.Duration(gap.Load()); stall > time.Duration(burst/rate*float64(time.Second))/2 {
			t.Logf("no call completed for %v: the machine stalled, floor not checked", stall.Round(time.Millisecond))
		} else if got < 0.90*ceiling {
			// 90%, not more: under -race on two shared cores, pauses just
			// under that threshold still cost a few percent (94% seen in
			// CI with 104ms pauses); a limiter that loses budget by
			// design admits far less.
			t.Errorf("admitted %.0f, under 90%% of %.1f (longest pause %v)", got, ceiling, stall)
		}
	}},
}

func storeMax(v *atomic.Int64, n int64) {
	for {
		if old := v.Load(); old >= n || v.CompareAndSwap(old, n) {
			return
		}
	}
}
