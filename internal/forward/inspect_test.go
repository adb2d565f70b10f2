package forward

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/conf"
	"github.com/portcullis-dev/portcullis/internal/egress"
	"github.com/portcullis-dev/portcullis/internal/identity"
	"github.com/portcullis-dev/portcullis/internal/mint"
	"github.com/portcullis-dev/portcullis/internal/observe"
)

func TestCheckSNI(t *testing.T) {
	tests := []struct {
		name, sni, host string
		ok              bool
	}{
		{"same-name", "vendor.test", "vendor.test", true},
		{"case", "Vendor.TEST", "vendor.test", true},
		{"trailing-dot", "vendor.test.", "vendor.test", true},
		{"other-name", "other.test", "vendor.test", false},
		{"suffix", "evil-vendor.test", "vendor.test", false},
		{"subdomain", "a.vendor.test", "vendor.test", false},
		{"two-dots", "vendor.test..", "vendor.test", false},
		{"no-sni-for-name", "", "vendor.test", false},
		{"no-sni-for-ip", "", "127.0.0.1", true},
		{"ip-sni-for-ip", "127.0.0.1", "127.0.0.1", true},
		{"other-ip", "127.0.0.2", "127.0.0.1", false},
		{"name-for-ip", "vendor.test", "127.0.0.1", false},
		{"ip-for-name", "127.0.0.1", "vendor.test", false},
		{"ipv6", "[2001:db8::1]", "2001:db8::1", true},
		{"bad-chars", "vendor.test\x00", "vendor.test", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkSNI(tt.sni, tt.host)
			if (err == nil) != tt.ok {
				t.Fatalf("checkSNI(%q, %q) = %v, want ok=%v", tt.sni, tt.host, err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrSNI) {
				t.Errorf("error %v does not wrap ErrSNI", err)
			}
		})
	}
}

func TestInspectTarget(t *testing.T) {
	tests := []struct {
		name, upstream, want string
	}{
		{"default-port", "https://API.Vendor.test", "api.vendor.test:443"},
		{"port-and-path", "https://api.vendor.test:8443/v2", "api.vendor.test:8443"},
		{"ipv4", "https://127.0.0.1:9443", "127.0.0.1:9443"},
		{"ipv6", "https://[2001:db8::1]", "[2001:db8::1]:443"},
		{"plain-http", "http://api.vendor.test", ""},
		{"numeric-name", "https://2130706433", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := inspectTarget(tt.upstream)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("inspectTarget(%q) = %s, want an error", tt.upstream, got.addr())
				}
				return
			}
			if err != nil || got.addr() != tt.want {
				t.Fatalf("inspectTarget(%q) = %s, %v, want %s", tt.upstream, got.addr(), err, tt.want)
			}
		})
	}
}

// inspectFixture is a Proxy with one inspect integration per upstream,
// served on a loopback listener, whose tunneled requests are answered by a
// handler that echoes what it learnt of the tunnel.
type inspectFixture struct {
	addr, token string
	pool        *x509.CertPool
	logs        *syncBuffer
	proxy       *Proxy
}

func newInspectFixture(t *testing.T, spec ProxySpec, upstreams map[string]string) *inspectFixture {
	t.Helper()
	certPEM, keyPEM, err := mint.NewCA(mint.CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{}
	ins := map[string]Integration{}
	for name, up := range upstreams {
		tg, err := inspectTarget(up)
		if err != nil {
			t.Fatal(err)
		}
		allowed[tg.host] = true
		px := spec
		px.Inspect = true
		ins[name] = Integration{Proxy: &px, Egress: egress.Spec{Allow: []string{tg.addr()}, AllowCIDRs: []string{"127.0.0.1/32"}}, RouteCallers: []string{"billing"}, Upstream: up}
	}
	ca, err := mint.New(certPEM, keyPEM, mint.Options{Allowed: func(h string) bool { return allowed[h] }})
	if err != nil {
		t.Fatal(err)
	}
	tok, hash, err := identity.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	auth, err := identity.New(map[string]*identity.Caller{"billing": {Tokens: []string{hash}}})
	if err != nil {
		t.Fatal(err)
	}
	f := &inspectFixture{token: tok, pool: x509.NewCertPool(), logs: &syncBuffer{}}
	f.pool.AppendCertsFromPEM(certPEM)
	f.proxy, err = New(ins, auth, Options{
		Logger: observe.NewLogger(f.logs, "debug", "json", nil),
		Inspect: &Inspect{Leaf: ca.Leaf, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ti, ok := TunnelFrom(r.Context())
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"ok": ok, "tunnel": ti, "path": r.URL.Path, "host": r.Host,
				"proto": r.Proto, "authorization": r.Header.Get("Authorization")})
		})},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(f.proxy.ServeHTTP))
	f.addr = srv.Listener.Addr().String()
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = f.proxy.Shutdown(ctx)
	})
	return f
}

// connect opens an authenticated tunnel to target and returns the
// connection after the answer, with the answer's status and error code.
func (f *inspectFixture) connect(t *testing.T, target string) (net.Conn, int, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", f.addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\nProxy-Authorization: %s\r\n\r\n", target, target, basic("billing", f.token))
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Time{})
	if resp.StatusCode == 200 && br.Buffered() > 0 {
		t.Fatal("bytes after the CONNECT answer")
	}
	return c, resp.StatusCode, resp.Header.Get("X-Portcullis-Error")
}

// client is an HTTP client whose connections are tunnels to target with
// the given SNI; it offers h2 and http/1.1.
func (f *inspectFixture) client(t *testing.T, target, sni string) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialTLSContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			c, status, _ := f.connect(t, target)
			if status != 200 {
				return nil, fmt.Errorf("CONNECT: %d", status)
			}
			tc := tls.Client(c, &tls.Config{RootCAs: f.pool, ServerName: sni, NextProtos: []string{"h2", "http/1.1"}})
			if err := tc.HandshakeContext(ctx); err != nil {
				return nil, err
			}
			if p := tc.ConnectionState().NegotiatedProtocol; p != "http/1.1" {
				return nil, fmt.Errorf("ALPN %q, want http/1.1", p)
			}
			return tc, nil
		},
	}}
}

func (f *inspectFixture) get(t *testing.T, c *http.Client, url string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer sk_dummy")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func (f *inspectFixture) tunnelLine(t *testing.T) map[string]any {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, l := range strings.Split(f.logs.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "tunnel closed" {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no tunnel line:\n%s", f.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestInspectServesInsideTunnel: two keep-alive requests in one
// inspected tunnel reach the handler with the tunnel's caller, integration
// and host; ALPN is http/1.1 although the client offers h2; the tunnel has
// one line, with inspect and the request count.
func TestInspectServesInsideTunnel(t *testing.T) {
	f := newInspectFixture(t, ProxySpec{}, map[string]string{"vendor": "https://vendor.test"})
	c := f.client(t, "vendor.test:443", "vendor.test")
	for i := range 2 {
		m := f.get(t, c, "https://vendor.test/v1/things")
		tun, _ := m["tunnel"].(map[string]any)
		if m["ok"] != true || tun["Caller"] != "billing" || tun["Integration"] != "vendor" || tun["Host"] != "vendor.test" || tun["Port"] != "443" || m["proto"] != "HTTP/1.1" {
			t.Fatalf("request %d: %v", i, m)
		}
	}
	c.CloseIdleConnections()
	line := f.tunnelLine(t)
	if line["inspect"] != true || line["requests"] != float64(2) || line["close_reason"] != CloseEOF || line["caller"] != "billing" {
		t.Errorf("tunnel line %v", line)
	}
}

// TestInspectIPLiteral: a tunnel to an IP-literal upstream is inspected;
// clients send no SNI for an IP, and the leaf names the IP.
func TestInspectIPLiteral(t *testing.T) {
	f := newInspectFixture(t, ProxySpec{}, map[string]string{"vendor": "https://127.0.0.1:9"})
	c := f.client(t, "127.0.0.1:9", "127.0.0.1")
	if m := f.get(t, c, "https://127.0.0.1:9/v1/x"); m["host"] != "127.0.0.1:9" {
		t.Fatalf("%v", m)
	}
}

// TestInspectRefusesOtherTargets: an inspect integration's tunnels reach
// only its upstream: another listed host:port is refused before the 200.
func TestInspectRefusesOtherTargets(t *testing.T) {
	f := newInspectFixture(t, ProxySpec{}, map[string]string{"vendor": "https://vendor.test"})
	// List a second host on the integration: still not inspectable.
	f.proxy.decider.integs[0].policy, _ = egress.NewPolicy(egress.Config{Allow: []string{"vendor.test:443", "files.vendor.test:443"}})
	_, status, code := f.connect(t, "files.vendor.test:443")
	if status != http.StatusForbidden || code != "egress_denied" {
		t.Fatalf("CONNECT files.vendor.test:443: %d %s, want 403 egress_denied", status, code)
	}
}

// TestInspectSNIMismatchLogged: a handshake with another SNI is refused,
// and the tunnel's line says tls_handshake with the cause.
func TestInspectSNIMismatchLogged(t *testing.T) {
	f := newInspectFixture(t, ProxySpec{}, map[string]string{"vendor": "https://vendor.test"})
	conn, status, _ := f.connect(t, "vendor.test:443")
	if status != 200 {
		t.Fatal(status)
	}
	tc := tls.Client(conn, &tls.Config{RootCAs: f.pool, ServerName: "other.test"})
	if err := tc.Handshake(); err == nil {
		t.Fatal("handshake with SNI other.test succeeded")
	}
	line := f.tunnelLine(t)
	if line["close_reason"] != CloseTLS || !strings.Contains(fmt.Sprint(line["cause"]), "SNI") {
		t.Errorf("tunnel line %v", line)
	}
}

// TestInspectMaxLifetime: max_lifetime still ends an inspected tunnel that
// keeps its connection alive.
func TestInspectMaxLifetime(t *testing.T) {
	f := newInspectFixture(t, ProxySpec{MaxLifetime: conf.Duration{D: 300 * time.Millisecond}}, map[string]string{"vendor": "https://vendor.test"})
	c := f.client(t, "vendor.test:443", "vendor.test")
	f.get(t, c, "https://vendor.test/v1/things")
	line := f.tunnelLine(t) // waits for the lifetime to pass
	if line["close_reason"] != CloseLifetime || line["requests"] != float64(1) {
		t.Errorf("tunnel line %v", line)
	}
}

// TestInspectShutdown: Shutdown ends open inspected tunnels when its
// context is done.
func TestInspectShutdown(t *testing.T) {
	f := newInspectFixture(t, ProxySpec{}, map[string]string{"vendor": "https://vendor.test"})
	c := f.client(t, "vendor.test:443", "vendor.test")
	f.get(t, c, "https://vendor.test/v1/things")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := f.proxy.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown: %v, want its deadline (the tunnel was kept alive)", err)
	}
	if line := f.tunnelLine(t); line["close_reason"] != CloseShutdown {
		t.Errorf("tunnel line %v", line)
	}
}

// TestInspectIdleTimeout: idle_timeout closes an inspected tunnel that
// carries no request for that long, and the line says so.
func TestInspectIdleTimeout(t *testing.T) {
	f := newInspectFixture(t, ProxySpec{IdleTimeout: conf.Duration{D: 200 * time.Millisecond}}, map[string]string{"vendor": "https://vendor.test"})
	c := f.client(t, "vendor.test:443", "vendor.test")
	f.get(t, c, "https://vendor.test/v1/things")
	if line := f.tunnelLine(t); line["close_reason"] != CloseIdle || line["requests"] != float64(1) {
		t.Errorf("tunnel line %v", line)
	}
}

// TestInspectShutdownDuringHandshake: a tunnel whose client has not sent
// its ClientHello yet ends at Shutdown's deadline too.
func TestInspectShutdownDuringHandshake(t *testing.T) {
	f := newInspectFixture(t, ProxySpec{}, map[string]string{"vendor": "https://vendor.test"})
	if _, status, _ := f.connect(t, "vendor.test:443"); status != 200 {
		t.Fatal(status)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := f.proxy.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown: %v, want its deadline", err)
	}
	if line := f.tunnelLine(t); line["close_reason"] != CloseShutdown {
		t.Errorf("tunnel line %v", line)
	}
}
