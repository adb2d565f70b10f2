package resilience

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testVendor is an httptest vendor whose behaviour per call is chosen by
// act, given the 1-based call number. It counts calls, and calls per
// X-Test-Id, on the vendor's side of the wire.
type testVendor struct {
	*httptest.Server
	act   func(n int64, w http.ResponseWriter, r *http.Request)
	calls atomic.Int64

	mu   sync.Mutex
	byID map[string]int
	stop chan struct{}
}

func newTestVendor(t *testing.T, act func(n int64, w http.ResponseWriter, r *http.Request)) *testVendor {
	v := &testVendor{act: act, byID: map[string]int{}, stop: make(chan struct{})}
	v.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		n := v.calls.Add(1)
		v.mu.Lock()
		v.byID[r.Header.Get("X-Test-Id")]++
		v.mu.Unlock()
		v.act(n, w, r)
	}))
	t.Cleanup(func() {
		close(v.stop) // release hanging handlers
		v.Close()
	})
	return v
}

func (v *testVendor) seen(id string) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.byID[id]
}

// Behaviours.
func reply(code int, kv ...string) func(int64, http.ResponseWriter, *http.Request) {
	return func(_ int64, w http.ResponseWriter, _ *http.Request) {
		for i := 0; i < len(kv); i += 2 {
			w.Header().Set(kv[i], kv[i+1])
		}
		w.WriteHeader(code)
		_, _ = io.WriteString(w, "vendor body")
	}
}

func resetConn(_ int64, w http.ResponseWriter, _ *http.Request) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		_ = conn.Close()
	}
}

func (v *testVendor) hang(_ int64, _ http.ResponseWriter, r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-v.stop:
	}
}

func slow(d time.Duration, then func(int64, http.ResponseWriter, *http.Request)) func(int64, http.ResponseWriter, *http.Request) {
	return func(n int64, w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(d):
			then(n, w, r)
		case <-r.Context().Done():
		}
	}
}

func transport(t *testing.T) *http.Transport {
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

func doGet(ctx context.Context, rt http.RoundTripper, url, id string) (int, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	req.Header.Set("X-Test-Id", id)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func TestVendorResetConnectionRetriedForGET(t *testing.T) {
	v := newTestVendor(t, nil)
	v.act = func(n int64, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			resetConn(n, w, r)
			return
		}
		reply(200)(n, w, r)
	}
	r := NewRetry(RetryPolicy{Attempts: 3, Backoff: time.Millisecond}, nil, transport(t), nil)
	code, err := doGet(context.Background(), r, v.URL, "g1")
	if err != nil || code != 200 {
		t.Fatalf("GET = %d, %v; want 200 after a retry", code, err)
	}
	if v.seen("g1") != 2 {
		t.Errorf("vendor saw the GET %d times, want 2", v.seen("g1"))
	}
}

// TestVendorNonIdempotentNeverSentTwice drives POSTs without an
// Idempotency-Key through retry(breaker(transport)) at a vendor that
// flaps between resets, 503 with Retry-After, 502 and 200, and checks on
// the vendor's side that none was ever received twice.
func TestVendorNonIdempotentNeverSentTwice(t *testing.T) {
	v := newTestVendor(t, nil)
	v.act = func(n int64, w http.ResponseWriter, r *http.Request) {
		switch n % 4 {
		case 0:
			resetConn(n, w, r)
		case 1:
			reply(503, "Retry-After", "0")(n, w, r)
		case 2:
			reply(502)(n, w, r)
		default:
			reply(200)(n, w, r)
		}
	}
	chain := NewRetry(RetryPolicy{Attempts: 5, Backoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond, MaxRetryAfter: time.Second},
		nil, NewBreaker("flappy", BreakerConfig{MinRequests: 1000}, transport(t), nil, nil), nil)
	const n = 200
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			method, key := "POST", ""
			switch i % 4 {
			case 1:
				method = "PATCH"
			case 2:
				method = "GET"
			case 3:
				key = fmt.Sprint("key-", i)
			}
			req, _ := http.NewRequest(method, v.URL, stringsReader("payload"))
			req.Header.Set("X-Test-Id", strconv.Itoa(i))
			if key != "" {
				req.Header.Set("Idempotency-Key", key)
			}
			if resp, err := chain.RoundTrip(req); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	replayed := map[string]int{}
	for i := range n {
		seen := v.seen(strconv.Itoa(i))
		if i%4 < 2 && seen > 1 {
			t.Errorf("request %d (no Idempotency-Key, %s) reached the vendor %d times", i, map[int]string{0: "POST", 1: "PATCH"}[i%4], seen)
		}
		if seen > 1 {
			replayed[map[int]string{0: "post", 1: "patch", 2: "get", 3: "post-with-key"}[i%4]]++
		}
	}
	t.Logf("vendor calls %d for %d requests; requests replayed by kind: %v", v.calls.Load(), n, replayed)
	if replayed["get"] == 0 || replayed["post-with-key"] == 0 {
		t.Errorf("safe requests were never retried (%v): the test would prove nothing", replayed)
	}
}

func TestVendorHangingLatencyBoundedByDeadline(t *testing.T) {
	v := newTestVendor(t, nil)
	v.act = v.hang
	const deadline = 300 * time.Millisecond
	chain := NewRetry(RetryPolicy{Attempts: 10, Backoff: 5 * time.Millisecond, PerTry: 100 * time.Millisecond},
		NewBudget(0.2, 10*time.Second, 10, nil), NewBreaker("hangs", BreakerConfig{}, transport(t), nil, nil), nil)
	var worst time.Duration
	for i := range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		start := time.Now()
		_, err := doGet(ctx, chain, v.URL, fmt.Sprint("h", i))
		elapsed := time.Since(start)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("call %d: err = %v, want DeadlineExceeded", i, err)
		}
		worst = max(worst, elapsed)
	}
	t.Logf("vendor hangs: deadline %v, per-try 100ms; worst caller latency %v over 5 calls, vendor saw %d attempts",
		deadline, worst.Round(time.Millisecond), v.calls.Load())
	if worst > deadline+100*time.Millisecond {
		t.Errorf("worst caller latency %v, want ≤ deadline %v (+100ms scheduling slack)", worst, deadline)
	}
}

func TestVendorSlowFirstTryRetriedWithinPerTry(t *testing.T) {
	v := newTestVendor(t, nil)
	v.act = func(n int64, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			slow(5*time.Second, reply(200))(n, w, r)
			return
		}
		reply(200)(n, w, r)
	}
	r := NewRetry(RetryPolicy{Attempts: 2, PerTry: 100 * time.Millisecond}, nil, transport(t), nil)
	start := time.Now()
	code, err := doGet(context.Background(), r, v.URL, "s")
	if err != nil || code != 200 {
		t.Fatalf("GET = %d, %v; want 200 from the second try", code, err)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("took %v: the per-try timeout did not cut the slow first try", elapsed)
	}
}

// TestVendorBudgetBoundsOutage: the vendor fails every call; the retry
// budget keeps what it receives near the request count.
func TestVendorBudgetBoundsOutage(t *testing.T) {
	v := newTestVendor(t, reply(503))
	budget := NewBudget(0.2, 10*time.Second, 1, nil)
	chain := NewRetry(RetryPolicy{Attempts: 3, Backoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}, budget, transport(t), nil)
	const requests, workers = 400, 8
	var wg sync.WaitGroup
	var next atomic.Int64
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for i := next.Add(1); i <= requests; i = next.Add(1) {
				_, _ = doGet(context.Background(), chain, v.URL, "")
			}
		})
	}
	wg.Wait()
	calls := v.calls.Load()
	bound := int64(requests*1.2 + 10) // ratio × requests + floor (1/s × 10s window)
	t.Logf("httptest vendor failing 100%% for %v: %d requests × attempts 3 = %d possible; vendor received %d (%.2f× requests); budget bound %d",
		time.Since(start).Round(time.Millisecond), requests, 3*requests, calls, float64(calls)/requests, bound)
	if calls > bound {
		t.Errorf("vendor received %d calls, over the budget bound %d", calls, bound)
	}
}

// TestVendorLimiterStopsBeforeQuotaRunsOut: a vendor with a quota of 5
// per hour, announced in X-RateLimit headers, never has to send a 429.
func TestVendorLimiterStopsBeforeQuotaRunsOut(t *testing.T) {
	reset := strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)
	var tooMany atomic.Int64
	v := newTestVendor(t, func(n int64, w http.ResponseWriter, r *http.Request) {
		left := 5 - n
		if left < 0 {
			tooMany.Add(1)
			reply(429, "Retry-After", "3600")(n, w, r)
			return
		}
		reply(200, "X-RateLimit-Remaining", strconv.FormatInt(left, 10), "X-RateLimit-Reset", reset)(n, w, r)
	})
	l := NewLimiter(LimiterConfig{Rate: 1000, MaxPause: 2 * time.Hour}, nil)
	tr := transport(t)
	refused := 0
	for range 20 {
		if _, err := l.Wait(context.Background(), "billing"); err != nil {
			refused++
			continue
		}
		req, _ := http.NewRequest("GET", v.URL, nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		l.Observe(resp.StatusCode, resp.Header)
		resp.Body.Close()
	}
	if v.calls.Load() != 5 || tooMany.Load() != 0 || refused != 15 {
		t.Errorf("vendor calls %d, 429s %d, refused locally %d; want 5, 0, 15", v.calls.Load(), tooMany.Load(), refused)
	}
	if p := l.Snapshot().PausedUntil; p.Before(time.Now().Add(59 * time.Minute)) {
		t.Errorf("paused until %v, want the vendor's reset an hour away", p)
	}
}
