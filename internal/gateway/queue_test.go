package gateway

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/fallback"
	"github.com/portcullis-dev/portcullis/internal/problem"
	"github.com/portcullis-dev/portcullis/internal/store"
)

const queueOnFailureConfig = `
version: 1
callers:
  billing: {tokens: ["%[3]s"]}
  support: {tokens: ["%[4]s"]}
integrations:
  payments:
    upstream: %[1]s
    egress: {allow: ["%[2]s"], allow_private: true}
    request_headers: [Content-Type, Idempotency-Key]
    timeouts: {connect: 1s, request: 400ms}
    retry: {attempts: 3, backoff: 1ms, max_backoff: 5ms, budget: 1, max_retry_after: 1s}
    circuit_breaker: {failure_ratio: 1, min_requests: 1000, window: 10s, open_for: 1s, half_open_probes: 1}
    fallback: {queue: true}
    routes:
      - {method: POST, path: "/v1/charges", callers: [billing], queue: true}
      - {method: POST, path: "/v1/refunds", callers: [billing]}
`

// vendorCanary is in every failing vendor answer: it must never reach a
// caller that was answered 202.
const vendorCanary = "VENDOR_ERROR_PAGE_CANARY_7d1e"

// scripted is a vendor that answers every call with one status and header
// set, or holds it past the gateway's request timeout; it counts attempts
// per Idempotency-Key.
type scripted struct {
	status int
	header map[string]string
	hang   bool

	mu       sync.Mutex
	attempts map[string]int
}

func (s *scripted) handler(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.attempts == nil {
		s.attempts = map[string]int{}
	}
	s.attempts[r.Header.Get("Idempotency-Key")]++
	s.mu.Unlock()
	if s.hang {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
		return
	}
	for k, v := range s.header {
		w.Header().Set(k, v)
	}
	w.Header().Set("X-Vendor-Canary", vendorCanary)
	w.WriteHeader(s.status)
	io.WriteString(w, `{"error":"`+vendorCanary+`"}`)
}

func (s *scripted) tries(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts[key]
}

// queuedJob reads the 202 answer and the job it names from st.
func queuedJob(t *testing.T, st store.Queue, resp *http.Response) store.Job {
	t.Helper()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("X-Portcullis-Fallback") != "queued" {
		t.Fatalf("answer %d %q (fallback %q), want 202 queued", resp.StatusCode, body, resp.Header.Get("X-Portcullis-Fallback"))
	}
	if strings.Contains(string(body), vendorCanary) || resp.Header.Get("X-Vendor-Canary") != "" {
		t.Errorf("the 202 carries the vendor's failed answer: %v %s", resp.Header, body)
	}
	var acc fallback.Accepted
	if err := json.Unmarshal(body, &acc); err != nil || acc.JobID == "" {
		t.Fatalf("202 body %s: %v", body, err)
	}
	j, err := st.GetJob(context.Background(), fallback.QueueName, acc.JobID)
	if err != nil {
		t.Fatalf("job %s: %v", acc.JobID, err)
	}
	return j
}

func noJobs(t *testing.T, st store.Queue) {
	t.Helper()
	if n, _, err := st.Stats(context.Background(), fallback.QueueName); err != nil || n != 0 {
		t.Errorf("queue depth %d (%v), want no job", n, err)
	}
}

// TestAsyncCallQueuedWhenVendorIsDown: an async call on a queued route
// whose vendor answers 502, 503, 504 or 429 after the retries, or times
// out, becomes a job (first delivery after the vendor's Retry-After); a
// 4xx, a call without respond-async and a POST without Idempotency-Key
// that the vendor may have acted on get the vendor's answer.
func TestAsyncCallQueuedWhenVendorIsDown(t *testing.T) {
	async := map[string]string{"Prefer": "respond-async", "Content-Type": "application/json", "Idempotency-Key": "key-1"}
	inAnHour := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	tests := []struct {
		name   string
		vendor *scripted
		path   string
		header map[string]string
		// queued: 202 and a job whose first delivery waits ~notBefore;
		// else the caller gets status.
		queued    bool
		notBefore time.Duration
		status    int
		tries     int // vendor attempts for the call; 0: not checked
	}{
		{name: "503-after-retries", vendor: &scripted{status: 503}, queued: true, tries: 3},
		{name: "502-after-retries", vendor: &scripted{status: 502}, queued: true, tries: 3},
		{name: "504-after-retries", vendor: &scripted{status: 504}, queued: true, tries: 3},
		{name: "429-retry-after-seconds", vendor: &scripted{status: 429, header: map[string]string{"Retry-After": "120"}},
			queued: true, notBefore: 120 * time.Second, tries: 1},
		{name: "503-retry-after-http-date", vendor: &scripted{status: 503, header: map[string]string{"Retry-After": inAnHour.Format(http.TimeFormat)}},
			queued: true, notBefore: time.Until(inAnHour), tries: 1},
		{name: "timeout", vendor: &scripted{hang: true}, queued: true},
		{name: "400-passed-on", vendor: &scripted{status: 400}, status: 400, tries: 1},
		{name: "404-passed-on", vendor: &scripted{status: 404}, status: 404, tries: 1},
		{name: "409-passed-on", vendor: &scripted{status: 409}, status: 409, tries: 1},
		{name: "422-passed-on", vendor: &scripted{status: 422}, status: 422, tries: 1},
		{name: "500-passed-on", vendor: &scripted{status: 500}, status: 500, tries: 1},
		{name: "503-without-respond-async", vendor: &scripted{status: 503},
			header: map[string]string{"Prefer": "", "Idempotency-Key": "key-1"}, status: 503},
		{name: "503-post-without-idempotency-key", vendor: &scripted{status: 503},
			header: map[string]string{"Prefer": "respond-async", "Idempotency-Key": ""}, status: 503},
		{name: "timeout-post-without-idempotency-key", vendor: &scripted{hang: true},
			header: map[string]string{"Prefer": "respond-async", "Idempotency-Key": ""}, status: 504},
		{name: "503-on-route-without-queue", vendor: &scripted{status: 503}, path: "/payments/v1/refunds", status: 503},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := newVendor(t, tc.vendor.handler)
			st := store.NewMemory(nil)
			f := newFixtureWith(t, v.URL, queueOnFailureConfig, Options{Store: st})
			hdr := map[string]string{}
			for k, val := range async {
				hdr[k] = val
			}
			for k, val := range tc.header {
				if val == "" {
					delete(hdr, k)
				} else {
					hdr[k] = val
				}
			}
			path := tc.path
			if path == "" {
				path = "/payments/v1/charges"
			}
			before := time.Now()
			resp := f.do(t, "POST", path, f.billing, strings.NewReader(`{"amount":5}`), hdr)
			if tc.tries > 0 {
				if got := tc.vendor.tries(hdr["Idempotency-Key"]); got != tc.tries {
					t.Errorf("vendor got %d attempts, want %d", got, tc.tries)
				}
			}
			if !tc.queued {
				if resp.StatusCode != tc.status {
					t.Fatalf("answer %d, want %d", resp.StatusCode, tc.status)
				}
				noJobs(t, st)
				return
			}
			j := queuedJob(t, st, resp)
			var call fallback.Call
			if err := json.Unmarshal(j.Payload, &call); err != nil {
				t.Fatal(err)
			}
			if call.IdempotencyKey != "key-1" || call.Caller != "billing" || string(call.Body) != `{"amount":5}` {
				t.Errorf("queued call key %q caller %q body %s", call.IdempotencyKey, call.Caller, call.Body)
			}
			if tc.notBefore == 0 {
				if j.NotBefore.After(time.Now()) {
					t.Errorf("first delivery held until %v without a Retry-After", j.NotBefore)
				}
				return
			}
			// Retry-After has whole seconds; the bounds allow for that.
			lo, hi := before.Add(tc.notBefore-2*time.Second), time.Now().Add(tc.notBefore+2*time.Second)
			if j.NotBefore.Before(lo) || j.NotBefore.After(hi) {
				t.Errorf("first delivery at %v, want about %v from the call", j.NotBefore, tc.notBefore)
			}
		})
	}
}

// TestAsyncCallQueuedDuringVendorPause: after a 429 with a long
// Retry-After, the gateway does not call the vendor until it passes; an
// async call in that time is queued for then, others get rate_limited.
func TestAsyncCallQueuedDuringVendorPause(t *testing.T) {
	fv := &scripted{status: 429, header: map[string]string{"Retry-After": "120"}}
	v := newVendor(t, fv.handler)
	st := store.NewMemory(nil)
	f := newFixtureWith(t, v.URL, queueOnFailureConfig, Options{Store: st})
	hdr := func(key string) map[string]string {
		return map[string]string{"Prefer": "respond-async", "Content-Type": "application/json", "Idempotency-Key": key}
	}
	queuedJob(t, st, f.do(t, "POST", "/payments/v1/charges", f.billing, strings.NewReader(`{}`), hdr("first")))
	before := time.Now()
	j := queuedJob(t, st, f.do(t, "POST", "/payments/v1/charges", f.billing, strings.NewReader(`{}`), hdr("second")))
	if fv.tries("second") != 0 {
		t.Errorf("vendor called %d times during its pause", fv.tries("second"))
	}
	if lo := before.Add(118 * time.Second); j.NotBefore.Before(lo) || j.NotBefore.After(time.Now().Add(121*time.Second)) {
		t.Errorf("job held until %v, want the end of the vendor's 120s pause", j.NotBefore)
	}
	sync := f.do(t, "POST", "/payments/v1/charges", f.billing, strings.NewReader(`{}`), map[string]string{"Idempotency-Key": "third"})
	if sync.StatusCode != 429 || problemOf(t, sync).Code != problem.RateLimited {
		t.Errorf("call without respond-async during the pause: %d, want 429 rate_limited", sync.StatusCode)
	}
}
