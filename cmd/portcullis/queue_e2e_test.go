package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
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
	// Jobs the killed process had claimed come back when their lease
	// (request timeout + 10s) runs out.
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
