package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/identity"
)

// These tests run the real binary, as a user would.

var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "portcullis-e2e-")
	if err != nil {
		panic(err)
	}
	binPath = filepath.Join(dir, "portcullis")
	out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build failed: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freeAddr returns a loopback address no one listens on, for a gateway
// the test starts later. It picks ports below Linux's ephemeral range
// (32768–60999): a port asked of the kernel with ":0" is free only until
// it is closed, and the kernel hands the same range to every outbound
// connection, so under load another socket took it before the gateway
// bound it ("bind: address already in use" in CI). Below that range only
// a listener that names its port can collide, and freeAddr still checks.
func freeAddr(t *testing.T) string {
	t.Helper()
	for range 200 {
		port := 20000 + int(nextPort.Add(1)%12000)
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		addr := ln.Addr().String()
		ln.Close()
		return addr
	}
	t.Fatal("no free loopback port in 20000-31999")
	return ""
}

// nextPort walks the port range from a random start, so two runs of the
// suite side by side (two checkouts on one machine) rarely meet.
var nextPort = func() *atomic.Int64 {
	var n atomic.Int64
	n.Store(rand.Int64N(12000))
	return &n
}()

// syncBuffer collects a process's output safely.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type proc struct {
	cmd    *exec.Cmd
	out    *syncBuffer
	caller string
	admin  string
	cfg    string
}

// startServe writes cfgText and runs `portcullis serve`; it returns when
// /healthz answers.
func startServe(t *testing.T, cfgText string, env ...string) *proc {
	t.Helper()
	return startServeIn(t, t.TempDir(), "", "", cfgText, env...)
}

// startServeIn runs the gateway with its config and data under dir, on the
// given addresses (empty: free ports).
func startServeIn(t *testing.T, dir, caller, admin, cfgText string, env ...string) *proc {
	t.Helper()
	if caller == "" {
		caller = freeAddr(t)
	}
	if admin == "" {
		admin = freeAddr(t)
	}
	p := &proc{out: &syncBuffer{}, caller: caller, admin: admin, cfg: filepath.Join(dir, "portcullis.yaml")}
	cfgText = strings.NewReplacer("{{CALLER}}", p.caller, "{{ADMIN}}", p.admin, "{{DATA}}", filepath.Join(dir, "data")).Replace(cfgText)
	if err := os.WriteFile(p.cfg, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(binPath, "serve", "--config", p.cfg)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.run(t)
	return p
}

// run starts p.cmd, stops it (SIGTERM, then kill after 10 s) when the test
// ends, and returns once /healthz answers on the admin listener.
func (p *proc) run(t *testing.T) {
	t.Helper()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = p.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
		}
		if t.Failed() {
			t.Logf("gateway output:\n%s", p.out)
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + p.admin + "/healthz")
		if err == nil {
			resp.Body.Close()
			return
		}
		if p.cmd.ProcessState != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("gateway did not come up:\n%s", p.out)
}

func (p *proc) get(t *testing.T, method, path, token string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+p.caller+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func adminGet(t *testing.T, url, token string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}

const e2eConfig = `version: 1
server: {listen: "{{CALLER}}", admin_listen: "{{ADMIN}}", admin_token: env:E2E_ADMIN_TOKEN, shutdown_grace: 5s}
state: {data_dir: "{{DATA}}"}
callers:
  billing: {tokens: ["%[1]s"]}
integrations:
  payments:
    upstream: %[2]s
    egress: {allow: ["%[3]s"], allow_private: true}
    credential: {type: bearer, secret: env:E2E_VENDOR_KEY}
    request_headers: [Content-Type]
    timeouts: {connect: 1s, request: 5s}
    routes:
      - {method: GET, path: "/v1/charges/{id}", callers: [billing]}
      - {method: GET, path: "/v1/slow", callers: [billing]}
      - {method: GET, path: "/v1/denied-by-vendor", callers: [billing]}
%[4]s`

// The canary is what an attacker would grep for.
const canaryKey = "sk_live_CANARY_e2e_5f3a9c1d7b"

func vendorServer(t *testing.T) *httptest.Server {
	v := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+canaryKey {
			w.WriteHeader(401)
			fmt.Fprint(w, `{"error":"bad key"}`)
			return
		}
		switch r.URL.Path {
		case "/v1/slow":
			time.Sleep(1500 * time.Millisecond)
		case "/v1/denied-by-vendor":
			// A vendor echoing our key back in an error must not leak it
			// into the gateway's logs.
			w.WriteHeader(403)
			fmt.Fprintf(w, `{"error":"key %s lacks scope"}`, canaryKey)
			return
		}
		fmt.Fprintf(w, `{"ok":true,"path":%q}`, r.URL.Path)
	}))
	t.Cleanup(v.Close)
	return v
}

func TestServeInjectsCredentialAndNeverLeaksIt(t *testing.T) {
	v := vendorServer(t)
	tok, hash, _ := identity.NewToken()
	host := strings.TrimPrefix(v.URL, "http://")
	p := startServe(t, fmt.Sprintf(e2eConfig, hash, v.URL, host, ""), "E2E_VENDOR_KEY="+canaryKey, "E2E_ADMIN_TOKEN=adm_e2e_token_123456")

	if code, body, _ := p.get(t, "GET", "/payments/v1/charges/ch_1", tok); code != 200 || !strings.Contains(body, `"ok":true`) {
		t.Fatalf("allowed call: %d %s", code, body)
	}
	var bodies []string
	for _, c := range []struct{ method, path, tok string }{
		{"GET", "/payments/v1/charges/ch_1", ""},
		{"GET", "/payments/v1/refunds", tok},
		{"GET", "/payments/v1/charges/..%2f", tok},
		{"GET", "/payments/v1/denied-by-vendor", tok},
		{"GET", "/nope/x", tok},
	} {
		_, b, h := p.get(t, c.method, c.path, c.tok)
		bodies = append(bodies, b, fmt.Sprint(h))
	}
	time.Sleep(200 * time.Millisecond)
	surfaces := map[string]string{
		"logs":         p.out.String(),
		"error bodies": strings.Join(bodies, "\n"),
		"metrics":      adminGet(t, "http://"+p.admin+"/metrics", "adm_e2e_token_123456"),
		"admin api":    adminGet(t, "http://"+p.admin+"/api/v1/integrations", "adm_e2e_token_123456"),
	}
	for name, s := range surfaces {
		if strings.Contains(s, canaryKey) || strings.Contains(s, "CANARY") {
			t.Errorf("the vendor key leaked into %s", name)
		}
		if strings.Contains(s, tok) {
			t.Errorf("the caller token leaked into %s", name)
		}
	}
	if !strings.Contains(surfaces["metrics"], `portcullis_requests_total{caller="billing",code="route_not_allowed"`) {
		t.Errorf("metrics lack the refused route:\n%s", surfaces["metrics"])
	}
	// The admin API refuses callers without the admin token.
	resp, err := http.Get("http://" + p.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("/metrics without a token: %d", resp.StatusCode)
	}
}

func TestReload(t *testing.T) {
	v := vendorServer(t)
	tok, hash, _ := identity.NewToken()
	host := strings.TrimPrefix(v.URL, "http://")
	p := startServe(t, fmt.Sprintf(e2eConfig, hash, v.URL, host, ""), "E2E_VENDOR_KEY="+canaryKey, "E2E_ADMIN_TOKEN=adm_e2e_token_123456")
	if code, _, _ := p.get(t, "GET", "/payments/v1/refunds", tok); code != 403 {
		t.Fatalf("before reload: %d", code)
	}
	orig, _ := os.ReadFile(p.cfg)

	// A slow call in flight while the config changes must finish.
	inflight := make(chan int, 1)
	go func() {
		req, _ := http.NewRequestWithContext(context.Background(), "GET", "http://"+p.caller+"/payments/v1/slow", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			inflight <- 0
			return
		}
		resp.Body.Close()
		inflight <- resp.StatusCode
	}()
	time.Sleep(300 * time.Millisecond)

	// 1. A broken config is refused; the old one keeps serving.
	if err := os.WriteFile(p.cfg, append(orig, []byte("bogus_key: 1\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return strings.Contains(p.out.String(), "config reload refused") }, "refused reload")
	if !strings.Contains(p.out.String(), "bogus_key") {
		t.Errorf("reload error does not name the key")
	}
	if code, _, _ := p.get(t, "GET", "/payments/v1/charges/1", tok); code != 200 {
		t.Errorf("after a refused reload the old config stopped serving: %d", code)
	}

	// 2. A good config (a new route) takes effect on SIGHUP.
	good := strings.Replace(string(orig), "      - {method: GET, path: \"/v1/slow\"", "      - {method: GET, path: \"/v1/refunds\", callers: [billing]}\n      - {method: GET, path: \"/v1/slow\"", 1)
	if err := os.WriteFile(p.cfg, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, func() bool {
		code, _, _ := p.get(t, "GET", "/payments/v1/refunds", tok)
		return code == 200
	}, "new route after reload")
	if code := <-inflight; code != 200 {
		t.Errorf("in-flight call across reloads ended with %d", code)
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	waitForUpTo(t, 10*time.Second, cond, what)
}

func waitForUpTo(t *testing.T, d time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func runCLI(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, string(out)
}

func TestCheck(t *testing.T) {
	code, out := runCLI(t, "check", "--config", "../../examples/portcullis.yaml")
	if code != 0 {
		t.Fatalf("check examples: exit %d\n%s", code, out)
	}
	ex, _ := os.ReadFile("../../examples/portcullis.yaml")
	risky := filepath.Join(t.TempDir(), "risky.yaml")
	os.WriteFile(risky, []byte(strings.Replace(string(ex), "egress: {allow: [\"api.twilio.com:443\"]}", "egress: {allow: [\"api.twilio.com:443\"], allow_private: true}", 1)), 0o600)
	code, out = runCLI(t, "check", "--config", risky)
	if code != 0 || !strings.Contains(out, "warning: integrations.sms.egress.allow_private") {
		t.Errorf("warnings only: exit %d, want 0 and the warning:\n%s", code, out)
	}
	if code, _ := runCLI(t, "check", "--strict", "--config", risky); code != 1 {
		t.Errorf("--strict with warnings: exit %d, want 1", code)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte(`version: 1
callers: {billing: {tokens: ["pcs_raw"]}}
integrations:
  pay:
    upstream: https://api.pay.example
    egress: {allow: ["api.other.example:443"]}
    credential: {type: bearer, secret: sk_live_plaintext_123}
    timeouts: {request: forever}
    routes: [{method: GET, path: /x, callers: [ghost]}]
`), 0o600)
	code, out = runCLI(t, "check", "--config", bad)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	for _, want := range []string{"bad.yaml:2:", "bad.yaml:5:", "bad.yaml:7:", "bad.yaml:8:", "bad.yaml:9:", "5 error(s)"} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "sk_live_plaintext_123") || strings.Contains(out, "pcs_raw") {
		t.Errorf("check echoes a secret:\n%s", out)
	}
}

func TestTokenNew(t *testing.T) {
	code, out := runCLI(t, "token", "new", "--caller", "billing")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	var tok, hash string
	for sc.Scan() {
		l := sc.Text()
		if v, ok := strings.CutPrefix(l, "token:  "); ok {
			tok = v
		}
		if _, v, ok := strings.Cut(l, `tokens: ["`); ok {
			hash = strings.TrimSuffix(v, `"]`)
		}
	}
	if tok == "" || hash != identity.Hash(tok) {
		t.Errorf("token %q hash %q do not match:\n%s", tok, hash, out)
	}
}

func TestHelpOnEveryCommand(t *testing.T) {
	for _, c := range []string{"serve", "check", "token", "ca", "demo", "webhook", "version"} {
		t.Run(c, func(t *testing.T) {
			code, out := runCLI(t, c, "--help")
			if code != 0 || len(out) < 10 {
				t.Errorf("%s --help: exit %d, %q", c, code, out)
			}
		})
	}
	if code, _ := runCLI(t, "frobnicate"); code != 2 {
		t.Errorf("unknown command exit %d, want 2", code)
	}
}

func TestDemo(t *testing.T) {
	code, out := runCLI(t, "demo", "--exit", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0")
	if code != 0 || !strings.Contains(out, "Demo passed.") {
		t.Fatalf("demo: exit %d\n%s", code, out)
	}
	for _, want := range []string{"route_not_allowed", "unauthenticated", "bad_request_path", "egress_denied", "Bearer sk_demo_"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
}
