package store

import (
	"context"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/clock"
)

func TestLocalGCRA(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	type call struct {
		at        time.Duration // since t0
		wantOK    bool
		wantRetry time.Duration
	}
	tests := []struct {
		name  string
		rate  float64
		burst int
		calls []call
	}{
		{"burst-then-one-per-interval", 10, 3, []call{
			{0, true, 0}, {0, true, 0}, {0, true, 0},
			{0, false, 100 * time.Millisecond},
			{50 * time.Millisecond, false, 50 * time.Millisecond},
			{100 * time.Millisecond, true, 0},
			{100 * time.Millisecond, false, 100 * time.Millisecond},
		}},
		{"idle-refills-to-burst-not-beyond", 10, 2, []call{
			{0, true, 0}, {0, true, 0},
			{10 * time.Second, true, 0}, {10 * time.Second, true, 0},
			{10 * time.Second, false, 100 * time.Millisecond},
		}},
		{"burst-below-one-means-one", 1, 0, []call{
			{0, true, 0}, {0, false, time.Second}, {time.Second, true, 0},
		}},
		{"fractional-rate", 0.5, 1, []call{
			{0, true, 0}, {time.Second, false, time.Second}, {2 * time.Second, true, 0},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMemory(clock.NewFake(t0))
			for i, c := range tc.calls {
				ok, retry, err := m.Allow(context.Background(), "k", tc.rate, tc.burst, t0.Add(c.at))
				if err != nil {
					t.Fatal(err)
				}
				if ok != c.wantOK || retry != c.wantRetry {
					t.Errorf("call %d at +%v: ok=%v retry=%v, want ok=%v retry=%v", i, c.at, ok, retry, c.wantOK, c.wantRetry)
				}
			}
		})
	}
}

// FuzzGCRANeverExceedsBudget checks GCRA's guarantee for any arrival times:
// within any window of length w, at most burst + rate×w calls are admitted.
func FuzzGCRANeverExceedsBudget(f *testing.F) {
	f.Add(10.0, 3, []byte{0, 0, 0, 0, 5, 5, 200, 0, 0})
	f.Add(0.5, 1, []byte{0, 10, 255, 255, 0})
	f.Add(1000.0, 50, []byte{1, 1, 1, 1, 1, 1, 1, 1})
	f.Fuzz(func(t *testing.T, rate float64, burst int, gaps []byte) {
		if !(rate >= 0.01 && rate <= 1e6) || burst < 1 || burst > 1000 || len(gaps) > 2000 {
			return
		}
		l := newLocalLimiter(clock.System())
		t0 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
		now := t0
		var admitted []time.Time
		for _, g := range gaps {
			now = now.Add(time.Duration(g) * time.Millisecond)
			ok, retry, err := l.Allow(context.Background(), "k", rate, burst, now)
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				admitted = append(admitted, now)
			} else if retry <= 0 {
				t.Fatalf("denied with retryAfter %v", retry)
			}
		}
		interval, _, _ := limitParams(rate, burst)
		for i := range admitted {
			for j := i; j < len(admitted); j++ {
				w := admitted[j].Sub(admitted[i])
				if limit := int64(burst) + int64(w/interval); int64(j-i+1) > limit {
					t.Fatalf("%d calls admitted within %v at %v/s burst %d (limit %d)", j-i+1, w, rate, burst, limit)
				}
			}
		}
	})
}
