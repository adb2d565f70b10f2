package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/internal/secret"
	"github.com/portcullis-dev/portcullis/internal/webhook"
)

const webhookConfig = `version: 1
server: {listen: "{{CALLER}}", admin_listen: "{{ADMIN}}", webhook_listen: "%[1]s", shutdown_grace: 2s}
state: {data_dir: "{{DATA}}"}
callers: {}
integrations: {}
webhooks:
  payments-events:
    path: /webhooks/payments
    scheme: standard
    secrets: [env:E2E_WHSEC]
    tolerance: 5m
    forward_to: http://%[2]s/hooks/payments
    forward_secret: env:E2E_INTERNAL_WHSEC
internal_egress: {allow: ["%[2]s"]}
`

// TestWebhookEndToEnd: a vendor webhook is verified, acknowledged while the
// internal receiver is down, delivered re-signed once it comes back, and a
// replay is refused.
func TestWebhookEndToEnd(t *testing.T) {
	const vendorSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	const internalSecret = "whsec_aW50ZXJuYWwtc2VjcmV0LWZvci10ZXN0cw=="
	whAddr, recvAddr := freeAddr(t), freeAddr(t)
	dir := t.TempDir()
	env := []string{"E2E_WHSEC=" + vendorSecret, "E2E_INTERNAL_WHSEC=" + internalSecret}
	p := startServeIn(t, dir, "", "", fmt.Sprintf(webhookConfig, whAddr, recvAddr), env...)

	cfgWH := &config.Webhook{Scheme: "standard"}
	v, err := webhook.NewVerifier(cfgWH)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"type":"charge.succeeded","data":{"id":"ch_1"}}`)
	hdr, err := v.Sign(body, []secret.Value{secret.New(vendorSecret)}, webhook.SignParams{ID: "msg_e2e_1", Timestamp: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	send := func() int {
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
		return resp.StatusCode
	}
	if code := send(); code != 200 {
		t.Fatalf("signed webhook: %d", code)
	}
	if code := send(); code != 401 {
		t.Errorf("replayed webhook: %d, want 401", code)
	}
	tampered := bytes.Replace(body, []byte("ch_1"), []byte("ch_2"), 1)
	req, _ := http.NewRequest("POST", "http://"+whAddr+"/webhooks/payments", bytes.NewReader(tampered))
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	req.Header.Set("webhook-id", "msg_e2e_2")
	req.Header.Set("Content-Type", "application/json")
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Errorf("tampered webhook: %d, want 401", resp.StatusCode)
		}
	}

	// The gateway restarts while the receiver is still down: the accepted
	// webhook is on disk, not in memory.
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.cmd.Wait()
	p = startServeIn(t, dir, p.caller, p.admin, fmt.Sprintf(webhookConfig, whAddr, recvAddr), env...)
	if code := send(); code != 401 {
		t.Errorf("replay after restart: %d, want 401 (replay ids are durable)", code)
	}

	// The receiver was down; it comes back now.
	var mu sync.Mutex
	var got []http.Header
	var gotBody []byte
	ln, err := net.Listen("tcp", recvAddr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, r.Header.Clone())
		gotBody = b
		mu.Unlock()
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	waitForUpTo(t, 30*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) > 0
	}, "forwarded webhook")
	time.Sleep(500 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 {
		t.Errorf("forwarded %d times, want once", len(got))
	}
	if _, err := v.Verify(got[0], gotBody, []secret.Value{secret.New(internalSecret)}, time.Now(), 5*time.Minute); err != nil {
		t.Errorf("forwarded webhook does not verify with the internal secret: %v", err)
	}
	if got[0].Get("webhook-id") != "msg_e2e_1" || !bytes.Equal(gotBody, body) {
		t.Errorf("forwarded id %q body %s", got[0].Get("webhook-id"), gotBody)
	}
	_ = p
}
