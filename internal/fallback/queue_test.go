package fallback

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/portcullis-dev/portcullis/internal/clock"
	"github.com/portcullis-dev/portcullis/internal/resilience"
	"github.com/portcullis-dev/portcullis/internal/store"
)

func callerReq(t *testing.T, method, target, body string, kv ...string) *http.Request {
	t.Helper()
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	for i := 0; i < len(kv); i += 2 {
		req.Header.Set(kv[i], kv[i+1])
	}
	return req
}

func storedCall(t *testing.T, st store.Queue, id string) (store.Job, Call) {
	t.Helper()
	j, err := st.GetJob(context.Background(), QueueName, id)
	if err != nil {
		t.Fatal(err)
	}
	var c Call
	if err := json.Unmarshal(j.Payload, &c); err != nil {
		t.Fatal(err)
	}
	return j, c
}

func TestSubmitStoresCallWithoutCallerSecrets(t *testing.T) {
	st := store.NewMemory(nil)
	q := NewQueue(st, QueueConfig{Headers: func(string) []string { return []string{"Content-Type", "Accept", "Authorization"} }}, nil)
	req := callerReq(t, "POST", "/v1/charges?expand=customer", "", "Authorization", "Bearer pcs_caller_secret",
		"Cookie", "s=1", "Content-Type", "application/json", "X-Other", "dropped", "Prefer", "respond-async",
		"Idempotency-Key", "caller-key-1", "X-Request-Id", "req-1")
	id, err := q.Submit(context.Background(), "billing", "payments", req, []byte(`{"amount":100}`))
	if err != nil {
		t.Fatal(err)
	}
	j, c := storedCall(t, st, id)
	want := Call{
		Integration: "payments", Caller: "billing", Method: "POST", Path: "/v1/charges", RawQuery: "expand=customer",
		Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{"amount":100}`),
		IdempotencyKey: "caller-key-1", RequestID: "req-1",
	}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("stored call (-want +got):\n%s", diff)
	}
	if j.Owner != "billing" || j.State != store.JobPending {
		t.Errorf("job owner %q state %q, want billing pending", j.Owner, j.State)
	}
	if bytes.Contains(j.Payload, []byte("pcs_caller_secret")) {
		t.Error("the caller's credential was stored with the job")
	}
}

func TestSubmitGeneratesIdempotencyKey(t *testing.T) {
	st := store.NewMemory(nil)
	q := NewQueue(st, QueueConfig{}, nil)
	keys := map[string]bool{}
	for range 3 {
		id, err := q.Submit(context.Background(), "billing", "payments", callerReq(t, "POST", "/v1/charges", ""), nil)
		if err != nil {
			t.Fatal(err)
		}
		_, c := storedCall(t, st, id)
		if !strings.HasPrefix(c.IdempotencyKey, "pcq_") || len(c.IdempotencyKey) < 20 {
			t.Errorf("generated key %q", c.IdempotencyKey)
		}
		keys[c.IdempotencyKey] = true
	}
	if len(keys) != 3 {
		t.Errorf("generated keys not unique: %v", keys)
	}
}

func TestSubmitRefusesLargeBody(t *testing.T) {
	q := NewQueue(store.NewMemory(nil), QueueConfig{MaxBodyBytes: 4}, nil)
	_, err := q.Submit(context.Background(), "billing", "payments", callerReq(t, "POST", "/v1/x", ""), []byte("12345"))
	if !errors.Is(err, ErrBodyTooLarge) {
		t.Errorf("Submit = %v, want ErrBodyTooLarge", err)
	}
}

// TestSubmitAfterHoldsFirstDelivery: a job queued with a delay (a vendor's
// Retry-After) is not claimable before it, and is at it.
func TestSubmitAfterHoldsFirstDelivery(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	st := store.NewMemory(clk)
	q := NewQueue(st, QueueConfig{}, clk)
	id, err := q.SubmitAfter(context.Background(), "billing", "payments", callerReq(t, "POST", "/v1/charges", ""), nil, 90*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if j, _ := storedCall(t, st, id); !j.NotBefore.Equal(clk.Now().Add(90 * time.Second)) {
		t.Errorf("NotBefore %v, want now + 90s", j.NotBefore)
	}
	claim := func() int {
		jobs, err := st.Claim(context.Background(), QueueName, 10, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return len(jobs)
	}
	clk.Advance(89 * time.Second)
	if n := claim(); n != 0 {
		t.Fatalf("claimed %d jobs 89s into a 90s Retry-After", n)
	}
	clk.Advance(time.Second)
	if n := claim(); n != 1 {
		t.Errorf("claimed %d jobs once the Retry-After passed, want 1", n)
	}
}

// vendorRT is an in-memory vendor recording what it received.
type vendorRT struct {
	mu       sync.Mutex
	received []*http.Request
	bodies   []string
	respond  func(n int) (*http.Response, error)
}

func (v *vendorRT) RoundTrip(req *http.Request) (*http.Response, error) {
	b, _ := io.ReadAll(req.Body)
	v.mu.Lock()
	v.received = append(v.received, req)
	v.bodies = append(v.bodies, string(b))
	n := len(v.received)
	v.mu.Unlock()
	return v.respond(n)
}

func (v *vendorRT) count() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.received)
}

func answer(code int, body string, kv ...string) *http.Response {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return &http.Response{StatusCode: code, Header: h, Body: io.NopCloser(strings.NewReader(body))}
}

func answers(outcomes ...*http.Response) func(int) (*http.Response, error) {
	return func(n int) (*http.Response, error) {
		r := *outcomes[min(n, len(outcomes))-1]
		b, _ := io.ReadAll(r.Body)
		outcomes[min(n, len(outcomes))-1].Body = io.NopCloser(bytes.NewReader(b))
		r.Body = io.NopCloser(bytes.NewReader(b))
		return &r, nil
	}
}

func targetFor(rt http.RoundTripper) func(string) (Target, error) {
	up, _ := url.Parse("https://api.payments.example/base/")
	return func(name string) (Target, error) {
		if name != "payments" {
			return Target{}, ErrUnknownIntegration
		}
		return Target{Transport: rt, Upstream: up}, nil
	}
}

// runWorker runs w until the test's bubble code calls the returned stop.
func runWorker(w *Worker) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = w.Run(ctx); close(done) }()
	return func() { cancel(); <-done }
}

// workerEpoch is where the worker tests' fake clocks start.
var workerEpoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// advance moves clk forward by d in steps of step, each once every goroutine
// of the test's bubble (worker, deliveries) is blocked, so a timer due on
// the way fires no more than step late and the work it starts is done
// before the clock moves on.
func advance(clk *clock.Fake, d, step time.Duration) {
	for end := clk.Now().Add(d); clk.Now().Before(end); {
		synctest.Wait()
		clk.Advance(min(step, end.Sub(clk.Now())))
	}
	synctest.Wait()
}

func TestWorkerDeliversWithRetriesAndOneIdempotencyKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := clock.NewFake(workerEpoch)
		st := store.NewMemory(clk)
		q := NewQueue(st, QueueConfig{}, clk)
		vendor := &vendorRT{respond: answers(answer(503, "down"), answer(429, "slow down", "Retry-After", "30"), answer(201, `{"id":"ch_9"}`, "Content-Type", "application/json", "Set-Cookie", "x=1"))}
		w := NewWorker(q, WorkerConfig{Target: targetFor(vendor), Backoff: time.Second, MaxBackoff: 4 * time.Second}, clk)
		stop := runWorker(w)
		defer stop()

		start := clk.Now()
		id, err := q.Submit(context.Background(), "billing", "payments",
			callerReq(t, "POST", "/v1/charges?x=1", "", "Content-Type", "application/json"), []byte(`{"amount":100}`))
		if err != nil {
			t.Fatal(err)
		}
		advance(clk, time.Minute, 100*time.Millisecond)

		v, err := q.Get(context.Background(), "billing", id)
		if err != nil {
			t.Fatal(err)
		}
		wantResult := &Result{Status: 201, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{"id":"ch_9"}`)}
		if v.State != "succeeded" || v.Attempts != 3 || !cmp.Equal(wantResult, v.Result) {
			t.Fatalf("job %+v (result %+v), want succeeded after 3 attempts with %+v", v, v.Result, wantResult)
		}
		keys := map[string]bool{}
		for i, r := range vendor.received {
			keys[r.Header.Get("Idempotency-Key")] = true
			if got := r.URL.String(); got != "https://api.payments.example/base/v1/charges?x=1" {
				t.Errorf("delivery %d went to %s", i+1, got)
			}
			if vendor.bodies[i] != `{"amount":100}` || r.Method != "POST" || r.Header.Get("Content-Type") != "application/json" {
				t.Errorf("delivery %d: %s body %q content-type %q", i+1, r.Method, vendor.bodies[i], r.Header.Get("Content-Type"))
			}
		}
		if len(keys) != 1 || keys[""] {
			t.Errorf("deliveries carried Idempotency-Keys %v, want one and the same", keys)
		}
		// The third attempt waited for the vendor's Retry-After (30s) after the second.
		if gap := v.Updated.Sub(start); gap < 30*time.Second {
			t.Errorf("succeeded %v after submit, want ≥ 30s (Retry-After honoured)", gap)
		}
	})
}

// TestWorkerWaitsOutVendorPause: a delivery refused by the vendor's pause
// (the gateway's limiter after a 429) is tried again when the pause ends,
// not at the next backoff.
func TestWorkerWaitsOutVendorPause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := clock.NewFake(workerEpoch)
		q := NewQueue(store.NewMemory(clk), QueueConfig{}, clk)
		vendor := &vendorRT{respond: func(n int) (*http.Response, error) {
			if n == 1 {
				return nil, &resilience.RateLimitError{Scope: "vendor", RetryAfter: 40 * time.Second}
			}
			return answer(201, "{}"), nil
		}}
		w := NewWorker(q, WorkerConfig{Target: targetFor(vendor), Backoff: time.Second, MaxBackoff: 2 * time.Second}, clk)
		stop := runWorker(w)
		defer stop()
		start := clk.Now()
		id, err := q.Submit(context.Background(), "billing", "payments", callerReq(t, "POST", "/v1/charges", ""), nil)
		if err != nil {
			t.Fatal(err)
		}
		advance(clk, time.Minute, 100*time.Millisecond)
		v, err := q.Get(context.Background(), "billing", id)
		if err != nil {
			t.Fatal(err)
		}
		if v.State != "succeeded" || v.Attempts != 2 {
			t.Fatalf("job %s after %d attempts, want succeeded after 2", v.State, v.Attempts)
		}
		if gap := v.Updated.Sub(start); gap < 40*time.Second {
			t.Errorf("delivered %v after submit, want ≥ 40s (the vendor's pause)", gap)
		}
	})
}

// TestWorkerDrainsBacklogWithoutWaitingForPolls: a backlog larger than
// Concurrency (jobs waiting when the gateway starts) is delivered as fast
// as deliveries end, not one batch per PollInterval.
func TestWorkerDrainsBacklogWithoutWaitingForPolls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := clock.NewFake(workerEpoch)
		st := store.NewMemory(clk)
		q := NewQueue(st, QueueConfig{}, clk)
		const jobs = 20
		for range jobs {
			if _, err := q.Submit(context.Background(), "billing", "payments", callerReq(t, "POST", "/v1/charges", ""), nil); err != nil {
				t.Fatal(err)
			}
		}
		vendor := &vendorRT{respond: func(int) (*http.Response, error) { return answer(201, "{}"), nil }}
		w := NewWorker(q, WorkerConfig{Target: targetFor(vendor), Concurrency: 2, PollInterval: time.Second}, clk)
		stop := runWorker(w)
		defer stop()
		// The fake clock does not move: every job must be delivered
		// without a PollInterval passing.
		synctest.Wait()
		if n := vendor.count(); n != jobs {
			t.Errorf("%d of %d jobs at concurrency 2 delivered without a poll wait, want all", n, jobs)
		}
	})
}

func TestWorkerOutcomes(t *testing.T) {
	tests := []struct {
		name        string
		integration string
		vendor      func(int) (*http.Response, error)
		wantState   string
		wantCalls   int
		wantErr     string
		wantStatus  int
	}{
		{name: "client-error-is-final", integration: "payments", vendor: answers(answer(400, "bad")),
			wantState: "failed", wantCalls: 1, wantErr: "vendor answered 400", wantStatus: 400},
		{name: "gives-up-after-max-attempts", integration: "payments", vendor: answers(answer(503, "down")),
			wantState: "failed", wantCalls: 3, wantErr: "vendor answered 503", wantStatus: 503},
		{name: "transport-error-text-never-stored", integration: "payments",
			vendor: func(int) (*http.Response, error) {
				return nil, errors.New(`Get "https://x/?api_key=sk_live_secret": connection reset`)
			},
			wantState: "failed", wantCalls: 3, wantErr: "vendor unreachable"},
		{name: "removed-integration-fails", integration: "gone", vendor: answers(answer(200, "")),
			wantState: "failed", wantCalls: 0, wantErr: "integration no longer configured"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				clk := clock.NewFake(workerEpoch)
				st := store.NewMemory(clk)
				q := NewQueue(st, QueueConfig{}, clk)
				vendor := &vendorRT{respond: tc.vendor}
				stop := runWorker(NewWorker(q, WorkerConfig{Target: targetFor(vendor), MaxAttempts: 3}, clk))
				defer stop()
				id, err := q.Submit(context.Background(), "billing", tc.integration, callerReq(t, "POST", "/v1/x", ""), nil)
				if err != nil {
					t.Fatal(err)
				}
				advance(clk, time.Hour, time.Second)
				v, _ := q.Get(context.Background(), "billing", id)
				if v.State != tc.wantState || vendor.count() != tc.wantCalls || v.LastError != tc.wantErr {
					t.Errorf("state %q after %d calls, last_error %q; want %q after %d, %q", v.State, vendor.count(), v.LastError, tc.wantState, tc.wantCalls, tc.wantErr)
				}
				if tc.wantStatus != 0 && (v.Result == nil || v.Result.Status != tc.wantStatus) {
					t.Errorf("result %+v, want vendor status %d", v.Result, tc.wantStatus)
				}
			})
		})
	}
}

func TestWorkerBoundsStoredResult(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := clock.NewFake(workerEpoch)
		q := NewQueue(store.NewMemory(clk), QueueConfig{}, clk)
		vendor := &vendorRT{respond: answers(answer(200, strings.Repeat("a", 100)))}
		stop := runWorker(NewWorker(q, WorkerConfig{Target: targetFor(vendor), MaxResultBytes: 10}, clk))
		defer stop()
		id, _ := q.Submit(context.Background(), "billing", "payments", callerReq(t, "GET", "/v1/x", ""), nil)
		advance(clk, time.Second, 100*time.Millisecond)
		v, _ := q.Get(context.Background(), "billing", id)
		if v.Result == nil || len(v.Result.Body) != 10 || !v.Result.Truncated {
			t.Errorf("result %+v, want a 10-byte truncated body", v.Result)
		}
	})
}

// TestQueueSurvivesWorkerDeath: a worker claims a job, sends it, and dies
// (kill -9: no completion, no hand-back). A new process — a fresh Queue and
// Worker over the same store — delivers it again once the lease expires,
// with the same Idempotency-Key.
func TestQueueSurvivesWorkerDeath(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := clock.NewFake(workerEpoch)
		st := store.NewMemory(clk) // the durable store outlives both "processes"
		id, err := NewQueue(st, QueueConfig{}, clk).Submit(context.Background(), "billing", "payments",
			callerReq(t, "POST", "/v1/charges", ""), []byte("charge"))
		if err != nil {
			t.Fatal(err)
		}
		// Process 1 claims and sends, then is killed before recording anything.
		vendor := &vendorRT{respond: answers(answer(200, "ok"))}
		jobs, err := st.Claim(context.Background(), QueueName, 1, DefaultLease)
		if err != nil || len(jobs) != 1 {
			t.Fatalf("claim: %v, %d jobs", err, len(jobs))
		}
		var c Call
		_ = json.Unmarshal(jobs[0].Payload, &c)
		req, _ := newCallRequest(context.Background(), &url.URL{Scheme: "https", Host: "api.payments.example"}, c)
		if _, err := vendor.RoundTrip(req); err != nil {
			t.Fatal(err)
		}

		// Process 2 starts.
		q2 := NewQueue(st, QueueConfig{}, clk)
		stop := runWorker(NewWorker(q2, WorkerConfig{Target: targetFor(vendor)}, clk))
		defer stop()
		advance(clk, DefaultLease-time.Second, 100*time.Millisecond)
		if vendor.count() != 1 {
			t.Fatalf("redelivered before the dead worker's lease expired (%d calls)", vendor.count())
		}
		advance(clk, 2*time.Second, 100*time.Millisecond)
		v, _ := q2.Get(context.Background(), "billing", id)
		if v.State != "succeeded" || vendor.count() != 2 {
			t.Fatalf("after restart: state %q, %d vendor calls; want succeeded, 2", v.State, vendor.count())
		}
		k1, k2 := vendor.received[0].Header.Get("Idempotency-Key"), vendor.received[1].Header.Get("Idempotency-Key")
		if k1 == "" || k1 != k2 {
			t.Errorf("Idempotency-Keys %q and %q, want the same non-empty key on both deliveries", k1, k2)
		}
	})
}

func TestWorkerStopPutsInFlightJobBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := clock.NewFake(workerEpoch)
		st := store.NewMemory(clk)
		q := NewQueue(st, QueueConfig{}, clk)
		var inFlight atomic.Int64
		blocking := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			inFlight.Add(1)
			<-r.Context().Done() // the vendor hangs
			return nil, r.Context().Err()
		})
		w := NewWorker(q, WorkerConfig{Target: targetFor(blocking)}, clk)
		go func() { _ = w.Run(context.Background()) }()
		id, _ := q.Submit(context.Background(), "billing", "payments", callerReq(t, "POST", "/v1/x", ""), nil)
		synctest.Wait()
		if inFlight.Load() != 1 {
			t.Fatalf("%d deliveries in flight, want 1", inFlight.Load())
		}
		w.Stop()
		j, _ := st.GetJob(context.Background(), QueueName, id)
		if j.State != store.JobPending || j.LastError != "interrupted by shutdown" {
			t.Errorf("after Stop: state %q (%q), want pending, interrupted by shutdown", j.State, j.LastError)
		}
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
