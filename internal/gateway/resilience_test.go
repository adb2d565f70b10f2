package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/portcullis-dev/portcullis/internal/clock"
	"github.com/portcullis-dev/portcullis/internal/fallback"
	"github.com/portcullis-dev/portcullis/internal/problem"
	"github.com/portcullis-dev/portcullis/internal/store"
)

const resilientConfig = `
version: 1
callers:
  billing: {tokens: ["%[3]s"]}
  support: {tokens: ["%[4]s"]}
integrations:
  payments:
    upstream: %[1]s
    egress: {allow: ["%[2]s"], allow_private: true}
    request_headers: [Content-Type, Idempotency-Key]
    timeouts: {connect: 1s, request: 2s}
    retry: {attempts: 3, backoff: 1ms, max_backoff: 5ms, budget: 0.2}
    circuit_breaker: {failure_ratio: 0.5, min_requests: 10, window: 10s, open_for: 500ms, half_open_probes: 1}
    fallback: {stale_for: 1m, queue: true}
    routes:
      - {method: GET, path: "/v1/charges/{id}", callers: [billing, support]}
      - {method: POST, path: "/v1/charges", callers: [billing], queue: true}
`

// flaky is a vendor whose health the test switches.
type flaky struct {
	failing atomic.Bool
	hits    atomic.Int64
	posts   sync.Map // Idempotency-Key → count
}

func (f *flaky) handler(w http.ResponseWriter, r *http.Request) {
	f.hits.Add(1)
	if r.Method == http.MethodPost {
		k := r.Header.Get("Idempotency-Key")
		n, _ := f.posts.LoadOrStore(k, new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
	}
	if f.failing.Load() {
		w.WriteHeader(503)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"id":%q,"at":%d}`, r.URL.Path, time.Now().UnixNano())
}

// TestOutage drives a full vendor outage and reports what the vendor saw:
// the breaker must cap the traffic and then refuse without calling it. It
// runs in a synctest bubble, against the vendor's handler in process: the
// breaker's open_for is timed by gobreaker on the process clock, which
// only the bubble fakes.
func TestOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fv := &flaky{}
		f := newGatewayFixture(t, "http://payments.example:80", resilientConfig, Options{
			Store:  store.NewMemory(nil),
			Faults: func(http.RoundTripper) http.RoundTripper { return handlerTransport(fv.handler) },
		})
		defer f.gw.Close()
		fv.failing.Store(true)
		const calls = 200
		codes := map[string]int{}
		for i := 0; i < calls; i++ {
			resp := f.do(t, "GET", fmt.Sprintf("/payments/v1/charges/ch_%d", i), f.billing, nil, nil)
			codes[resp.Header.Get(problem.HeaderError)]++
			io.Copy(io.Discard, resp.Body)
		}
		vendorHits := fv.hits.Load()
		t.Logf("full outage: %d caller requests → %d vendor requests; answers %v", calls, vendorHits, codes)
		if codes["circuit_open"] == 0 {
			t.Fatalf("breaker never opened: %v", codes)
		}
		// Before opening the breaker saw min_requests calls, each with at most
		// attempts tries; after it, nothing.
		if vendorHits > 10*3 {
			t.Errorf("vendor got %d requests during the outage, want ≤ 30", vendorHits)
		}
		// Recovery: still refused just before open_for (500ms) has passed
		// since the last failure; after it a probe goes through and closes
		// the breaker.
		fv.failing.Store(false)
		time.Sleep(500*time.Millisecond - time.Millisecond)
		if resp := f.do(t, "GET", "/payments/v1/charges/early", f.billing, nil, nil); resp.Header.Get(problem.HeaderError) != "circuit_open" {
			t.Fatalf("before open_for: %d %s, want circuit_open", resp.StatusCode, resp.Header.Get(problem.HeaderError))
		}
		time.Sleep(time.Millisecond)
		resp := f.do(t, "GET", "/payments/v1/charges/ok", f.billing, nil, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("after recovery: %d %s\n%s", resp.StatusCode, resp.Header.Get(problem.HeaderError), f.logs)
		}
	})
}

// handlerTransport answers every request with h, in process.
type handlerTransport http.HandlerFunc

func (h handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	h(rec, r)
	resp := rec.Result()
	resp.Request = r
	return resp, nil
}

func TestStaleFallback(t *testing.T) {
	fv := &flaky{}
	v := newVendor(t, fv.handler)
	st := &setSignal{Memory: store.NewMemory(nil), set: make(chan string, 10)}
	f := newFixtureWith(t, v.URL, resilientConfig, Options{Store: st})
	first := f.do(t, "GET", "/payments/v1/charges/ch_1", f.billing, nil, nil)
	good, _ := io.ReadAll(first.Body)
	// The gateway stores the capture once it has copied the body, after
	// the caller may already have read it all: wait for that write.
	select {
	case <-st.set:
	case <-time.After(5 * time.Second):
		t.Fatal("the good answer was never stored for the stale fallback")
	}
	fv.failing.Store(true)
	resp := f.do(t, "GET", "/payments/v1/charges/ch_1", f.billing, nil, nil)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("X-Portcullis-Fallback") != "stale" || string(body) != string(good) {
		t.Fatalf("stale fallback: %d %q %s", resp.StatusCode, resp.Header.Get("X-Portcullis-Fallback"), body)
	}
	// Another caller never gets billing's cached answer.
	resp = f.do(t, "GET", "/payments/v1/charges/ch_1", f.support, nil, nil)
	if resp.Header.Get("X-Portcullis-Fallback") == "stale" {
		t.Error("stale entry shared across callers without share_stale")
	}
}

// setSignal is a memory store that tells the test when a stale capture
// has been written.
type setSignal struct {
	*store.Memory
	set chan string
}

func (s *setSignal) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	err := s.Memory.Set(ctx, key, val, ttl)
	if strings.HasPrefix(key, "stale:") {
		select {
		case s.set <- key:
		default:
		}
	}
	return err
}

func TestKillSwitch(t *testing.T) {
	fv := &flaky{}
	v := newVendor(t, fv.handler)
	clk := clock.NewFake(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	f := newFixtureWith(t, v.URL, resilientConfig, Options{Store: store.NewMemory(clk), Clock: clk})
	if err := f.gw.kill.Disable(t.Context(), "payments", "test"); err != nil {
		t.Fatal(err)
	}
	resp := f.do(t, "GET", "/payments/v1/charges/ch_x", f.billing, nil, nil)
	if resp.StatusCode != 503 || problemOf(t, resp).Code != problem.IntegrationDisabled {
		t.Errorf("disabled integration answered %d", resp.StatusCode)
	}
	if fv.hits.Load() != 0 {
		t.Error("vendor called while disabled")
	}
	if err := f.gw.kill.Enable(t.Context(), "payments", "test"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(fallback.KillSwitchRefresh) // a replica's cached copy would be re-read by now
	if resp := f.do(t, "GET", "/payments/v1/charges/ch_x", f.billing, nil, nil); resp.StatusCode != 200 {
		t.Errorf("re-enabled integration answered %d", resp.StatusCode)
	}
}

func TestQueueFallback(t *testing.T) {
	fv := &flaky{}
	v := newVendor(t, fv.handler)
	st := store.NewMemory(nil)
	f := newFixtureWith(t, v.URL, resilientConfig, Options{Store: st})
	f.gw.kill.Disable(t.Context(), "payments", "test")
	resp := f.do(t, "POST", "/payments/v1/charges", f.billing, strings.NewReader(`{"amount":5}`), map[string]string{
		"Prefer": "respond-async", "Content-Type": "application/json",
	})
	if resp.StatusCode != 202 || resp.Header.Get("X-Portcullis-Fallback") != "queued" {
		t.Fatalf("queue fallback: %d %q", resp.StatusCode, resp.Header.Get("X-Portcullis-Fallback"))
	}
	var acc struct {
		ID string `json:"job_id"`
	}
	json.NewDecoder(resp.Body).Decode(&acc)
	loc := resp.Header.Get("Location")
	if acc.ID == "" || loc != "/jobs/"+acc.ID {
		t.Fatalf("job id %q location %q", acc.ID, loc)
	}
	// Only the caller that queued it may read it.
	if r := f.do(t, "GET", loc, f.support, nil, nil); r.StatusCode != 404 {
		t.Errorf("another caller read the job: %d", r.StatusCode)
	}
	if r := f.do(t, "GET", loc, f.billing, nil, nil); r.StatusCode != 200 {
		t.Errorf("owner could not read the job: %d", r.StatusCode)
	}
	// A POST without Prefer is refused, not queued.
	if r := f.do(t, "POST", "/payments/v1/charges", f.billing, strings.NewReader(`{}`), nil); r.StatusCode != 503 {
		t.Errorf("plain POST while disabled: %d", r.StatusCode)
	}
}

func TestRateLimitAndBulkhead(t *testing.T) {
	release, holding := make(chan struct{}), make(chan struct{})
	v := newVendor(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/charges/hold" {
			close(holding)
			<-release
		}
		w.WriteHeader(200)
	})
	cfg := resilientConfig + "    rate_limit: {rate: 5/s, burst: 2}\n    limits: {max_concurrent: 1}\n"
	// A fake clock: the bucket does not refill while the test runs, however slow the machine.
	clk := clock.NewFake(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	f := newFixtureWith(t, v.URL, cfg, Options{Store: store.NewMemory(clk), Clock: clk})
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, _ := http.NewRequest("GET", f.srv.URL+"/payments/v1/charges/hold", nil)
		req.Header.Set("Authorization", "Bearer "+f.billing)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	<-holding
	resp := f.do(t, "GET", "/payments/v1/charges/x", f.billing, nil, nil)
	if resp.StatusCode != 503 || problemOf(t, resp).Code != problem.Overloaded {
		t.Errorf("second concurrent call: %d, want overloaded", resp.StatusCode)
	}
	close(release)
	<-done
	var limited *http.Response
	for i := 0; i < 10; i++ {
		r := f.do(t, "GET", "/payments/v1/charges/x", f.billing, nil, nil)
		if r.StatusCode == 429 {
			limited = r
			break
		}
	}
	if limited == nil {
		t.Fatal("never rate limited at 5/s burst 2")
	}
	if problemOf(t, limited).Code != problem.RateLimited || limited.Header.Get("Retry-After") == "" {
		t.Errorf("429 without code or Retry-After: %v", limited.Header)
	}
}

func TestNonIdempotentPostIsNeverRetried(t *testing.T) {
	fv := &flaky{}
	v := newVendor(t, fv.handler)
	f := newFixtureWith(t, v.URL, resilientConfig, Options{Store: store.NewMemory(nil)})
	fv.failing.Store(true)
	f.do(t, "POST", "/payments/v1/charges", f.billing, strings.NewReader(`{}`), nil)
	f.do(t, "POST", "/payments/v1/charges", f.billing, strings.NewReader(`{}`), map[string]string{"Idempotency-Key": "k-1"})
	if n, _ := fv.posts.Load(""); n.(*atomic.Int64).Load() != 1 {
		t.Errorf("POST without Idempotency-Key sent %d times", n.(*atomic.Int64).Load())
	}
	if n, _ := fv.posts.Load("k-1"); n.(*atomic.Int64).Load() != 3 {
		t.Errorf("POST with Idempotency-Key sent %d times, want 3 attempts", n.(*atomic.Int64).Load())
	}
}
