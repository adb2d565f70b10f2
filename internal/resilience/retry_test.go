package resilience

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/portcullis-dev/portcullis/internal/clock"
)

func newReq(t testing.TB, ctx context.Context, method, body string, kv ...string) *http.Request {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://vendor.test/v1/things", rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(kv); i += 2 {
		req.Header.Set(kv[i], kv[i+1])
	}
	return req
}

var policy3 = RetryPolicy{Attempts: 3, Backoff: 100 * time.Millisecond, MaxBackoff: time.Second, MaxRetryAfter: 10 * time.Second}

func TestRetryDecisions(t *testing.T) {
	connRefused := &net.OpError{Op: "dial", Net: "tcp", Err: &osSyscallErr{syscall.ECONNREFUSED}}
	tests := []struct {
		name       string
		method     string
		body       string
		headers    []string
		noGetBody  bool
		attempts   int
		vendor     func(int, *http.Request) (*http.Response, error)
		wantCalls  int
		wantStatus int // 0: want an error
		wantBodies []string
	}{
		{name: "get-503-then-ok", method: "GET", vendor: sequence(503, 200), wantCalls: 2, wantStatus: 200},
		{name: "get-502-then-ok", method: "GET", vendor: sequence(502, 200), wantCalls: 2, wantStatus: 200},
		{name: "get-504-then-ok", method: "GET", vendor: sequence(504, 200), wantCalls: 2, wantStatus: 200},
		{name: "get-429-without-retry-after", method: "GET", vendor: sequence(429, 200), wantCalls: 2, wantStatus: 200},
		{name: "get-500-not-retried", method: "GET", vendor: sequence(500, 200), wantCalls: 1, wantStatus: 500},
		{name: "get-404-not-retried", method: "GET", vendor: sequence(404, 200), wantCalls: 1, wantStatus: 404},
		{name: "get-gives-up-after-attempts", method: "GET", vendor: always(503), wantCalls: 3, wantStatus: 503},
		{name: "attempts-1-never-retries", method: "GET", attempts: 1, vendor: always(503), wantCalls: 1, wantStatus: 503},
		{name: "head-options-delete-retried", method: "DELETE", vendor: sequence(503, 204), wantCalls: 2, wantStatus: 204},
		{name: "put-body-replayed", method: "PUT", body: `{"a":1}`, vendor: sequence(503, 200),
			wantCalls: 2, wantStatus: 200, wantBodies: []string{`{"a":1}`, `{"a":1}`}},
		{name: "post-without-key-sent-once", method: "POST", body: "x", vendor: sequence(503, 200), wantCalls: 1, wantStatus: 503},
		{name: "patch-without-key-sent-once", method: "PATCH", body: "x", vendor: sequence(502, 200), wantCalls: 1, wantStatus: 502},
		{name: "post-without-key-connect-error-sent-once", method: "POST", body: "x",
			vendor: sequence(connRefused, 200), wantCalls: 1},
		{name: "post-with-key-replayed", method: "POST", body: "charge", headers: []string{"Idempotency-Key", "k1"},
			vendor: sequence(503, 200), wantCalls: 2, wantStatus: 200, wantBodies: []string{"charge", "charge"}},
		{name: "post-with-key-but-no-get-body-sent-once", method: "POST", body: "charge",
			headers: []string{"Idempotency-Key", "k1"}, noGetBody: true, vendor: sequence(503, 200), wantCalls: 1, wantStatus: 503},
		{name: "get-connection-refused-retried", method: "GET", vendor: sequence(connRefused, 200), wantCalls: 2, wantStatus: 200},
		{name: "get-eof-retried", method: "GET", vendor: sequence(fmt.Errorf("read: %w", io.EOF), 200), wantCalls: 2, wantStatus: 200},
		{name: "get-certificate-error-not-retried", method: "GET",
			vendor: sequence(&x509.UnknownAuthorityError{}, 200), wantCalls: 1},
		{name: "get-circuit-open-not-retried", method: "GET",
			vendor: sequence(fmt.Errorf("x: %w", ErrCircuitOpen), 200), wantCalls: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := policy3
				if tc.attempts != 0 {
					p.Attempts = tc.attempts
				}
				vendor := &scriptRT{respond: tc.vendor}
				r := NewRetry(p, nil, vendor, clock.System())
				req := newReq(t, context.Background(), tc.method, tc.body, tc.headers...)
				if tc.noGetBody {
					req.GetBody = nil
				}
				resp, err := r.RoundTrip(req)
				if got := vendor.Calls(); got != tc.wantCalls {
					t.Errorf("vendor saw %d calls, want %d", got, tc.wantCalls)
				}
				switch {
				case tc.wantStatus == 0 && err == nil:
					t.Errorf("got status %d, want an error", resp.StatusCode)
				case tc.wantStatus != 0 && err != nil:
					t.Errorf("got error %v, want status %d", err, tc.wantStatus)
				case tc.wantStatus != 0 && resp.StatusCode != tc.wantStatus:
					t.Errorf("got status %d, want %d", resp.StatusCode, tc.wantStatus)
				}
				if tc.wantBodies != nil {
					if diff := cmp.Diff(tc.wantBodies, vendor.bodies); diff != "" {
						t.Errorf("bodies the vendor received (-want +got):\n%s", diff)
					}
				}
			})
		})
	}
}

type osSyscallErr struct{ errno syscall.Errno }

func (e *osSyscallErr) Error() string { return "connect: " + e.errno.Error() }
func (e *osSyscallErr) Unwrap() error { return e.errno }

func TestRetryAfter(t *testing.T) {
	tests := []struct {
		name        string
		retryAfter  func(now time.Time) string
		code        int
		deadline    time.Duration
		wantCalls   int
		wantStatus  int
		wantElapsed time.Duration
	}{
		{name: "seconds-honoured", code: 503, retryAfter: func(time.Time) string { return "3" },
			wantCalls: 2, wantStatus: 200, wantElapsed: 3 * time.Second},
		{name: "429-seconds-honoured", code: 429, retryAfter: func(time.Time) string { return "1" },
			wantCalls: 2, wantStatus: 200, wantElapsed: time.Second},
		{name: "http-date-honoured", code: 503,
			retryAfter: func(now time.Time) string { return now.Add(5 * time.Second).UTC().Format(http.TimeFormat) },
			wantCalls:  2, wantStatus: 200, wantElapsed: 5 * time.Second},
		{name: "over-cap-returned-to-caller", code: 429, retryAfter: func(time.Time) string { return "60" },
			wantCalls: 1, wantStatus: 429, wantElapsed: 0},
		{name: "past-deadline-returned-at-once", code: 503, retryAfter: func(time.Time) string { return "3" },
			deadline: 2 * time.Second, wantCalls: 1, wantStatus: 503, wantElapsed: 0},
		{name: "malformed-falls-back-to-backoff", code: 503, retryAfter: func(time.Time) string { return "soon" },
			wantCalls: 2, wantStatus: 200, wantElapsed: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				first := status(tc.code, "Retry-After", tc.retryAfter(start))
				vendor := &scriptRT{respond: sequence(first, 200)}
				r := NewRetry(policy3, nil, vendor, clock.System())
				r.jitter = func(int64) int64 { return 0 }
				ctx := context.Background()
				if tc.deadline > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tc.deadline)
					defer cancel()
				}
				resp, err := r.RoundTrip(newReq(t, ctx, "GET", ""))
				if err != nil {
					t.Fatal(err)
				}
				if elapsed := time.Since(start); elapsed != tc.wantElapsed {
					t.Errorf("caller waited %v, want %v", elapsed, tc.wantElapsed)
				}
				if resp.StatusCode != tc.wantStatus || vendor.Calls() != tc.wantCalls {
					t.Errorf("status %d after %d calls, want %d after %d", resp.StatusCode, vendor.Calls(), tc.wantStatus, tc.wantCalls)
				}
				if tc.wantStatus == 429 && resp.Header.Get("Retry-After") == "" {
					t.Error("the vendor's Retry-After did not reach the caller")
				}
			})
		})
	}
}

func TestRetryBackoffFullJitter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		vendor := &scriptRT{respond: always(503)}
		p := RetryPolicy{Attempts: 5, Backoff: 100 * time.Millisecond, MaxBackoff: 300 * time.Millisecond}
		r := NewRetry(p, nil, vendor, clock.System())
		var ceilings []time.Duration
		r.jitter = func(n int64) int64 { ceilings = append(ceilings, time.Duration(n)); return n - 1 } // the top of the range
		start := time.Now()
		resp, err := r.RoundTrip(newReq(t, context.Background(), "GET", ""))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond, 300 * time.Millisecond}
		if diff := cmp.Diff(want, ceilings); diff != "" {
			t.Errorf("jitter ceilings (-want +got):\n%s", diff)
		}
		if elapsed, max := time.Since(start), 900*time.Millisecond; elapsed != max-4 {
			t.Errorf("total backoff %v, want just under %v", elapsed, max)
		}
	})
}

func TestRetryJitterStaysInRange(t *testing.T) {
	r := NewRetry(RetryPolicy{Backoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond}, nil, nil, nil)
	seen := map[bool]bool{}
	for i := range 2000 {
		attempt := i%5 + 1
		d := r.backoff(attempt)
		ceil := min(10*time.Millisecond<<(attempt-1), 40*time.Millisecond)
		if d < 0 || d >= ceil {
			t.Fatalf("backoff(%d) = %v outside [0, %v)", attempt, d, ceil)
		}
		seen[d < ceil/2] = true
	}
	if !seen[true] || !seen[false] {
		t.Error("jitter never used both halves of its range in 2000 draws")
	}
}

func TestRetryStopsWhenContextDone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		vendor := &scriptRT{respond: always(503)}
		r := NewRetry(RetryPolicy{Attempts: 5, Backoff: time.Second, MaxBackoff: time.Second}, nil, vendor, clock.System())
		r.jitter = func(n int64) int64 { return n - 1 }
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(500*time.Millisecond, cancel)
		start := time.Now()
		_, err := r.RoundTrip(newReq(t, ctx, "GET", ""))
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
		if vendor.Calls() != 1 || time.Since(start) != 500*time.Millisecond {
			t.Errorf("%d calls in %v, want 1 call and a return at the cancellation (500ms)", vendor.Calls(), time.Since(start))
		}
		// An already-finished context gets no retry at all.
		vendor2 := &scriptRT{respond: always(503)}
		r2 := NewRetry(policy3, nil, vendor2, clock.System())
		done, cancel2 := context.WithCancel(context.Background())
		cancel2()
		if resp, _ := r2.RoundTrip(newReq(t, done, "GET", "")); resp != nil {
			resp.Body.Close()
		}
		if vendor2.Calls() != 1 {
			t.Errorf("done context: %d calls, want 1", vendor2.Calls())
		}
	})
}

func TestRetryPerTryTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		vendor := &scriptRT{respond: sequence("hang", 200)}
		r := NewRetry(RetryPolicy{Attempts: 3, PerTry: time.Second}, nil, vendor, clock.System())
		start := time.Now()
		resp, err := r.RoundTrip(newReq(t, context.Background(), "GET", ""))
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || vendor.Calls() != 2 || time.Since(start) != time.Second {
			t.Errorf("status %d after %d calls in %v; want 200 after 2 calls in 1s", resp.StatusCode, vendor.Calls(), time.Since(start))
		}
		// The successful attempt's body is still readable: its context lives until Close.
		if b, err := io.ReadAll(resp.Body); err != nil || len(b) == 0 {
			t.Errorf("reading the body: %q, %v", b, err)
		}
		resp.Body.Close()
	})
}

func TestRetryHangingVendorBoundedByDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		vendor := &scriptRT{respond: sequence("hang")}
		r := NewRetry(RetryPolicy{Attempts: 10, PerTry: time.Second, Backoff: 50 * time.Millisecond}, nil, vendor, clock.System())
		ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := r.RoundTrip(newReq(t, ctx, "GET", ""))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want one matching context.DeadlineExceeded", err)
		}
		if elapsed := time.Since(start); elapsed > 2500*time.Millisecond {
			t.Errorf("caller waited %v, past its 2.5s deadline", elapsed)
		}
		if n := vendor.Calls(); n < 2 || n > 3 {
			t.Errorf("vendor saw %d attempts, want 2–3 (1s per try inside 2.5s)", n)
		}
	})
}

func TestRetryDrainsAndClosesRetriedBodies(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		vendor := &scriptRT{respond: sequence(503, 502, 200)}
		r := NewRetry(policy3, nil, vendor, clock.System())
		resp, err := r.RoundTrip(newReq(t, context.Background(), "GET", ""))
		if err != nil {
			t.Fatal(err)
		}
		for i, b := range vendor.issued[:2] {
			if !b.closed.Load() || !b.drained() {
				t.Errorf("retried response %d: closed=%v drained=%v, want both", i+1, b.closed.Load(), b.drained())
			}
		}
		if vendor.issued[2].closed.Load() {
			t.Error("the response handed to the caller was closed")
		}
		resp.Body.Close()
	})
}

func TestRetryStats(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		vendor := &scriptRT{respond: always(503)}
		b := NewBudget(0, 10*time.Second, 0.1, clock.System()) // one retry per window
		r := NewRetry(policy3, b, vendor, clock.System())
		for range 2 {
			resp, err := r.RoundTrip(newReq(t, context.Background(), "GET", ""))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
		if diff := cmp.Diff(RetryStats{Retries: 1, BudgetExceeded: 2}, r.Stats()); diff != "" {
			t.Errorf("Stats() (-want +got):\n%s", diff)
		}
	})
}

// TestRetryBudgetBoundsOutage runs a minute of a total vendor outage on a
// fake clock: 50 requests a second, 3 attempts each, budget 20% plus a
// floor of 1 retry/s over a 10s window.
func TestRetryBudgetBoundsOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		vendor := &scriptRT{respond: always(503)}
		clk := clock.NewFake(now0)
		budget := NewBudget(0.2, 10*time.Second, 1, clk)
		r := NewRetry(RetryPolicy{Attempts: 3, Backoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}, budget, vendor, clk)
		const perSecond, seconds = 50, 60
		for range seconds * perSecond {
			go func() {
				resp, err := r.RoundTrip(newReq(t, context.Background(), "GET", ""))
				if err == nil {
					resp.Body.Close()
				}
			}()
			// 1ms steps, each once every request is done or waiting out a
			// backoff, so retries go out within 1ms of their backoff.
			for range time.Second / perSecond / time.Millisecond {
				synctest.Wait()
				clk.Advance(time.Millisecond)
			}
		}
		for synctest.Wait(); clk.Waiters() > 0; synctest.Wait() {
			clk.Advance(time.Millisecond) // the last backoffs
		}
		requests := seconds * perSecond
		calls := vendor.Calls()
		bound := int(float64(requests)*1.2) + seconds*1
		t.Logf("outage %ds: %d requests, attempts=3 would send %d; vendor received %d (%.2f× requests); bound (1+0.2)×requests + 1/s×%ds = %d; stats %+v",
			seconds, requests, 3*requests, calls, float64(calls)/float64(requests), seconds, bound, r.Stats())
		if calls > bound {
			t.Errorf("vendor received %d calls, over the budget bound %d", calls, bound)
		}
		if calls <= requests {
			t.Errorf("vendor received %d calls: the budget allowed no retries at all", calls)
		}
	})
}
