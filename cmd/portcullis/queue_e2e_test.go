package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/identity"
)

const queueConfig = `version: 1
server: {listen: "{{CALLER}}", admin_listen: "{{ADMIN}}", shutdown_grace: 2s}
state: {data_dir: "{{DATA}}"}
callers:
  billing: {tokens: ["%[1]s"]}
integrations:
  payments:
    upstream: http://%[2]s
    egress: {allow: ["%[2]s"], allow_private: true}
    request_headers: [Content-Type, Idempotency-Key]
    timeouts: {connect: 500ms, request: 2s}
    fallback: {queue: true, queue_always: true}
    routes:
      - {method: POST, path: /v1/charges, callers: [billing], queue: true}
`

// TestQueuedJobsSurviveKill9 queues calls while the vendor is down, kills
// the gateway with SIGKILL, brings the vendor back, restarts the gateway on
// the same data_dir, and checks every accepted job is delivered exactly
// once per Idempotency-Key.
func TestQueuedJobsSurviveKill9(t *testing.T) {
	tok, hash, _ := identity.NewToken()
	vendorAddr := freeAddr(t) // nothing listens here yet: the vendor is down
	dir := t.TempDir()
	cfg := fmt.Sprintf(queueConfig, hash, vendorAddr)
	p := startServeIn(t, dir, "", "", cfg)

	const jobs = 20
	var ids []string
	for i := 0; i < jobs; i++ {
		req, _ := http.NewRequest("POST", "http://"+p.caller+"/payments/v1/charges", strings.NewReader(fmt.Sprintf(`{"n":%d}`, i)))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Prefer", "respond-async")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var acc struct {
			JobID string `json:"job_id"`
		}
		json.NewDecoder(resp.Body).Decode(&acc)
		resp.Body.Close()
		if resp.StatusCode != 202 || acc.JobID == "" {
			t.Fatalf("job %d: %d", i, resp.StatusCode)
		}
		ids = append(ids, acc.JobID)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.cmd.Wait()

	// The vendor comes back.
	var mu sync.Mutex
	seen := map[string]int{}
	ln, err := net.Listen("tcp", vendorAddr)
	if err != nil {
		t.Fatal(err)
	}
	vs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.Header.Get("Idempotency-Key")]++
		mu.Unlock()
		w.WriteHeader(201)
		fmt.Fprint(w, `{"id":"ch_1"}`)
	})}
	go vs.Serve(ln)
	t.Cleanup(func() { vs.Close() })

	p2 := startServeIn(t, dir, p.caller, p.admin, cfg)
	// Jobs the killed process had claimed are released when the restarted
	// gateway opens the data file.
	waitForUpTo(t, 40*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) >= jobs
	}, "all queued jobs delivered after restart")
	mu.Lock()
	for k, n := range seen {
		if n != 1 || k == "" {
			t.Errorf("idempotency key %q delivered %d times", k, n)
		}
	}
	mu.Unlock()
	lost := 0
	for _, id := range ids {
		req, _ := http.NewRequest("GET", "http://"+p2.caller+"/jobs/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		var st struct {
			State string `json:"state"`
		}
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
			if st.State == "succeeded" {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if st.State != "succeeded" {
			lost++
		}
	}
	t.Logf("kill -9 with %d queued jobs: %d delivered, %d lost", jobs, len(seen), lost)
	if lost != 0 {
		t.Errorf("%d jobs not succeeded after restart", lost)
	}
}

const queueOnFailureConfig = `version: 1
server: {listen: "{{CALLER}}", admin_listen: "{{ADMIN}}", shutdown_grace: 2s}
state: {data_dir: "{{DATA}}"}
callers:
  billing: {tokens: ["%[1]s"]}
integrations:
  payments:
    upstream: %[2]s
    egress: {allow: ["%[3]s"], allow_private: true}
    request_headers: [Content-Type, Idempotency-Key]
    timeouts: {connect: 500ms, request: 2s}
    retry: {attempts: 3, backoff: 10ms, max_backoff: 50ms, budget: 1}
    circuit_breaker: {failure_ratio: 1, min_requests: 1000, window: 10s, open_for: 1s, half_open_probes: 1}
    fallback: {queue: true}
    routes:
      - {method: POST, path: /v1/charges, callers: [billing], queue: true}
`

// downVendor answers 503 (with an error page that must never reach a
// caller answered 202) while down, 201 once up; it counts, per
// Idempotency-Key, the attempts refused and the calls it accepted.
type downVendor struct {
	mu       sync.Mutex
	down     bool
	refused  map[string]int
	accepted map[string]int
	lastAt   time.Time
}

const downPage = "VENDOR_DOWN_PAGE_CANARY_41c9"

func (v *downVendor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	key := r.Header.Get("Idempotency-Key")
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.down {
		v.refused[key]++
		w.Header().Set("X-Vendor-Canary", downPage)
		w.WriteHeader(503)
		fmt.Fprintf(w, "<html>%s</html>", downPage)
		return
	}
	v.accepted[key]++
	v.lastAt = time.Now()
	w.WriteHeader(201)
	fmt.Fprint(w, `{"id":"ch_1"}`)
}

func (v *downVendor) setDown(d bool) { v.mu.Lock(); v.down = d; v.mu.Unlock() }

// TestVendor503AsyncCallsQueued: while the vendor answers 503, async POSTs
// on a queued route are answered 202 once the retries are spent, and every
// one is delivered once, with its Idempotency-Key, when the vendor is back;
// the second round is also killed with SIGKILL before the vendor recovers.
func TestVendor503AsyncCallsQueued(t *testing.T) {
	tok, hash, _ := identity.NewToken()
	vendor := &downVendor{refused: map[string]int{}, accepted: map[string]int{}}
	vs := httptest.NewServer(vendor)
	t.Cleanup(vs.Close)
	dir := t.TempDir()
	cfg := fmt.Sprintf(queueOnFailureConfig, hash, vs.URL, strings.TrimPrefix(vs.URL, "http://"))
	p := startServeIn(t, dir, "", "", cfg)

	const calls = 10
	post := func(p *proc, key string) string {
		req, _ := http.NewRequest("POST", "http://"+p.caller+"/payments/v1/charges", strings.NewReader(`{"amount":100}`))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Prefer", "respond-async")
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var acc struct {
			JobID string `json:"job_id"`
		}
		_ = json.Unmarshal(body, &acc)
		if resp.StatusCode != 202 || acc.JobID == "" {
			t.Fatalf("async POST %s while the vendor answers 503: %d %s", key, resp.StatusCode, body)
		}
		if strings.Contains(string(body), downPage) || resp.Header.Get("X-Vendor-Canary") != "" {
			t.Errorf("the 202 for %s carries the vendor's error page", key)
		}
		return acc.JobID
	}
	round := func(name string, p *proc) (keys, jobs []string, refused int) {
		vendor.setDown(true)
		for i := range calls {
			key := fmt.Sprintf("%s-%d", name, i)
			jobs = append(jobs, post(p, key))
			keys = append(keys, key)
		}
		vendor.mu.Lock()
		for _, k := range keys {
			refused += vendor.refused[k]
		}
		vendor.mu.Unlock()
		return keys, jobs, refused
	}
	delivered := func(keys []string) func() bool {
		return func() bool {
			vendor.mu.Lock()
			defer vendor.mu.Unlock()
			for _, k := range keys {
				if vendor.accepted[k] == 0 {
					return false
				}
			}
			return true
		}
	}
	succeeded := func(p *proc, jobs []string) int {
		n := 0
		for _, id := range jobs {
			req, _ := http.NewRequest("GET", "http://"+p.caller+"/jobs/"+id, nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			waitFor(t, func() bool {
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return false
				}
				defer resp.Body.Close()
				var st struct{ State string }
				_ = json.NewDecoder(resp.Body).Decode(&st)
				if st.State == "succeeded" {
					n++
					return true
				}
				return false
			}, "job "+id+" succeeded")
		}
		return n
	}

	// Round 1: the vendor recovers while the gateway runs.
	keys1, jobs1, refused1 := round("r1", p)
	vendor.setDown(false)
	back := time.Now()
	waitForUpTo(t, 60*time.Second, delivered(keys1), "round 1 delivered")
	vendor.mu.Lock()
	took1 := vendor.lastAt.Sub(back)
	vendor.mu.Unlock()
	ok1 := succeeded(p, jobs1)

	// Round 2: the gateway is killed while the vendor is still down.
	keys2, jobs2, refused2 := round("r2", p)
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()
	vendor.setDown(false)
	restart := time.Now()
	p2 := startServeIn(t, dir, p.caller, p.admin, cfg)
	waitForUpTo(t, 60*time.Second, delivered(keys2), "round 2 delivered after the restart")
	vendor.mu.Lock()
	took2 := vendor.lastAt.Sub(restart)
	vendor.mu.Unlock()
	ok2 := succeeded(p2, jobs2)
	time.Sleep(time.Second) // a second delivery of anything would show now

	vendor.mu.Lock()
	defer vendor.mu.Unlock()
	once := 0
	for _, k := range append(append([]string(nil), keys1...), keys2...) {
		if n := vendor.accepted[k]; n != 1 {
			t.Errorf("Idempotency-Key %s accepted by the vendor %d times, want once", k, n)
		} else {
			once++
		}
	}
	if extra := len(vendor.accepted) - 2*calls; extra != 0 {
		t.Errorf("the vendor accepted %d calls under keys nobody sent: %v", extra, vendor.accepted)
	}
	t.Logf("round 1: %d async POSTs to a vendor answering 503 → %d × 202 (the vendor refused %d attempts: the callers' retries and the worker's first deliveries); "+
		"all delivered %.1fs after the vendor recovered; %d jobs succeeded", calls, len(jobs1), refused1, took1.Seconds(), ok1)
	t.Logf("round 2 (kill -9, vendor back, restart): %d × 202 (%d attempts refused); "+
		"all delivered %.1fs after the restart began; %d jobs succeeded; %d of %d keys delivered exactly once",
		len(jobs2), refused2, took2.Seconds(), ok2, once, 2*calls)
}
