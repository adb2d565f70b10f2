package server

// Inspect mode end to end (issue 17): a real gateway (Run, its listeners
// and assembly) with proxy.inspect on, a local TLS fake vendor the gateway
// trusts through egress.ca_file, and real clients configured only through
// HTTPS_PROXY (caller:token in the proxy URL) and the inspect CA file:
// curl, Go net/http, Node (https-proxy-agent and undici) and Python's
// urllib. Each sends a dummy vendor key; the vendor must see the real one.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/identity"
	"github.com/portcullis-dev/portcullis/internal/mint"
	"github.com/portcullis-dev/portcullis/internal/testdns"
	"github.com/portcullis-dev/portcullis/internal/testpki"
)

const (
	inspectHost  = "api.vendor.test"
	realKey      = "sk_live_REAL_vendor_key_CANARY_7f3a"
	dummyKey     = "sk_dummy_placeholder_in_the_service"
	inspectAdmin = "adm_inspect_e2e_token_51d2"
)

const inspectSpec = `openapi: 3.0.3
info: {title: vendor, version: "1"}
paths:
  /v1/things:
    get:
      responses:
        "200":
          description: things
          content:
            application/json:
              schema: {type: object, required: [vendor], properties: {vendor: {type: string}}}
  /v1/bad:
    get:
      responses:
        "200":
          description: a vendor answer that breaks its own spec
          content:
            application/json:
              schema: {type: object, required: [vendor], properties: {vendor: {type: string}}}
`

const inspectConfig = `version: 1
server:
  listen: "127.0.0.1:0"
  admin_listen: "127.0.0.1:0"
  admin_token: "file:$DIR/admin_token"
  inspect_ca: {cert: "$DIR/inspect-ca.pem", key: "file:$DIR/inspect-ca.key"}
state: {data_dir: "$DIR/data"}
callers:
  billing: {tokens: ["$HASH"]}
integrations:
  vendor:
    upstream: https://` + inspectHost + `:$VPORT
    egress: {allow: ["` + inspectHost + `:$VPORT"], allow_cidrs: ["127.0.0.1/32"], ca_file: "$DIR/vendor-ca.pem"}
    credential: {type: bearer, secret: "file:$DIR/vendor_key", max_age: 90d}
    request_headers: [Accept, Content-Type]
    routes:
      - {method: GET, path: /v1/things, callers: [billing]}
      - {method: GET, path: /v1/bad, callers: [billing]}
    validate: {openapi: "$DIR/vendor.openapi.yaml", mode: enforce}
    proxy: {mode: enforce, inspect: true}
`

// inspectEnv is one running gateway with its vendor and files.
type inspectEnv struct {
	dir      string
	caFile   string // the inspect CA certificate, what clients trust
	caKeyPEM []byte
	proxyURL string // http://billing:token@gateway
	token    string
	vport    string
	admin    string
	logs     *lockedBuffer

	mu   sync.Mutex
	seen []string // Authorization headers the vendor received
}

func (e *inspectEnv) url(path string) string { return "https://" + inspectHost + ":" + e.vport + path }

func (e *inspectEnv) vendorSaw() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.seen...)
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startInspect(t *testing.T) *inspectEnv {
	t.Helper()
	e := &inspectEnv{dir: t.TempDir(), logs: &lockedBuffer{}}
	write := func(name string, data []byte) {
		if err := os.WriteFile(filepath.Join(e.dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	vca := testpki.New(t, "vendor CA", inspectHost)
	v := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.seen = append(e.seen, r.Header.Get("Authorization"))
		e.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/v1/bad" {
			fmt.Fprint(w, `{"nope":1}`)
			return
		}
		fmt.Fprintf(w, `{"vendor":"ok","host":%q}`, r.Host)
	}))
	v.TLS = &tls.Config{Certificates: []tls.Certificate{vca.Leaf}}
	v.StartTLS()
	t.Cleanup(v.Close)
	_, e.vport, _ = net.SplitHostPort(v.Listener.Addr().String())

	certPEM, keyPEM, err := mint.NewCA(mint.CAOptions{Name: "inspect e2e CA"})
	if err != nil {
		t.Fatal(err)
	}
	e.caKeyPEM = keyPEM
	e.caFile = filepath.Join(e.dir, "inspect-ca.pem")
	write("inspect-ca.pem", certPEM)
	write("inspect-ca.key", keyPEM)
	write("vendor-ca.pem", vca.PEM)
	write("vendor_key", []byte(realKey))
	write("admin_token", []byte(inspectAdmin))
	write("vendor.openapi.yaml", []byte(inspectSpec))
	token, hash, err := identity.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	e.token = token
	cfg := strings.NewReplacer("$DIR", e.dir, "$HASH", hash, "$VPORT", e.vport).Replace(inspectConfig)
	cfgPath := filepath.Join(e.dir, "portcullis.yaml")
	write("portcullis.yaml", []byte(cfg))

	dns := testdns.Start(t, map[string][]netip.Addr{inspectHost: {netip.MustParseAddr("127.0.0.1")}})
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan Addrs, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{ConfigPath: cfgPath, LogOutput: e.logs, Resolver: dns, Ready: func(a Addrs) { ready <- a }})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Error("the gateway did not stop")
		}
	})
	select {
	case a := <-ready:
		e.proxyURL = "http://billing:" + token + "@" + a.Caller
		e.admin = "http://" + a.Admin
	case err := <-done:
		t.Fatalf("serve: %v\n%s", err, e.logs.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("the gateway did not start:\n%s", e.logs.String())
	}
	return e
}

// clientEnv is the environment of a client process: the proxy (and
// nothing else) through HTTPS_PROXY, and the CA file through each
// ecosystem's variable.
func (e *inspectEnv) clientEnv() []string {
	env := []string{}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(k) {
		case "HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY":
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		"HTTPS_PROXY="+e.proxyURL, "https_proxy="+e.proxyURL,
		"CURL_CA_BUNDLE="+e.caFile, "SSL_CERT_FILE="+e.caFile, "NODE_EXTRA_CA_CERTS="+e.caFile,
		"INSPECT_URL="+e.url("/v1/things"), "INSPECT_CA_FILE="+e.caFile, "INSPECT_DUMMY_KEY="+dummyKey)
}

// runClient runs a client program and returns its standard output.
func (e *inspectEnv) runClient(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = e.clientEnv()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\nstdout: %s\nstderr: %s\ngateway:\n%s", name, err, out.String(), errb.String(), e.logs.String())
	}
	return out.String()
}

// need finds a program, or fails under PORTCULLIS_REQUIRE_SERVERS=1 and
// skips otherwise.
func need(t *testing.T, name, hint string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("PORTCULLIS_REQUIRE_SERVERS") == "1" {
			t.Fatalf("%s not installed (%s)", name, hint)
		}
		t.Skipf("%s not installed (%s)", name, hint)
	}
	return p
}

// nodeModules is where scripts/install-node-clients.sh installs the Node
// clients ($PORTCULLIS_NODE_MODULES overrides it).
func nodeModules(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("PORTCULLIS_NODE_MODULES")
	if dir == "" {
		dir, _ = filepath.Abs(filepath.Join("..", "..", ".cache", "node-clients", "node_modules"))
	}
	if _, err := os.Stat(filepath.Join(dir, "undici")); err != nil {
		if os.Getenv("PORTCULLIS_REQUIRE_SERVERS") == "1" {
			t.Fatalf("Node clients not installed in %s: run scripts/install-node-clients.sh", dir)
		}
		t.Skipf("Node clients not installed in %s: run scripts/install-node-clients.sh", dir)
	}
	return dir
}

// The clients. Each prints the vendor's answer; none is told about the
// proxy or the CA other than through the environment.
const (
	nodeHTTPSProxyAgent = `
const https = require("https");
const { HttpsProxyAgent } = require("https-proxy-agent");
const agent = new HttpsProxyAgent(process.env.HTTPS_PROXY);
https.get(process.env.INSPECT_URL, { agent, headers: { Authorization: "Bearer " + process.env.INSPECT_DUMMY_KEY } }, (res) => {
  let body = "";
  res.on("data", (c) => (body += c));
  res.on("end", () => { if (res.statusCode !== 200) { console.error(res.statusCode, body); process.exit(1); } console.log(body); });
}).on("error", (e) => { console.error(e); process.exit(1); });
`
	nodeUndici = `
const { fetch, EnvHttpProxyAgent, setGlobalDispatcher } = require("undici");
setGlobalDispatcher(new EnvHttpProxyAgent());
fetch(process.env.INSPECT_URL, { headers: { Authorization: "Bearer " + process.env.INSPECT_DUMMY_KEY } })
  .then(async (res) => { const body = await res.text(); if (res.status !== 200) { console.error(res.status, body); process.exit(1); } console.log(body); })
  .catch((e) => { console.error(e); process.exit(1); });
`
	pythonURLLib = `
import os, urllib.request
req = urllib.request.Request(os.environ["INSPECT_URL"], headers={"Authorization": "Bearer " + os.environ["INSPECT_DUMMY_KEY"]})
with urllib.request.urlopen(req, timeout=20) as resp:
    print(resp.read().decode())
`
)

// TestInspectGoClientProcess is the Go client, run as its own process by
// TestInspectRealClients so that http.ProxyFromEnvironment reads the
// environment it was started with. It skips when run on its own.
func TestInspectGoClientProcess(t *testing.T) {
	url := os.Getenv("INSPECT_URL")
	if url == "" || os.Getenv("INSPECT_GO_CLIENT") != "1" {
		t.Skip("run by TestInspectRealClients")
	}
	pem, err := os.ReadFile(os.Getenv("INSPECT_CA_FILE"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("no CA in the CA file")
	}
	c := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		Proxy:             http.ProxyFromEnvironment,
		TLSClientConfig:   &tls.Config{RootCAs: pool},
		ForceAttemptHTTP2: true, // offers h2; the gateway must answer over HTTP/1.1
	}}
	for range 2 { // the second request reuses the tunnel
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", "Bearer "+os.Getenv("INSPECT_DUMMY_KEY"))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.ProtoMajor != 1 {
			t.Fatalf("%s %d: %s", resp.Proto, resp.StatusCode, body)
		}
		fmt.Printf("GOCLIENT %s\n", body)
	}
}

// TestInspectRealClients: every client gets the vendor's answer, and the
// vendor sees the real key, never the dummy.
func TestInspectRealClients(t *testing.T) {
	e := startInspect(t)
	clients := []struct {
		name string
		run  func(t *testing.T) string
	}{
		{"curl", func(t *testing.T) string {
			return e.runClient(t, need(t, "curl", "apt-get install curl"), "--silent", "--show-error", "--fail-with-body", "--max-time", "20",
				"-H", "Authorization: Bearer "+dummyKey, e.url("/v1/things"))
		}},
		{"go-net-http", func(t *testing.T) string {
			t.Setenv("INSPECT_GO_CLIENT", "1")
			out := e.runClient(t, os.Args[0], "-test.run=^TestInspectGoClientProcess$", "-test.count=1", "-test.v")
			if strings.Count(out, "GOCLIENT ") != 2 {
				t.Fatalf("Go client did not make its two calls:\n%s", out)
			}
			return out
		}},
		{"node-https-proxy-agent", func(t *testing.T) string {
			mods := nodeModules(t)
			t.Setenv("NODE_PATH", mods)
			return e.runClient(t, need(t, "node", "apt-get install nodejs"), "-e", nodeHTTPSProxyAgent)
		}},
		{"node-undici", func(t *testing.T) string {
			mods := nodeModules(t)
			t.Setenv("NODE_PATH", mods)
			return e.runClient(t, need(t, "node", "apt-get install nodejs"), "-e", nodeUndici)
		}},
		{"python-urllib", func(t *testing.T) string {
			return e.runClient(t, need(t, "python3", "apt-get install python3"), "-c", pythonURLLib)
		}},
	}
	for _, c := range clients {
		t.Run(c.name, func(t *testing.T) {
			before := len(e.vendorSaw())
			out := c.run(t)
			if !strings.Contains(out, `"vendor":"ok"`) || !strings.Contains(out, `"host":"`+inspectHost+`:`+e.vport+`"`) {
				t.Fatalf("not the vendor's answer:\n%s", out)
			}
			saw := e.vendorSaw()[before:]
			if len(saw) == 0 {
				t.Fatal("the vendor saw no request")
			}
			for _, a := range saw {
				if a != "Bearer "+realKey {
					t.Errorf("vendor saw Authorization %q, want the real key injected", a)
				}
			}
		})
	}
	// One line per call that reached the vendor (the Go client makes two;
	// a client skipped as not installed makes none).
	want := len(e.vendorSaw())
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(e.logs.String(), `"via":"inspect"`) < want && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	logs := e.logs.String()
	if n := strings.Count(logs, `"via":"inspect"`); n != want || want == 0 {
		t.Errorf("%d request lines with via=inspect, want %d (one per vendor call):\n%s", n, want, logs)
	}
	if strings.Contains(logs, dummyKey) || strings.Contains(logs, e.token) {
		t.Errorf("the dummy key or the caller token is in the logs:\n%s", logs)
	}
}

// tunnel opens a CONNECT tunnel through the gateway, authenticated, and
// returns the connection after the 200.
func (e *inspectEnv) tunnel(t *testing.T, target string) net.Conn {
	t.Helper()
	addr := strings.TrimPrefix(e.proxyURL, "http://billing:"+e.token+"@")
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	auth := base64.StdEncoding.EncodeToString([]byte("billing:" + e.token))
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\nProxy-Authorization: Basic %s\r\n\r\n", target, target, auth)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: "CONNECT"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("CONNECT %s: %d %s", target, resp.StatusCode, body)
	}
	return c
}

// inspectClient is a Go client whose every connection is a fresh tunnel
// with the given TLS server name.
func (e *inspectEnv) inspectClient(t *testing.T, serverName string) *http.Client {
	pem, err := os.ReadFile(e.caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		DialTLSContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			c := e.tunnel(t, inspectHost+":"+e.vport)
			tc := tls.Client(c, &tls.Config{RootCAs: pool, ServerName: serverName})
			if err := tc.HandshakeContext(ctx); err != nil {
				return nil, err
			}
			return tc, nil
		},
	}}
}

type problemBody struct {
	Code   string `json:"code"`
	Status int    `json:"status"`
}

// TestInspectRefusals: inside the tunnel the gateway's refusals are its
// documented problem+json answers; an SNI that is not the CONNECT host
// gets no TLS session at all; a target that is not the upstream gets no
// tunnel.
func TestInspectRefusals(t *testing.T) {
	e := startInspect(t)
	c := e.inspectClient(t, inspectHost)
	tests := []struct {
		name, path, host string
		status           int
		code             string
	}{
		{name: "refused-route", path: "/v1/payouts", status: 403, code: "route_not_allowed"},
		{name: "invalid-vendor-response", path: "/v1/bad", status: 502, code: "invalid_upstream_response"},
		{name: "host-not-the-tunnel", path: "/v1/things", host: "other.vendor.test:" + e.vport, status: 421, code: "bad_request_path"},
		{name: "ambiguous-path", path: "/v1/%2e%2e/things", status: 400, code: "bad_request_path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", e.url(tt.path), nil)
			req.Header.Set("Authorization", "Bearer "+dummyKey)
			if tt.host != "" {
				req.Host = tt.host
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var p problemBody
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type %q, want application/problem+json", ct)
			}
			if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.status || p.Code != tt.code || resp.Header.Get("X-Portcullis-Error") != tt.code {
				t.Errorf("%d %s (header %s), want %d %s", resp.StatusCode, p.Code, resp.Header.Get("X-Portcullis-Error"), tt.status, tt.code)
			}
		})
	}
	for _, a := range e.vendorSaw() {
		if a != "Bearer "+realKey {
			t.Errorf("vendor saw Authorization %q", a)
		}
	}

	t.Run("sni-mismatch", func(t *testing.T) {
		pem, _ := os.ReadFile(e.caFile)
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		for _, sni := range []string{"other.vendor.test", ""} {
			conn := e.tunnel(t, inspectHost+":"+e.vport)
			tc := tls.Client(conn, &tls.Config{RootCAs: pool, ServerName: sni, InsecureSkipVerify: sni == ""})
			_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
			if err := tc.Handshake(); err == nil {
				t.Errorf("SNI %q: TLS handshake succeeded with %s, want it refused", sni, tc.ConnectionState().PeerCertificates[0].Subject)
			}
		}
		waitLog(t, e, `"close_reason":"tls_handshake"`)
	})

	t.Run("not-the-upstream", func(t *testing.T) {
		addr := strings.TrimPrefix(e.proxyURL, "http://billing:"+e.token+"@")
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		auth := base64.StdEncoding.EncodeToString([]byte("billing:" + e.token))
		fmt.Fprintf(conn, "CONNECT %s:1 HTTP/1.1\r\nHost: x\r\nProxy-Authorization: Basic %s\r\n\r\n", inspectHost, auth)
		resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: "CONNECT"})
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 403 || resp.Header.Get("X-Portcullis-Error") != "egress_denied" {
			t.Errorf("CONNECT to another port: %d %s, want 403 egress_denied", resp.StatusCode, resp.Header.Get("X-Portcullis-Error"))
		}
	})
}

func waitLog(t *testing.T, e *inspectEnv, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(e.logs.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s in the logs:\n%s", want, e.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestInspectCanary: after calls through inspected tunnels (and a refused
// handshake), neither the CA key, nor any minted leaf key, nor the real
// vendor key appears in the logs, /metrics or /api/v1/integrations.
func TestInspectCanary(t *testing.T) {
	e := startInspect(t)
	c := e.inspectClient(t, inspectHost)
	for _, path := range []string{"/v1/things", "/v1/things", "/v1/bad", "/v1/nope"} {
		req, _ := http.NewRequest("GET", e.url(path), nil)
		req.Header.Set("Authorization", "Bearer "+dummyKey)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	bad := e.inspectClient(t, "wrong.vendor.test")
	if _, err := bad.Get(e.url("/v1/things")); err == nil {
		t.Error("a wrong SNI got through")
	}
	waitLog(t, e, `"via":"inspect"`)
	adminGet := func(path string) string {
		req, _ := http.NewRequest("GET", e.admin+path, nil)
		req.Header.Set("Authorization", "Bearer "+inspectAdmin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
		}
		return string(b)
	}
	metrics := adminGet("/metrics")
	if !strings.Contains(metrics, `portcullis_requests_total{`) || !strings.Contains(metrics, `integration="vendor"`) {
		t.Fatalf("no request metrics for the inspected calls:\n%s", metrics)
	}
	outputs := map[string]string{"logs": e.logs.String(), "/metrics": metrics, "/api/v1/integrations": adminGet("/api/v1/integrations")}
	// The CA key's base64 body, line by line: no line of it may appear.
	var keyLines []string
	for _, l := range strings.Split(string(e.caKeyPEM), "\n") {
		if len(l) >= 16 && !strings.HasPrefix(l, "-----") {
			keyLines = append(keyLines, l)
		}
	}
	if len(keyLines) == 0 {
		t.Fatal("no key material to look for")
	}
	for where, out := range outputs {
		for _, canary := range append([]string{realKey, "PRIVATE KEY", inspectAdmin, e.token}, keyLines...) {
			if strings.Contains(out, canary) {
				t.Errorf("%s contains %q", where, canary)
			}
		}
	}
}
