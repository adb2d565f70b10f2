package resilience

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/portcullis-dev/portcullis/internal/clock"
)

// admitted counts how many of n immediate Wait calls pass.
func admitted(t *testing.T, l *Limiter, caller string, n int) int {
	t.Helper()
	ok := 0
	for range n {
		if _, err := l.Wait(context.Background(), caller); err == nil {
			ok++
		} else if !errors.Is(err, ErrRateLimited) {
			t.Fatalf("Wait: %v, want nil or ErrRateLimited", err)
		}
	}
	return ok
}

func TestLimiterTokenBucket(t *testing.T) {
	clk := clock.NewFake(now0)
	l := NewLimiter(LimiterConfig{Rate: 10, Burst: 5}, clk)
	if got := admitted(t, l, "billing", 20); got != 5 {
		t.Errorf("burst admitted %d, want 5", got)
	}
	ra, err := l.Wait(context.Background(), "billing")
	var rle *RateLimitError
	if !errors.As(err, &rle) || rle.Scope != "integration" {
		t.Fatalf("err = %v, want an integration RateLimitError", err)
	}
	if ra != 100*time.Millisecond {
		t.Errorf("retryAfter = %v, want 100ms (one token at 10/s)", ra)
	}
	clk.Advance(time.Second)
	if got := admitted(t, l, "billing", 20); got != 5 {
		t.Errorf("after 1s admitted %d, want 5 (refilled to burst)", got)
	}
	if s := l.Snapshot(); s.Refused != 31 {
		t.Errorf("Refused = %d, want 31 (15 + 1 + 15)", s.Refused)
	}
}

func TestLimiterPerCaller(t *testing.T) {
	clk := clock.NewFake(now0)
	l := NewLimiter(LimiterConfig{Rate: 100, Burst: 100, PerCaller: 2}, clk)
	if got := admitted(t, l, "billing", 10); got != 2 {
		t.Errorf("billing admitted %d, want 2 (its own burst)", got)
	}
	if got := admitted(t, l, "support", 10); got != 2 {
		t.Errorf("support admitted %d, want 2: one caller must not starve another", got)
	}
	_, err := l.Wait(context.Background(), "billing")
	var rle *RateLimitError
	if !errors.As(err, &rle) || rle.Scope != "caller" {
		t.Errorf("err = %v, want a caller-scope refusal", err)
	}
}

func TestLimiterCallerMapIsBounded(t *testing.T) {
	clk := clock.NewFake(now0)
	l := NewLimiter(LimiterConfig{PerCaller: 1, MaxCallers: 3}, clk)
	for i := range 10 {
		admitted(t, l, fmt.Sprint("caller-", i), 1)
	}
	if s := l.Snapshot(); s.Callers > 3 {
		t.Fatalf("holding %d caller buckets, limit 3", s.Callers)
	}
	// Callers past the bound share one overflow bucket: still limited.
	if got := admitted(t, l, "caller-42", 5) + admitted(t, l, "caller-43", 5); got != 0 {
		t.Errorf("overflow callers admitted %d after the shared bucket was spent, want 0", got)
	}
	// Once buckets are idle (refilled) they are swept and new callers get their own.
	clk.Advance(2 * time.Second)
	if got := admitted(t, l, "caller-99", 1); got != 1 {
		t.Errorf("new caller after idle sweep admitted %d, want 1", got)
	}
	if s := l.Snapshot(); s.Callers > 3 {
		t.Errorf("holding %d caller buckets after sweep, limit 3", s.Callers)
	}
}

func TestLimiterMaxWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewLimiter(LimiterConfig{Rate: 2, Burst: 1, MaxWait: 600 * time.Millisecond}, clock.System())
		start := time.Now()
		for i, want := range []time.Duration{0, 500 * time.Millisecond, time.Second} {
			if _, err := l.Wait(context.Background(), "c"); err != nil {
				t.Fatalf("call %d: %v", i, err)
			}
			if got := time.Since(start); got != want {
				t.Errorf("call %d admitted at %v, want %v", i, got, want)
			}
		}
		// Two queued calls ahead: the next would wait 1s > max_wait.
		queued := make(chan error, 1)
		go func() { _, err := l.Wait(context.Background(), "c"); queued <- err }()
		synctest.Wait()
		ra, err := l.Wait(context.Background(), "c")
		if !errors.Is(err, ErrRateLimited) || ra != time.Second {
			t.Errorf("Wait = %v, %v; want ErrRateLimited after max_wait with retryAfter 1s", ra, err)
		}
		if err := <-queued; err != nil || time.Since(start) != 1500*time.Millisecond {
			t.Errorf("queued call: %v at %v, want admitted at 1.5s", err, time.Since(start))
		}
	})
}

func TestLimiterWaitCancelledGivesTokenBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewLimiter(LimiterConfig{Rate: 1, Burst: 1, MaxWait: 5 * time.Second}, clock.System())
		admitted(t, l, "c", 1)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		if _, err := l.Wait(ctx, "c"); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Wait = %v, want DeadlineExceeded", err)
		}
		// The abandoned reservation is returned: a token is due at 1s, not 2s.
		start := time.Now()
		if _, err := l.Wait(context.Background(), "c"); err != nil {
			t.Fatal(err)
		}
		if got := time.Since(start); got != 900*time.Millisecond {
			t.Errorf("next call admitted after %v, want 900ms", got)
		}
	})
}

func TestLimiterObeysVendorHeaders(t *testing.T) {
	epochIn := func(d time.Duration) string { return strconv.FormatInt(now0.Add(d).Unix(), 10) }
	tests := []struct {
		name      string
		status    int
		h         http.Header
		wantPause time.Duration // 0: not paused
	}{
		{name: "429-retry-after-seconds", status: 429, h: hdr("Retry-After", "7"), wantPause: 7 * time.Second},
		{name: "503-retry-after-date", status: 503, h: hdr("Retry-After", now0.Add(20*time.Second).Format(http.TimeFormat)), wantPause: 20 * time.Second},
		{name: "200-retry-after-ignored", status: 200, h: hdr("Retry-After", "7")},
		{name: "429-without-hint-default-pause", status: 429, h: hdr(), wantPause: DefaultVendorPause},
		{name: "x-ratelimit-zero-epoch-reset", status: 200, h: hdr("X-RateLimit-Remaining", "0", "X-RateLimit-Reset", epochIn(30*time.Second)), wantPause: 30 * time.Second},
		{name: "x-ratelimit-zero-delta-reset", status: 200, h: hdr("X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "4"), wantPause: 4 * time.Second},
		{name: "x-ratelimit-plenty-left", status: 200, h: hdr("X-RateLimit-Remaining", "50", "X-RateLimit-Reset", "4")},
		{name: "ietf-structured-zero", status: 200, h: hdr("RateLimit", `"default";r=0;t=12`), wantPause: 12 * time.Second},
		{name: "ietf-draft6-zero", status: 200, h: hdr("RateLimit-Remaining", "0", "RateLimit-Reset", "9"), wantPause: 9 * time.Second},
		{name: "429-with-quota-reset-uses-reset", status: 429, h: hdr("X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "3"), wantPause: 3 * time.Second},
		{name: "pause-capped-at-max-pause", status: 429, h: hdr("Retry-After", "86400"), wantPause: time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := clock.NewFake(now0)
			l := NewLimiter(LimiterConfig{Rate: 1000, MaxPause: time.Minute}, clk)
			l.Observe(tc.status, tc.h)
			ra, err := l.Wait(context.Background(), "c")
			if tc.wantPause == 0 {
				if err != nil {
					t.Fatalf("Wait = %v, want admitted", err)
				}
				return
			}
			var rle *RateLimitError
			if !errors.As(err, &rle) || rle.Scope != "vendor" || ra != tc.wantPause {
				t.Fatalf("Wait = %v, %v; want a vendor refusal for %v", ra, err, tc.wantPause)
			}
			if got := l.Snapshot().PausedUntil; !got.Equal(now0.Add(tc.wantPause)) {
				t.Errorf("PausedUntil = %v, want %v", got, now0.Add(tc.wantPause))
			}
			clk.Advance(tc.wantPause - time.Millisecond)
			if _, err := l.Wait(context.Background(), "c"); err == nil {
				t.Error("admitted before the vendor's reset")
			}
			clk.Advance(time.Millisecond)
			if _, err := l.Wait(context.Background(), "c"); err != nil {
				t.Errorf("refused at the vendor's reset: %v", err)
			}
		})
	}
}

func TestLimiterSpendsVendorQuotaThenPauses(t *testing.T) {
	clk := clock.NewFake(now0)
	l := NewLimiter(LimiterConfig{}, clk) // no token buckets: only the vendor's word
	l.Observe(200, hdr("X-RateLimit-Remaining", "3", "X-RateLimit-Reset", "10"))
	if got := admitted(t, l, "c", 10); got != 3 {
		t.Errorf("admitted %d with 3 left in the vendor's quota, want 3", got)
	}
	want := LimiterState{VendorRemaining: 0, VendorReset: now0.Add(10 * time.Second), PausedUntil: now0.Add(10 * time.Second), Refused: 7}
	if diff := cmp.Diff(want, l.Snapshot()); diff != "" {
		t.Errorf("Snapshot() (-want +got):\n%s", diff)
	}
	clk.Advance(10 * time.Second)
	if got := admitted(t, l, "c", 10); got != 10 {
		t.Errorf("after the reset admitted %d, want all 10 (quota unknown again)", got)
	}
	if s := l.Snapshot(); s.VendorRemaining != -1 || !s.VendorReset.IsZero() || !s.PausedUntil.IsZero() {
		t.Errorf("after reset Snapshot() = %+v, want quota unknown and not paused", s)
	}
}

func TestLimiterWaitsOutShortVendorPause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewLimiter(LimiterConfig{MaxWait: 2 * time.Second}, clock.System())
		l.Observe(429, hdr("Retry-After", "1"))
		start := time.Now()
		if _, err := l.Wait(context.Background(), "c"); err != nil {
			t.Fatal(err)
		}
		if got := time.Since(start); got != time.Second {
			t.Errorf("admitted after %v, want at the end of the 1s pause", got)
		}
	})
}

func TestRetryAfterSeconds(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want int
	}{{0, 1}, {time.Millisecond, 1}, {time.Second, 1}, {1001 * time.Millisecond, 2}, {time.Minute, 60}} {
		if got := RetryAfterSeconds(tc.d); got != tc.want {
			t.Errorf("RetryAfterSeconds(%v) = %d, want %d", tc.d, got, tc.want)
		}
	}
}

func TestLimiterObservingStopsRetriesDuringVendorPause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The first attempt's 503 says the quota is spent for 5s: the retry
		// must not be sent, and the caller learns when to come back.
		first := status(503, "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "5")
		vendor := &scriptRT{respond: sequence(first, 200)}
		// The bubble only turns a wrong wait into a deadlock failure; time
		// is the fake clock's.
		clk := clock.NewFake(now0)
		l := NewLimiter(LimiterConfig{}, clk)
		r := NewRetry(policy3, nil, l.Observing(vendor), clk)
		errc := make(chan error, 1)
		go func() {
			_, err := r.RoundTrip(newReq(t, context.Background(), "GET", ""))
			errc <- err
		}()
		synctest.Wait() // the retry waits out its backoff
		clk.Advance(policy3.MaxBackoff)
		err := <-errc
		var rle *RateLimitError
		if !errors.As(err, &rle) || rle.Scope != "vendor" || rle.RetryAfter > 5*time.Second || rle.RetryAfter < 4*time.Second {
			t.Fatalf("RoundTrip error = %v, want a vendor pause of about 5s", err)
		}
		if vendor.Calls() != 1 {
			t.Errorf("vendor saw %d calls, want 1: no retry into the pause", vendor.Calls())
		}
		if _, err := l.Wait(context.Background(), "c"); !errors.Is(err, ErrRateLimited) {
			t.Errorf("Wait = %v, want a refusal during the pause", err)
		}
		// Just before the pause ends it still refuses; after it the same
		// chain goes through.
		clk.Set(now0.Add(5*time.Second - time.Millisecond))
		if _, err := l.Wait(context.Background(), "c"); !errors.Is(err, ErrRateLimited) {
			t.Errorf("Wait = %v 1ms before the pause ends, want a refusal", err)
		}
		clk.Advance(time.Millisecond)
		resp, err := r.RoundTrip(newReq(t, context.Background(), "GET", ""))
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("after the pause: %v, %v", resp, err)
		}
		resp.Body.Close()
	})
}
