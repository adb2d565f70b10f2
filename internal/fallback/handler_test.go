package fallback

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/portcullis-dev/portcullis/internal/store"
)

var preferCases = []struct {
	name string
	in   []string
	want bool
}{
	{name: "plain", in: []string{"respond-async"}, want: true},
	{name: "case-insensitive", in: []string{"Respond-Async"}, want: true},
	{name: "with-wait", in: []string{"respond-async, wait=10"}, want: true},
	{name: "second-field-line", in: []string{"return=minimal", "respond-async"}, want: true},
	{name: "with-params", in: []string{`respond-async;foo="a,b"`}, want: true},
	{name: "absent", in: []string{"return=representation"}, want: false},
	{name: "inside-quoted-value", in: []string{`foo="respond-async"`}, want: false},
	{name: "quoted-comma-does-not-split", in: []string{`foo="x, respond-async"`}, want: false},
	{name: "prefix-only", in: []string{"respond-asyncx"}, want: false},
	{name: "none", in: nil, want: false},
}

func TestPrefersAsync(t *testing.T) {
	for _, tc := range preferCases {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{"Prefer": tc.in}
			if got := PrefersAsync(h); got != tc.want {
				t.Errorf("PrefersAsync(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func FuzzPrefersAsync(f *testing.F) {
	for _, tc := range preferCases {
		f.Add(strings.Join(tc.in, ", "))
	}
	f.Fuzz(func(t *testing.T, v string) {
		got := PrefersAsync(http.Header{"Prefer": {v}})
		// Appending a respond-async preference always yields true.
		if !PrefersAsync(http.Header{"Prefer": {v, "respond-async"}}) {
			t.Fatalf("respond-async on its own line not seen next to %q", v)
		}
		if got && !strings.Contains(strings.ToLower(v), "respond-async") {
			t.Fatalf("PrefersAsync(%q) = true without the token", v)
		}
	})
}

func TestWriteAccepted(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteAccepted(rec, "job_abc")
	var body Accepted
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if rec.Code != 202 || body != (Accepted{JobID: "job_abc", StatusURL: "/jobs/job_abc"}) {
		t.Errorf("got %d %+v", rec.Code, body)
	}
	for k, want := range map[string]string{HeaderFallback: "queued", "Location": "/jobs/job_abc", "Preference-Applied": "respond-async"} {
		if got := rec.Header().Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}

// callerFromHeader authenticates by a test header.
func callerFromHeader(r *http.Request) (string, bool) {
	c := r.Header.Get("X-Test-Caller")
	return c, c != ""
}

func get(t *testing.T, h http.Handler, method, path, caller string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	if caller != "" {
		req.Header.Set("X-Test-Caller", caller)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestJobsHandlerOnlyOwnerReads(t *testing.T) {
	st := store.NewMemory(nil)
	q := NewQueue(st, QueueConfig{}, nil)
	id, err := q.Submit(context.Background(), "billing", "payments", callerReq(t, "POST", "/v1/charges", ""), []byte("secret payload"))
	if err != nil {
		t.Fatal(err)
	}
	res, _ := json.Marshal(Result{Status: 201, Body: []byte(`{"id":"ch_1"}`)})
	if _, err := st.Claim(context.Background(), QueueName, 1, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := st.Complete(context.Background(), QueueName, id, store.JobSucceeded, res, ""); err != nil {
		t.Fatal(err)
	}
	h := q.Handler(callerFromHeader)

	owner := get(t, h, "GET", "/jobs/"+id, "billing")
	if owner.Code != 200 {
		t.Fatalf("owner got %d: %s", owner.Code, owner.Body)
	}
	var doc struct {
		ID, State string
		Result    struct {
			Status int
			Body   string
		}
	}
	if err := json.Unmarshal(owner.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.ID != id || doc.State != "succeeded" || doc.Result.Status != 201 || doc.Result.Body != `{"id":"ch_1"}` {
		t.Errorf("owner sees %s", owner.Body)
	}
	if strings.Contains(owner.Body.String(), "secret payload") {
		t.Error("job status echoes the queued request body")
	}

	other := get(t, h, "GET", "/jobs/"+id, "support")
	missing := get(t, h, "GET", "/jobs/job_doesnotexist", "support")
	if other.Code != 404 {
		t.Errorf("another caller got %d, want 404", other.Code)
	}
	if diff := cmp.Diff(missing.Body.String(), other.Body.String()); diff != "" || missing.Code != other.Code {
		t.Errorf("another caller's job is distinguishable from a missing one:\n%s", diff)
	}
	if rec := get(t, h, "GET", "/jobs/"+id, ""); rec.Code != 401 || rec.Header().Get("X-Portcullis-Error") != "unauthenticated" {
		t.Errorf("no credential: %d %q, want 401 unauthenticated", rec.Code, rec.Header().Get("X-Portcullis-Error"))
	}
	if rec := get(t, h, "DELETE", "/jobs/"+id, "billing"); rec.Code != 405 {
		t.Errorf("DELETE got %d, want 405", rec.Code)
	}
}

// TestQueueAgainstHTTPVendor runs the Worker with the real clock against an
// httptest vendor that refuses each call's first delivery with 503 and
// resets the connection on its second.
func TestQueueAgainstHTTPVendor(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	var total atomic.Int64
	vendor := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		total.Add(1)
		key := r.Header.Get("Idempotency-Key")
		mu.Lock()
		seen[key]++
		n := seen[key]
		mu.Unlock()
		switch n {
		case 1:
			w.WriteHeader(503)
		case 2:
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				conn.Close()
			}
		default:
			b, _ := io.ReadAll(r.Body)
			w.Header().Set("Content-Type", "text/plain")
			_, _ = w.Write(append([]byte("got "), b...))
		}
	}))
	defer vendor.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	up, _ := url.Parse(vendor.URL)
	st := store.NewMemory(nil)
	q := NewQueue(st, QueueConfig{}, nil)
	w := NewWorker(q, WorkerConfig{
		Target:       func(string) (Target, error) { return Target{Transport: tr, Upstream: up}, nil },
		PollInterval: 5 * time.Millisecond, Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
	}, nil)
	go func() { _ = w.Run(context.Background()) }()
	defer w.Stop()

	const jobs = 20
	ids := make([]string, jobs)
	for i := range ids {
		id, err := q.Submit(context.Background(), "billing", "payments", callerReq(t, "POST", "/v1/charges", ""), []byte(strings.Repeat("x", i)))
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id
	}
	deadline := time.Now().Add(10 * time.Second)
	for i, id := range ids {
		for {
			v, err := q.Get(context.Background(), "billing", id)
			if err != nil {
				t.Fatal(err)
			}
			if v.State == "succeeded" {
				if want := "got " + strings.Repeat("x", i); v.Result == nil || string(v.Result.Body) != want {
					t.Errorf("job %d result %+v, want body %q", i, v.Result, want)
				}
				break
			}
			if v.State == "failed" || time.Now().After(deadline) {
				t.Fatalf("job %d: %+v", i, v)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != jobs {
		t.Errorf("vendor saw %d distinct Idempotency-Keys for %d jobs", len(seen), jobs)
	}
	for k, n := range seen {
		if n != 3 {
			t.Errorf("key %s delivered %d times, want 3 (503, reset, success)", k, n)
		}
	}
	t.Logf("%d jobs delivered at least once through 503s and connection resets: %d vendor calls", jobs, total.Load())
}
