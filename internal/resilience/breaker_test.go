package resilience

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/portcullis-dev/portcullis/internal/clock"
)

// The breaker tests run in synctest bubbles and wait with time.Sleep: that
// moves the bubble's clock at once, not the wall clock. gobreaker times
// open_for and the rolling window on the process clock, which a clock.Fake
// cannot drive.
var breakerCfg = BreakerConfig{FailureRatio: 0.5, MinRequests: 10, Window: 10 * time.Second, OpenFor: 5 * time.Second, HalfOpenProbes: 2}

type changeLog struct {
	mu  sync.Mutex
	got []string
}

func (c *changeLog) record(b **Breaker) func(from, to string) {
	start := time.Now()
	return func(from, to string) {
		c.mu.Lock()
		defer c.mu.Unlock()
		// Calling back into the breaker from onChange must not deadlock.
		_ = (*b).State()
		c.got = append(c.got, fmt.Sprintf("%s→%s@%s", from, to, time.Since(start)))
	}
}

func (c *changeLog) list() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.got...)
}

// call sends one GET through b and closes any response.
func call(t *testing.T, b *Breaker) error {
	t.Helper()
	resp, err := b.RoundTrip(newReq(t, context.Background(), "GET", ""))
	if err == nil {
		resp.Body.Close()
	}
	return err
}

func TestBreakerLifecycle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var failing = true
		var mu sync.Mutex
		vendor := &scriptRT{respond: func(int, *http.Request) (*http.Response, error) {
			mu.Lock()
			defer mu.Unlock()
			if failing {
				return status(503), nil
			}
			return status(200), nil
		}}
		var log changeLog
		var b *Breaker
		b = NewBreaker("payments", breakerCfg, vendor, clock.System(), log.record(&b))

		// 9 failures: under the minimum volume, still closed.
		for range 9 {
			_ = call(t, b)
		}
		if b.State() != "closed" {
			t.Fatalf("state %s after 9 failures (min volume 10), want closed", b.State())
		}
		// The 10th reaches the volume at a 100% failure ratio: open.
		_ = call(t, b)
		if b.State() != "open" || b.Allow() {
			t.Fatalf("state %s, Allow %v after 10 failures; want open, false", b.State(), b.Allow())
		}
		// Open: refused without calling the vendor.
		before := vendor.Calls()
		if err := call(t, b); !errors.Is(err, ErrCircuitOpen) {
			t.Errorf("open breaker returned %v, want ErrCircuitOpen", err)
		}
		if vendor.Calls() != before {
			t.Error("open breaker called the vendor")
		}
		// Just before OpenFor it is still open; at OpenFor it lets probes through.
		time.Sleep(5*time.Second - time.Millisecond)
		if b.Allow() {
			t.Error("Allow() true before open_for elapsed")
		}
		time.Sleep(2 * time.Millisecond)
		if b.State() != "half-open" || !b.Allow() {
			t.Fatalf("state %s after open_for, want half-open and allowing", b.State())
		}
		// A failed probe opens it again.
		_ = call(t, b)
		if b.State() != "open" {
			t.Fatalf("state %s after a failed probe, want open", b.State())
		}
		// Next round: the vendor has recovered; 2 successful probes close it.
		time.Sleep(5*time.Second + time.Millisecond)
		mu.Lock()
		failing = false
		mu.Unlock()
		for range 2 {
			if err := call(t, b); err != nil {
				t.Fatalf("probe refused: %v", err)
			}
		}
		if b.State() != "closed" {
			t.Fatalf("state %s after 2 good probes, want closed", b.State())
		}
		want := []string{
			"closed→open@0s",
			"open→half-open@5.001s",
			"half-open→open@5.001s",
			"open→half-open@10.002s",
			"half-open→closed@10.002s",
		}
		if diff := cmp.Diff(want, log.list()); diff != "" {
			t.Errorf("transitions (-want +got):\n%s", diff)
		}
		if s := b.Snapshot(); s.State != "closed" || !s.Since.Equal(time.Now()) {
			t.Errorf("Snapshot() = %+v, want closed since now", s)
		}
	})
}

func TestBreakerHalfOpenLimitsProbes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		vendor := &scriptRT{respond: func(n int, _ *http.Request) (*http.Response, error) {
			if n <= 10 {
				return status(500), nil
			}
			<-release // probes hang until released
			return status(200), nil
		}}
		b := NewBreaker("maps", breakerCfg, vendor, clock.System(), nil)
		for range 10 {
			_ = call(t, b)
		}
		time.Sleep(breakerCfg.OpenFor + time.Millisecond)
		errs := make(chan error, 3)
		for range 2 {
			go func() { errs <- call(t, b) }()
		}
		synctest.Wait() // both probes are in the vendor
		if b.Allow() {
			t.Error("Allow() true with every probe slot taken")
		}
		if err := call(t, b); !errors.Is(err, ErrCircuitOpen) {
			t.Errorf("third call while probing: %v, want ErrCircuitOpen", err)
		}
		close(release)
		for range 2 {
			if err := <-errs; err != nil {
				t.Errorf("probe: %v", err)
			}
		}
		if vendor.Calls() != 12 {
			t.Errorf("vendor saw %d calls, want 10 + 2 probes", vendor.Calls())
		}
		if b.State() != "closed" {
			t.Errorf("state %s, want closed", b.State())
		}
	})
}

func TestBreakerFailureClassification(t *testing.T) {
	tests := []struct {
		name     string
		outcome  any // status code, error, or "hang"
		deadline time.Duration
		cancel   bool
		wantOpen bool
	}{
		{name: "5xx-counts", outcome: 502, wantOpen: true},
		{name: "4xx-does-not-count", outcome: 404, wantOpen: false},
		{name: "429-does-not-count", outcome: 429, wantOpen: false},
		{name: "connect-error-counts", outcome: errors.New("dial tcp: connection refused"), wantOpen: true},
		{name: "timeout-counts", outcome: "hang", deadline: 100 * time.Millisecond, wantOpen: true},
		{name: "caller-cancel-excluded", outcome: "hang", cancel: true, wantOpen: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				vendor := &scriptRT{respond: sequence(tc.outcome)}
				b := NewBreaker("sms", breakerCfg, vendor, clock.System(), nil)
				for range breakerCfg.MinRequests {
					ctx, cancel := context.Background(), context.CancelFunc(func() {})
					if tc.deadline > 0 {
						ctx, cancel = context.WithTimeout(ctx, tc.deadline)
					}
					if tc.cancel {
						ctx, cancel = context.WithCancel(ctx)
						time.AfterFunc(100*time.Millisecond, cancel)
					}
					resp, err := b.RoundTrip(newReq(t, ctx, "GET", ""))
					if err == nil {
						resp.Body.Close()
					}
					cancel()
				}
				if got := b.State() == "open"; got != tc.wantOpen {
					t.Errorf("open = %v after %d × %v, want %v", got, breakerCfg.MinRequests, tc.outcome, tc.wantOpen)
				}
			})
		})
	}
}

func TestBreakerCountsPerTryTimeoutAsFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		vendor := &scriptRT{respond: sequence("hang")}
		b := NewBreaker("crm", breakerCfg, vendor, clock.System(), nil)
		r := NewRetry(RetryPolicy{Attempts: 1, PerTry: 100 * time.Millisecond}, nil, b, clock.System())
		for range breakerCfg.MinRequests {
			_, err := r.RoundTrip(newReq(t, context.Background(), "GET", ""))
			if !errors.Is(err, ErrTryTimeout) {
				t.Fatalf("err = %v, want ErrTryTimeout", err)
			}
		}
		if b.State() != "open" {
			t.Errorf("state %s after %d per-try timeouts, want open", b.State(), breakerCfg.MinRequests)
		}
	})
}

func TestBreakerRollingWindowForgetsOldFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		vendor := &scriptRT{respond: func(n int, _ *http.Request) (*http.Response, error) {
			if n <= 9 {
				return status(500), nil
			}
			return status(200), nil
		}}
		b := NewBreaker("ai", breakerCfg, vendor, clock.System(), nil)
		for range 9 { // 9 failures at t=0
			_ = call(t, b)
		}
		time.Sleep(breakerCfg.Window + time.Second) // they age out
		for range 9 {                               // 9 successes
			_ = call(t, b)
		}
		s := b.Snapshot()
		if s.Requests != 9 || s.Failures != 0 {
			t.Errorf("window counts %d requests / %d failures, want 9 / 0 (old failures aged out)", s.Requests, s.Failures)
		}
		// Had the window not rolled, 9 failures + 9 successes + 2 failures =
		// 11/20 ≥ 0.5 would open it. With the old failures gone: 2/11.
		vendor.respond = always(500)
		_ = call(t, b)
		_ = call(t, b)
		if b.State() != "closed" {
			t.Errorf("state %s, want closed: failures older than the window must not count", b.State())
		}
	})
}

func TestBreakerRatioWithinWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Alternate success/failure, one call per 100ms: a 50% ratio reached
		// at the 10th call inside one window.
		vendor := &scriptRT{respond: func(n int, _ *http.Request) (*http.Response, error) {
			if n%2 == 0 {
				return status(500), nil
			}
			return status(200), nil
		}}
		b := NewBreaker("geo", breakerCfg, vendor, clock.System(), nil)
		for i := 1; i <= 10; i++ {
			_ = call(t, b)
			if i < 10 && b.State() != "closed" {
				t.Fatalf("opened after %d calls, before min volume", i)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if b.State() != "open" {
			t.Errorf("state %s with 5/10 failures at ratio 0.5, want open", b.State())
		}
	})
}
