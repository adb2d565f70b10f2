package resilience

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/clock"
	"github.com/portcullis-dev/portcullis/internal/store"
)

// flakyStore is the embedded store's shared buckets with an outage switch.
type flakyStore struct {
	*store.Memory
	down  atomic.Bool
	calls atomic.Int64
}

var errOutage = errors.New("connection refused")

func (f *flakyStore) Allow(ctx context.Context, key string, rate float64, burst int, now time.Time) (bool, time.Duration, error) {
	f.calls.Add(1)
	if f.down.Load() {
		return false, 0, errOutage
	}
	return f.Memory.Allow(ctx, key, rate, burst, now)
}

func (f *flakyStore) Ping(ctx context.Context) error {
	if f.down.Load() {
		return errOutage
	}
	return nil
}

// While the store is down a failed check marks it down: further calls get
// ErrSharedDown at once, without asking it; one prober pings it on the
// limiter's clock and lets calls ask again once it answers; Close stops
// a prober still waiting.
func TestGlobalLimiterOutage(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	s := &flakyStore{Memory: store.NewMemory(clk)}
	l := NewGlobalLimiter(s, clk, nil)
	defer l.Close()

	if ok, _, err := l.Allow(ctx, "rl:pay", 1, 1); !ok || err != nil {
		t.Fatalf("first call: %v %v, want admitted", ok, err)
	}
	if ok, wait, err := l.Allow(ctx, "rl:pay", 1, 1); ok || err != nil || wait <= 0 {
		t.Fatalf("second call within the burst of 1: %v %v %v, want refused with a wait", ok, wait, err)
	}
	s.down.Store(true)
	if _, _, err := l.Allow(ctx, "rl:pay", 1, 1); !errors.Is(err, errOutage) {
		t.Fatalf("call during the outage: %v, want the store's error", err)
	}
	before := s.calls.Load()
	if _, _, err := l.Allow(ctx, "rl:pay", 1, 1); !errors.Is(err, ErrSharedDown) {
		t.Fatalf("next call: %v, want ErrSharedDown", err)
	}
	if s.calls.Load() != before {
		t.Error("a call asked the store while it was marked down")
	}
	if err := clk.BlockUntil(ctx, 1); err != nil {
		t.Fatal("no prober waiting")
	}
	s.down.Store(false)
	clk.Advance(GlobalProbeEvery)
	for l.down.Load() {
		select {
		case <-ctx.Done():
			t.Fatal("the prober never cleared the outage")
		case <-time.After(time.Millisecond): // waits for the prober goroutine, not for time
		}
	}
	clk.Advance(2 * time.Second)
	if ok, _, err := l.Allow(ctx, "rl:pay", 1, 1); !ok || err != nil {
		t.Fatalf("after recovery: %v %v, want admitted", ok, err)
	}

	s.down.Store(true)
	l.Allow(ctx, "rl:pay", 1, 1)
	if err := clk.BlockUntil(ctx, 1); err != nil {
		t.Fatal("no prober waiting")
	}
	done := make(chan struct{})
	go func() { l.Close(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("Close did not stop the prober")
	}
}
