package forward

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// baseConfig has one integration per rollout mode plus one without a
// proxy block. $VPORT is the TLS vendor's port, $PPORT the plain vendor's.
//
//   - vendor (enforce): billing holds a route; its allowlist also names
//     hosts whose DNS answers are denied addresses.
//   - maps (no proxy block): mapsonly holds a route.
//   - reporting (report): support is a connect_caller.
//   - legacy (open): ops is a connect_caller; no address exceptions.
const baseConfig = `
version: 1
callers:
  billing: {tokens: ["$HASH_billing"]}
  support: {tokens: ["$HASH_support"]}
  ops: {tokens: ["$HASH_ops"]}
  mapsonly: {tokens: ["$HASH_mapsonly"]}
  nobody: {tokens: ["$HASH_nobody"]}
integrations:
  vendor:
    upstream: https://vendor.test:$VPORT
    egress:
      allow: ["vendor.test:$VPORT", "plain.test:$PPORT", "internal.test:$VPORT", "meta.test:$VPORT", "loop.test:$VPORT",
              "mapped.test:$VPORT", "nat64.test:$VPORT", "mixed.test:$VPORT", "nxdomain.test:$VPORT"]
      allow_cidrs: ["127.0.0.1/32"]
    routes:
      - {method: GET, path: "/v1/things", callers: [billing]}
    proxy: {mode: enforce}
  maps:
    upstream: https://maps.test:$VPORT
    egress: {allow: ["maps.test:$VPORT"], allow_cidrs: ["127.0.0.1/32"]}
    routes:
      - {method: GET, path: "/v1/tiles", callers: [mapsonly]}
  reporting:
    upstream: https://report.test:$VPORT
    egress: {allow: ["report.test:$VPORT"], allow_cidrs: ["127.0.0.1/32"]}
    proxy: {mode: report, connect_callers: [support]}
  legacy:
    upstream: https://legacy.test:443
    egress: {allow: ["legacy.test:443"]}
    proxy: {mode: open, connect_callers: [ops]}
`

// testRecords is the fake DNS zone of every test.
var testRecords = map[string][]netip.Addr{
	"vendor.test":   {netip.MustParseAddr("127.0.0.1")},
	"plain.test":    {netip.MustParseAddr("127.0.0.1")},
	"maps.test":     {netip.MustParseAddr("127.0.0.1")},
	"report.test":   {netip.MustParseAddr("127.0.0.1")},
	"other.test":    {netip.MustParseAddr("127.0.0.1")},
	"internal.test": {netip.MustParseAddr("10.0.0.7")},
	"meta.test":     {netip.MustParseAddr("169.254.169.254")},
	"loop.test":     {netip.MustParseAddr("127.0.0.2")},
	"mapped.test":   {netip.MustParseAddr("::ffff:127.0.0.2")},
	"nat64.test":    {netip.MustParseAddr("64:ff9b::7f00:2")},
	"mixed.test":    {netip.MustParseAddr("10.0.0.7"), netip.MustParseAddr("fd00::7")},
	"self.test":     {netip.MustParseAddr("127.0.0.1")},
}

// env is a running proxy with a TLS vendor and a plain vendor.
type env struct {
	*fixture
	tlsVendor, plainVendor *vendor
}

func newEnv(t *testing.T, tmpl string, extra map[string]string) *env {
	t.Helper()
	pki := newPKI(t)
	e := &env{tlsVendor: startVendor(t, pki, true), plainVendor: startVendor(t, pki, false)}
	vars := map[string]string{"$VPORT": e.tlsVendor.port, "$PPORT": e.plainVendor.port}
	for k, v := range extra {
		vars[k] = v
	}
	e.fixture = newFixture(t, pki, startDNS(t, testRecords), tmpl, vars)
	return e
}

func TestConnectAllowedHostWithUnmodifiedClient(t *testing.T) {
	e := newEnv(t, baseConfig, nil)
	resp, err := e.client("billing").Get("https://vendor.test:" + e.tlsVendor.port + "/v1/things")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"vendor":"ok"`) {
		t.Fatalf("status %d body %s", resp.StatusCode, body)
	}

	target := "vendor.test:" + e.tlsVendor.port
	line := e.waitLog(t, target)
	want := map[string]any{
		KeyKind: "connect", "caller": "billing", "auth": "token", "integration": "vendor",
		KeyDecision: "allow", "status": float64(200), KeyCloseReason: CloseEOF,
		KeyRemoteAddr: "127.0.0.1:" + e.tlsVendor.port,
	}
	got := map[string]any{}
	for k := range want {
		got[k] = line[k]
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("tunnel log line (-want +got):\n%s", d)
	}
	// A TLS handshake and one request/response went both ways.
	if in, out := line["bytes_in"].(float64), line["bytes_out"].(float64); in < 200 || out < 500 {
		t.Errorf("bytes_in %v, bytes_out %v: want the TLS session's bytes counted", in, out)
	}
	if _, ok := line["duration_ms"]; !ok {
		t.Error("no duration_ms in the tunnel line")
	}
	if got := metricValue(e.metrics.Requests.WithLabelValues("connect", "vendor", "billing", "allow", "")); got != 1 {
		t.Errorf("portcullis_proxy_requests_total{allow} = %v, want 1", got)
	}
	if got := metricValue(e.metrics.Closed.WithLabelValues("vendor", CloseEOF)); got != 1 {
		t.Errorf("portcullis_proxy_tunnels_closed_total{eof} = %v, want 1", got)
	}
	if got := metricValue(e.metrics.Active.WithLabelValues("vendor", "billing")); got != 0 {
		t.Errorf("active tunnels after close = %v, want 0", got)
	}
	if strings.Contains(e.logs.String(), e.tokens["billing"]) {
		t.Error("the caller's token appears in the logs")
	}
}

func TestConnectRefusals(t *testing.T) {
	e := newEnv(t, baseConfig, nil)
	vp := e.tlsVendor.port
	tests := []struct {
		name     string
		caller   string // token owner; "" sends no Proxy-Authorization
		auth     string // overrides the Proxy-Authorization value
		target   string
		status   int
		code     string
		decision string
	}{
		{name: "allowed-host", caller: "billing", target: "vendor.test:" + vp, status: 200},
		{name: "allowed-host-upper-case-trailing-dot", caller: "billing", target: "VENDOR.test.:" + vp, status: 200},
		{name: "bearer-token", auth: "Bearer " + "$billing", target: "vendor.test:" + vp, status: 200},
		{name: "denied-host", caller: "billing", target: "other.test:" + vp, status: 403, code: "egress_denied", decision: "deny"},
		{name: "denied-port", caller: "billing", target: "vendor.test:22", status: 403, code: "egress_denied", decision: "deny"},
		{name: "host-of-another-callers-integration", caller: "billing", target: "report.test:" + vp, status: 403, code: "route_not_allowed", decision: "deny"},
		{name: "integration-without-proxy-block", caller: "mapsonly", target: "maps.test:" + vp, status: 403, code: "route_not_allowed", decision: "deny"},
		{name: "caller-without-routes", caller: "nobody", target: "vendor.test:" + vp, status: 403, code: "route_not_allowed", decision: "deny"},
		{name: "no-credentials", target: "vendor.test:" + vp, status: 407, code: "unauthenticated"},
		{name: "wrong-token", auth: basic("billing", "pcs_wrong"), target: "vendor.test:" + vp, status: 407, code: "unauthenticated"},
		{name: "token-of-another-caller", auth: basic("billing", "$support"), target: "vendor.test:" + vp, status: 407, code: "unauthenticated"},
		{name: "unknown-scheme", auth: "Digest x", target: "vendor.test:" + vp, status: 407, code: "unauthenticated"},
		{name: "malformed-target-unauthenticated", target: "vendor.test", status: 407, code: "unauthenticated"},
		{name: "malformed-target", caller: "billing", target: "vendor.test", status: 400, code: "bad_request_path"},
		{name: "ambiguous-numeric-target", caller: "billing", target: "2130706433:" + vp, status: 400, code: "bad_request_path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			auth := tt.auth
			if tt.caller != "" {
				auth = basic(tt.caller, e.tokens[tt.caller])
			}
			auth = strings.NewReplacer("$billing", e.tokens["billing"], "$support", e.tokens["support"]).Replace(auth)
			res := e.connect(t, tt.target, auth)
			if res.resp.StatusCode != tt.status || res.code() != tt.code {
				t.Fatalf("status %d code %q, want %d %q; body %s", res.resp.StatusCode, res.code(), tt.status, tt.code, res.body)
			}
			if tt.status == 407 {
				if got := res.resp.Header.Get("Proxy-Authenticate"); got != `Basic realm="portcullis"` {
					t.Errorf("Proxy-Authenticate = %q", got)
				}
			}
			if tt.status != 200 {
				if ct := res.resp.Header.Get("Content-Type"); ct != "application/problem+json" {
					t.Errorf("Content-Type = %q, want application/problem+json", ct)
				}
				if !strings.Contains(string(res.body), `"code":"`+tt.code+`"`) {
					t.Errorf("body does not carry the code: %s", res.body)
				}
				if strings.Contains(string(res.body), e.tokens["billing"]) {
					t.Error("the refusal echoes the caller's token")
				}
			}
			if tt.decision != "" {
				metric := e.metrics.Requests.WithLabelValues("connect", "", tt.caller, tt.decision, tt.code)
				if metricValue(metric) < 1 {
					t.Errorf("no portcullis_proxy_requests_total{caller=%s,decision=%s,code=%s}", tt.caller, tt.decision, tt.code)
				}
			}
		})
	}
}

func TestPlainHTTPAbsoluteForm(t *testing.T) {
	e := newEnv(t, baseConfig, nil)
	target := "plain.test:" + e.plainVendor.port
	req, _ := http.NewRequest(http.MethodGet, "http://"+target+"/v1/things?x=1", nil)
	req.Header.Set("Proxy-Connection", "keep-alive")
	req.Header.Set("X-Caller-Header", "kept")
	req.Header.Set("Authorization", "Bearer canary-caller-credential")
	req.Header.Set("Cookie", "session=canary-caller-cookie")
	resp, err := e.client("billing").Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"path":"/v1/things"`) {
		t.Fatalf("status %d body %s", resp.StatusCode, body)
	}
	hdr, reqLine := e.plainVendor.last()
	if reqLine != target+" /v1/things?x=1" {
		t.Errorf("vendor got %q", reqLine)
	}
	for _, h := range []string{"Proxy-Authorization", "Proxy-Connection", "X-Forwarded-For", "Authorization", "Cookie"} {
		if v := hdr.Get(h); v != "" {
			t.Errorf("vendor received %s: %q", h, v)
		}
	}
	if hdr.Get("X-Caller-Header") != "kept" {
		t.Error("an end-to-end header was dropped")
	}
	line := e.waitLog(t, target)
	if line[KeyKind] != "http" || line["status"] != float64(200) || line["integration"] != "vendor" {
		t.Errorf("log line %v", line)
	}

	t.Run("denied-host", func(t *testing.T) {
		resp, err := e.client("billing").Get("http://other.test:" + e.plainVendor.port + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 403 || resp.Header.Get("X-Portcullis-Error") != "egress_denied" {
			t.Errorf("status %d code %q", resp.StatusCode, resp.Header.Get("X-Portcullis-Error"))
		}
	})
	t.Run("unauthenticated", func(t *testing.T) {
		c := e.client("billing")
		c.Transport.(*http.Transport).Proxy = http.ProxyURL(mustURL(t, "http://"+e.addr))
		resp, err := c.Get("http://" + target + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 407 || resp.Header.Get("Proxy-Authenticate") == "" {
			t.Errorf("status %d, Proxy-Authenticate %q", resp.StatusCode, resp.Header.Get("Proxy-Authenticate"))
		}
	})
	t.Run("dns-answer-denied", func(t *testing.T) {
		resp, err := e.client("billing").Get("http://internal.test:" + e.tlsVendor.port + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 403 || resp.Header.Get("X-Portcullis-Error") != "egress_denied" {
			t.Errorf("status %d code %q", resp.StatusCode, resp.Header.Get("X-Portcullis-Error"))
		}
	})
}

func TestIsProxyRequest(t *testing.T) {
	tests := []struct {
		name, method, uri string
		want              bool
	}{
		{"connect", "CONNECT", "api.example.com:443", true},
		{"absolute-form", "GET", "http://api.example.com/x", true},
		{"origin-form", "GET", "/payments/v1/charges", false},
		{"asterisk-form", "OPTIONS", "*", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &http.Request{Method: tt.method, RequestURI: tt.uri}
			if got := IsProxyRequest(r); got != tt.want {
				t.Errorf("IsProxyRequest(%s %s) = %v", tt.method, tt.uri, got)
			}
		})
	}
}

// TestConnectOverTLSCallerListener: with server.tls the caller listener
// hands the proxy a *tls.Conn, so the tunnel copies through buffers
// instead of splice(2); an HTTPS_PROXY=https://… client must work the same.
func TestConnectOverTLSCallerListener(t *testing.T) {
	e := newEnv(t, baseConfig, nil)
	tlsSrv := httptest.NewUnstartedServer(e.srv.Config.Handler)
	tlsSrv.StartTLS()
	t.Cleanup(tlsSrv.Close)
	pool := e.pki.pool.Clone()
	pool.AddCert(tlsSrv.Certificate())
	proxyURL := mustURL(t, "https://"+tlsSrv.Listener.Addr().String())
	proxyURL.User = url.UserPassword("billing", e.tokens["billing"])
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		Proxy:           http.ProxyURL(proxyURL),
		TLSClientConfig: &tls.Config{RootCAs: pool},
	}}
	resp, err := c.Get("https://vendor.test:" + e.tlsVendor.port + "/v1/things")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"vendor":"ok"`) {
		t.Fatalf("status %d body %s", resp.StatusCode, body)
	}
	c.CloseIdleConnections()
	if line := e.waitLog(t, "vendor.test:"+e.tlsVendor.port); line[KeyCloseReason] != CloseEOF || line["bytes_out"].(float64) < 500 {
		t.Errorf("line %v", line)
	}
}
