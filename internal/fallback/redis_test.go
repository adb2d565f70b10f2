package fallback

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/clock"
	"github.com/portcullis-dev/portcullis/internal/store"
	"github.com/portcullis-dev/portcullis/internal/store/storetest"
)

// TestRequestPathWhenRedisHangs: with Redis silent (paused: connections
// hang), the kill-switch re-read keeps the last known state and the stale
// cache reads as a miss, both within state.redis_timeout, for every caller
// waiting at once. Before the bound, each waited 5 s for go-redis.
func TestRequestPathWhenRedisHangs(t *testing.T) {
	srv := storetest.StartServer(t)
	// Scheduling slack on a loaded 2-core machine under -race.
	const limit = store.DefaultTimeout + 750*time.Millisecond
	open := func() *store.Redis {
		r, err := store.OpenRedis(srv.URL(), store.RedisOptions{Prefix: "portcullis-test-" + newID("hang_") + ":"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Close() })
		return r
	}
	clk := clock.NewFake(t0)
	kill := NewKillSwitch(open(), clk, nil)
	if err := kill.Disable(context.Background(), "crm", "alice"); err != nil {
		t.Fatal(err)
	}
	stale := NewStaleCache(open(), StaleConfig{StaleFor: time.Hour}, nil)
	if err := stale.Put(context.Background(), chargeKey, okEntry(`{"id":"ch_1"}`)); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := stale.Get(context.Background(), chargeKey); !ok {
		t.Fatal("stale entry not stored while Redis answers")
	}
	srv.Pause()
	defer srv.Resume()
	clk.Advance(2 * KillSwitchRefresh) // every caller's copy is due for a re-read

	// ask runs fn for 20 callers at once and returns the slowest time.
	ask := func(fn func()) time.Duration {
		var mu sync.Mutex
		var wg sync.WaitGroup
		var slowest time.Duration
		for range 20 {
			wg.Go(func() {
				start := time.Now()
				fn()
				mu.Lock()
				slowest = max(slowest, time.Since(start))
				mu.Unlock()
			})
		}
		wg.Wait()
		return slowest
	}
	t.Run("kill-switch-keeps-last-state", func(t *testing.T) {
		var enabled sync.Map
		took := ask(func() {
			if !kill.Disabled("crm") {
				enabled.Store(true, true)
			}
		})
		if _, ok := enabled.Load(true); ok {
			t.Error("with Redis silent, a disabled integration read as enabled")
		}
		if took > limit {
			t.Errorf("slowest kill-switch read took %v, want at most %v", took, limit)
		}
	})
	t.Run("stale-cache-is-a-miss", func(t *testing.T) {
		var hit sync.Map
		took := ask(func() {
			if _, _, ok := stale.Get(context.Background(), chargeKey); ok {
				hit.Store(true, true)
			}
		})
		if _, ok := hit.Load(true); ok {
			t.Error("stale Get hit with Redis silent")
		}
		if took > limit {
			t.Errorf("slowest stale-cache read took %v, want at most %v", took, limit)
		}
		start := time.Now()
		err := stale.Put(context.Background(), chargeKey, okEntry(`{"id":"ch_1"}`))
		if took := time.Since(start); err == nil || took > limit {
			t.Errorf("stale Put: %v after %v, want an error within %v", err, took, limit)
		}
	})
}
