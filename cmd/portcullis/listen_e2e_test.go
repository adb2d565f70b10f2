package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/identity"
)

// The listener tests run the binary under a lowered open file limit
// (ulimit -n), flood one listener, and check the others still answer.

// startServeLimited is startServeIn under `ulimit -n nofile`; webhook is
// the webhook listener's address (the config's {{WEBHOOK}}).
func startServeLimited(t *testing.T, nofile int, webhook, cfgText string, env ...string) *proc {
	t.Helper()
	p, cmd := limitedCommand(t, nofile, webhook, cfgText, env...)
	p.cmd = cmd
	p.run(t)
	return p
}

func limitedCommand(t *testing.T, nofile int, webhook, cfgText string, env ...string) (*proc, *exec.Cmd) {
	t.Helper()
	dir := t.TempDir()
	p := &proc{out: &syncBuffer{}, caller: freeAddr(t), admin: freeAddr(t), cfg: filepath.Join(dir, "portcullis.yaml")}
	cfgText = strings.NewReplacer("{{CALLER}}", p.caller, "{{ADMIN}}", p.admin, "{{WEBHOOK}}", webhook,
		"{{DATA}}", filepath.Join(dir, "data")).Replace(cfgText)
	if err := os.WriteFile(p.cfg, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	// The shell lowers both the soft and the hard limit, so the gateway
	// cannot raise it back.
	cmd := exec.Command("sh", "-c", fmt.Sprintf(`ulimit -n %d && exec "$0" "$@"`, nofile), binPath, "serve", "--config", p.cfg)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = p.out, p.out
	return p, cmd
}

const listenConfig = `version: 1
server:
  listen: "{{CALLER}}"
  admin_listen: "{{ADMIN}}"
  webhook_listen: "{{WEBHOOK}}"
  admin_token: env:E2E_ADMIN_TOKEN
  shutdown_grace: 2s
%[4]s
state: {data_dir: "{{DATA}}"}
callers:
  billing: {tokens: ["%[1]s"]}
integrations:
  payments:
    upstream: %[2]s
    egress: {allow: ["%[3]s"], allow_private: true}
    credential: {type: bearer, secret: env:E2E_VENDOR_KEY}
    request_headers: [Content-Type]
    timeouts: {connect: 1s, request: 10s}
    routes:
      - {method: GET, path: "/v1/charges/{id}", callers: [billing]}
      - {method: POST, path: "/v1/charges", callers: [billing]}
      - {method: POST, path: "/v1/slow", callers: [billing]}
webhooks:
  payments-events:
    path: /webhooks/payments
    scheme: standard
    secrets: [env:E2E_WHSEC]
`

const listenAdminToken = "adm_listen_e2e_token_4f1c"

type listenRig struct {
	p       *proc
	tok     string
	webhook string
}

func newListenRig(t *testing.T, nofile int, limits string) *listenRig {
	t.Helper()
	v := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/v1/slow" {
			time.Sleep(3 * time.Second)
		}
		fmt.Fprintf(w, `{"ok":true,"path":%q}`, r.URL.Path)
	}))
	t.Cleanup(v.Close)
	tok, hash, _ := identity.NewToken()
	wh := freeAddr(t)
	cfg := fmt.Sprintf(listenConfig, hash, v.URL, strings.TrimPrefix(v.URL, "http://"), limits)
	p := startServeLimited(t, nofile, wh, cfg, "E2E_VENDOR_KEY=vendor-key-e2e", "E2E_ADMIN_TOKEN="+listenAdminToken, "E2E_WHSEC=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	return &listenRig{p: p, tok: tok, webhook: wh}
}

// flood opens n connections to addr that never send a byte; it returns
// them (the caller closes them) and how many could not be opened.
func flood(t *testing.T, addr string, n int) ([]net.Conn, int) {
	t.Helper()
	var conns []net.Conn
	failed := 0
	for range n {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			failed++
			continue
		}
		conns = append(conns, c)
	}
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	return conns, failed
}

// othersAnswer checks that a vendor call on the caller listener and
// /healthz on the admin listener are answered within a few seconds.
func (r *listenRig) othersAnswer(t *testing.T) {
	t.Helper()
	client := &http.Client{Timeout: 4 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	req, _ := http.NewRequest("GET", "http://"+r.p.caller+"/payments/v1/charges/ch_1", nil)
	req.Header.Set("Authorization", "Bearer "+r.tok)
	resp, err := client.Do(req)
	if err != nil {
		t.Errorf("caller listener while the webhook listener is flooded: %v", err)
	} else {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), `"ok":true`) {
			t.Errorf("vendor call while the webhook listener is flooded: %d %s", resp.StatusCode, b)
		}
	}
	resp, err = client.Get("http://" + r.p.admin + "/healthz")
	if err != nil {
		t.Errorf("/healthz while the webhook listener is flooded: %v", err)
	} else {
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("/healthz while the webhook listener is flooded: %d", resp.StatusCode)
		}
	}
}

// TestIdleFloodOnWebhookListenerWithDefaults: with the default limits and
// an open file limit of 1536, 1600 silent connections to the webhook port
// (more than the process may open) leave the caller and admin listeners
// answering. Before server.limits the webhook listener accepted until
// accept4 failed with "too many open files", for every listener.
func TestIdleFloodOnWebhookListenerWithDefaults(t *testing.T) {
	r := newListenRig(t, 1536, "")
	waitFor(t, func() bool { return strings.Contains(r.p.out.String(), "open file limit is low for server.limits") },
		"the warning that 1536 files is tight for the default limits")
	conns, failed := flood(t, r.webhook, 1600)
	if failed > 0 {
		t.Logf("%d of 1600 flood connections could not be opened", failed)
	}
	r.othersAnswer(t)

	// The flood ends; the webhook listener serves again.
	for _, c := range conns {
		c.Close()
	}
	client := &http.Client{Timeout: 15 * time.Second}
	resp, err := client.Post("http://"+r.webhook+"/webhooks/payments", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatalf("webhook listener after the flood: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("unsigned webhook after the flood: %d, want 400", resp.StatusCode)
	}
}

const tightLimits = `  limits:
    caller: {max_conns: 64, read_timeout: 2s, body_stall_timeout: 1s}
    admin: {max_conns: 16}
    webhook: {max_conns: 8, idle_timeout: 1s, read_header_timeout: 1s, read_timeout: 2s, body_stall_timeout: 1s}`

// TestListenerLimits: configured caps and deadlines, under ulimit -n 256.
func TestListenerLimits(t *testing.T) {
	r := newListenRig(t, 256, tightLimits)
	defer func() { // the log is flushed every 100ms; by the end it is out
		if out := r.p.out.String(); strings.Contains(out, "open file limit is low") {
			t.Errorf("warned although the limits fit in 256 files")
		}
	}()

	t.Run("flood-over-cap-and-fd-limit", func(t *testing.T) {
		conns, _ := flood(t, r.webhook, 300)
		r.othersAnswer(t)
		metrics := adminGet(t, "http://"+r.p.admin+"/metrics", listenAdminToken)
		for _, want := range []string{`portcullis_listener_connections{listener="webhook"} 8`, `portcullis_listener_max_connections{listener="webhook"} 8`} {
			if !strings.Contains(metrics, want) {
				t.Errorf("metrics lack %s", want)
			}
		}
		waitFor(t, func() bool {
			return strings.Contains(r.p.out.String(), `"msg":"listener at max_conns: new connections wait in the kernel's accept queue","listener":"webhook"`)
		}, "the log line for the webhook listener at its cap")
		for _, c := range conns {
			c.Close()
		}
	})

	t.Run("idle-keep-alive-closed", func(t *testing.T) {
		c, err := net.Dial("tcp", r.webhook)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		start := time.Now()
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = br.ReadByte()
		if err != io.EOF {
			t.Fatalf("idle keep-alive connection: read %v, want EOF (closed by the gateway)", err)
		}
		if d := time.Since(start); d < 900*time.Millisecond || d > 8*time.Second {
			t.Errorf("idle connection closed after %s, want about idle_timeout (1s)", d)
		}
	})

	t.Run("silent-connection-closed", func(t *testing.T) {
		c, err := net.Dial("tcp", r.webhook)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Errorf("connection that never sent a request: read %v, want EOF after read_header_timeout", err)
		}
	})

	// cut sends headers announcing a big body, then the body through drip;
	// it returns how long the gateway took to answer and close, and the
	// status line it answered with ("" if none).
	cut := func(t *testing.T, addr, head string, drip func(net.Conn) error) (time.Duration, string) {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		fmt.Fprintf(c, "%sContent-Length: 100000\r\nContent-Type: application/json\r\n\r\n{", head)
		go func() { _ = drip(c) }()
		_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
		b, err := io.ReadAll(c)
		if err != nil {
			t.Fatalf("gateway did not close the connection of a slow body: %v", err)
		}
		status, _, _ := strings.Cut(string(b), "\r\n")
		return time.Since(start), status
	}
	trickle := func(c net.Conn) error { // 1 byte every 300ms: beats the stall bound, not the total
		for {
			time.Sleep(300 * time.Millisecond)
			if _, err := c.Write([]byte(" ")); err != nil {
				return err
			}
		}
	}
	stall := func(net.Conn) error { return nil }

	t.Run("slow-webhook-body-cut", func(t *testing.T) {
		d, status := cut(t, r.webhook, "POST /webhooks/payments HTTP/1.1\r\nHost: x\r\n", trickle)
		if d < 1900*time.Millisecond || d > 10*time.Second {
			t.Errorf("trickled webhook body cut after %s, want about read_timeout (2s)", d)
		}
		t.Logf("trickled webhook body: %s after %s", status, d)
	})
	t.Run("stalled-webhook-body-cut", func(t *testing.T) {
		d, _ := cut(t, r.webhook, "POST /webhooks/payments HTTP/1.1\r\nHost: x\r\n", stall)
		if d < 900*time.Millisecond || d > 10*time.Second {
			t.Errorf("stalled webhook body cut after %s, want about body_stall_timeout (1s)", d)
		}
	})
	auth := "Authorization: Bearer " + r.tok + "\r\n"
	t.Run("slow-caller-body-is-request-timeout", func(t *testing.T) {
		d, status := cut(t, r.p.caller, "POST /payments/v1/charges HTTP/1.1\r\nHost: x\r\n"+auth, trickle)
		if status != "HTTP/1.1 408 Request Timeout" {
			t.Errorf("trickled caller body answered %q, want 408", status)
		}
		if d < 1900*time.Millisecond || d > 10*time.Second {
			t.Errorf("trickled caller body cut after %s, want about read_timeout (2s)", d)
		}
	})
	t.Run("vendor-call-may-outlast-read-timeout", func(t *testing.T) {
		// The body deadline ends with the body: a 3s vendor call after a
		// prompt body is not cut by read_timeout 2s.
		req, _ := http.NewRequest("POST", "http://"+r.p.caller+"/payments/v1/slow", strings.NewReader(`{"a":1}`))
		req.Header.Set("Authorization", "Bearer "+r.tok)
		req.Header.Set("Content-Type", "application/json")
		resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("slow vendor call: %d %s", resp.StatusCode, b)
		}
	})
}

// TestServeRefusesCapsOverFileLimit: the default caps do not fit in 512
// files, so the gateway refuses to start and says what to change.
func TestServeRefusesCapsOverFileLimit(t *testing.T) {
	_, cmd := limitedCommand(t, 512, freeAddr(t), fmt.Sprintf(listenConfig, "sha256:"+strings.Repeat("ab", 32), "http://127.0.0.1:9", "127.0.0.1:9", ""),
		"E2E_VENDOR_KEY=k", "E2E_ADMIN_TOKEN=k", "E2E_WHSEC=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	cmd.Stdout, cmd.Stderr = nil, nil
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Fatalf("serve under ulimit -n 512 with the default limits: %v\n%s", err, out)
	}
	for _, want := range []string{"server.limits", "open file limit of 512", "caller 1024 + admin 64 + webhook 256"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("refusal does not say %q:\n%s", want, out)
		}
	}
}
