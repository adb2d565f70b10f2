package resilience

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/portcullis-dev/portcullis/internal/clock"
)

func spend(b *Budget, n int) int {
	got := 0
	for range n {
		if b.TryRetry() {
			got++
		}
	}
	return got
}

func TestBudget(t *testing.T) {
	tests := []struct {
		name        string
		ratio       float64
		floorPerSec float64
		requests    int
		want        int // retries granted out of 1000 asked
	}{
		{name: "floor-only-without-traffic", ratio: 0.2, floorPerSec: 1, requests: 0, want: 10},
		{name: "ratio-plus-floor", ratio: 0.2, floorPerSec: 1, requests: 100, want: 30},
		{name: "zero-floor", ratio: 0.1, floorPerSec: 0, requests: 50, want: 5},
		{name: "zero-ratio-floor-only", ratio: 0, floorPerSec: 0.5, requests: 1000, want: 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBudget(tc.ratio, 10*time.Second, tc.floorPerSec, clock.NewFake(now0))
			for range tc.requests {
				b.RecordRequest()
			}
			if got := spend(b, 1000); got != tc.want {
				t.Errorf("granted %d retries, want %d", got, tc.want)
			}
		})
	}
}

func TestBudgetWindowSlides(t *testing.T) {
	clk := clock.NewFake(now0)
	b := NewBudget(0.5, 10*time.Second, 0, clk)
	for range 20 {
		b.RecordRequest()
	}
	if got := spend(b, 100); got != 10 {
		t.Fatalf("granted %d, want 10", got)
	}
	// Half a window later the old requests and retries still count.
	clk.Advance(5 * time.Second)
	if got := spend(b, 100); got != 0 {
		t.Errorf("granted %d with the window still full, want 0", got)
	}
	// Once they slide out, new traffic earns new retries, old spending is forgotten.
	clk.Advance(5 * time.Second)
	for range 4 {
		b.RecordRequest()
	}
	if got := spend(b, 100); got != 2 {
		t.Errorf("granted %d after the window slid, want 2", got)
	}
	want := BudgetState{Requests: 4, Retries: 2, Allowed: 2}
	if diff := cmp.Diff(want, b.State()); diff != "" {
		t.Errorf("State() mismatch (-want +got):\n%s", diff)
	}
}

func TestBudgetDefaults(t *testing.T) {
	b := NewBudget(-1, 0, -1, clock.NewFake(now0))
	if got := spend(b, 1000); got != int(DefaultBudgetFloor*DefaultBudgetWindow.Seconds()) {
		t.Errorf("default floor granted %d", got)
	}
}
