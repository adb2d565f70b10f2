package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/internal/identity"
	"github.com/portcullis-dev/portcullis/internal/secret"
	"github.com/portcullis-dev/portcullis/internal/webhook"
)

const inflightConfig = `version: 1
server: {listen: "{{CALLER}}", admin_listen: "{{ADMIN}}", webhook_listen: "%[1]s", shutdown_grace: 2s}
state: {data_dir: "{{DATA}}"}
callers:
  billing: {tokens: ["%[2]s"]}
integrations:
  payments:
    upstream: %[3]s
    egress: {allow: ["%[4]s"], allow_private: true}
    request_headers: [Content-Type, Idempotency-Key]
    timeouts: {connect: 500ms, request: 2s}
    fallback: {queue: true, queue_always: true}
    routes:
      - {method: POST, path: /v1/charges, callers: [billing], queue: true}
webhooks:
  payments-events:
    path: /webhooks/payments
    scheme: standard
    secrets: [env:E2E_WHSEC]
    tolerance: 5m
    forward_to: %[5]s/hooks/payments
    forward_secret: env:E2E_INTERNAL_WHSEC
internal_egress: {allow: ["%[6]s"]}
`

// holdingServer holds every request until the client goes away while
// holding is set, and accepts (2xx) otherwise, counting accepted requests
// per key (the header named by keyHeader).
type holdingServer struct {
	keyHeader string
	status    int

	mu       sync.Mutex
	holding  bool
	held     int
	accepted map[string]int
	lastAt   time.Time
}

func (h *holdingServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body) // else a closed connection does not end r.Context()
	key := r.Header.Get(h.keyHeader)
	h.mu.Lock()
	if h.holding {
		h.held++
		h.mu.Unlock()
		<-r.Context().Done()
		return
	}
	h.accepted[key]++
	h.lastAt = time.Now()
	h.mu.Unlock()
	w.WriteHeader(h.status)
}

func (h *holdingServer) snapshot() (held, accepted int, last time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.held, len(h.accepted), h.lastAt
}

// TestInFlightWorkResumesAfterKill9: the gateway is killed with SIGKILL
// while webhook forwards and queued calls are in flight (their receivers
// hold them); after the restart on the same data_dir, every acknowledged
// webhook and every accepted job is delivered within 5 s, not when the
// killed process's leases would have run out (40 s+ for webhooks).
func TestInFlightWorkResumesAfterKill9(t *testing.T) {
	const vendorSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	const internalSecret = "whsec_aW50ZXJuYWwtc2VjcmV0LWZvci10ZXN0cw=="
	const items = 20
	tok, hash, _ := identity.NewToken()
	vendor := &holdingServer{keyHeader: "Idempotency-Key", status: 201, holding: true, accepted: map[string]int{}}
	receiver := &holdingServer{keyHeader: "webhook-id", status: 204, holding: true, accepted: map[string]int{}}
	vs, rs := httptest.NewServer(vendor), httptest.NewServer(receiver)
	t.Cleanup(vs.Close)
	t.Cleanup(rs.Close)
	whAddr := freeAddr(t)
	dir := t.TempDir()
	env := []string{"E2E_WHSEC=" + vendorSecret, "E2E_INTERNAL_WHSEC=" + internalSecret}
	cfg := fmt.Sprintf(inflightConfig, whAddr, hash, vs.URL, strings.TrimPrefix(vs.URL, "http://"), rs.URL, strings.TrimPrefix(rs.URL, "http://"))
	p := startServeIn(t, dir, "", "", cfg, env...)

	v, err := webhook.NewVerifier(&config.Webhook{Scheme: "standard"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range items {
		body := fmt.Appendf(nil, `{"type":"charge.succeeded","n":%d}`, i)
		hdr, err := v.Sign(body, []secret.Value{secret.New(vendorSecret)}, webhook.SignParams{ID: fmt.Sprintf("msg_inflight_%d", i), Timestamp: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest("POST", "http://"+whAddr+"/webhooks/payments", bytes.NewReader(body))
		for k, vs := range hdr {
			req.Header[k] = vs
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("webhook %d: %d, want 200 (acknowledged)", i, resp.StatusCode)
		}
	}
	for i := range items {
		req, _ := http.NewRequest("POST", "http://"+p.caller+"/payments/v1/charges", strings.NewReader(fmt.Sprintf(`{"n":%d}`, i)))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Prefer", "respond-async")
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", fmt.Sprintf("inflight-%d", i))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 202 {
			t.Fatalf("queued call %d: %d, want 202", i, resp.StatusCode)
		}
	}
	waitFor(t, func() bool {
		vh, _, _ := vendor.snapshot()
		rh, _, _ := receiver.snapshot()
		return vh > 0 && rh > 0
	}, "deliveries in flight")
	time.Sleep(200 * time.Millisecond) // let the rest of each batch start
	vendorHeld, _, _ := vendor.snapshot()
	receiverHeld, _, _ := receiver.snapshot()

	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()
	for _, h := range []*holdingServer{vendor, receiver} {
		h.mu.Lock()
		h.holding = false
		h.mu.Unlock()
	}

	start := time.Now()
	p2 := startServeIn(t, dir, p.caller, p.admin, cfg, env...)
	up := time.Now()
	waitForUpTo(t, 60*time.Second, func() bool {
		_, va, _ := vendor.snapshot()
		_, ra, _ := receiver.snapshot()
		return va >= items && ra >= items
	}, "every acknowledged webhook and queued call delivered after the restart")
	time.Sleep(500 * time.Millisecond) // a second delivery would show now
	_, _, vLast := vendor.snapshot()
	_, _, rLast := receiver.snapshot()
	last := vLast
	if rLast.After(last) {
		last = rLast
	}
	for _, h := range []*holdingServer{vendor, receiver} {
		h.mu.Lock()
		for k, n := range h.accepted {
			if n != 1 {
				t.Errorf("%s %q accepted %d times, want once", h.keyHeader, k, n)
			}
		}
		if len(h.accepted) != items {
			t.Errorf("%d distinct %s values accepted, want %d", len(h.accepted), h.keyHeader, items)
		}
		h.mu.Unlock()
	}
	t.Logf("kill -9 with %d webhook forwards and %d queued calls in flight (of %d each acknowledged); "+
		"after the restart (up in %.1fs) all %d delivered %.1fs after it was up (webhooks %.1fs, queued calls %.1fs)",
		receiverHeld, vendorHeld, items, up.Sub(start).Seconds(), 2*items, last.Sub(up).Seconds(), rLast.Sub(up).Seconds(), vLast.Sub(up).Seconds())
	if d := last.Sub(up); d > 5*time.Second {
		t.Errorf("the last acknowledged item was delivered %.1fs after the restart, want ≤ 5s", d.Seconds())
	}
	_ = p2
}
