package forward

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
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/clock"
	"github.com/portcullis-dev/portcullis/internal/conf"
	"github.com/portcullis-dev/portcullis/internal/egress"
	"github.com/portcullis-dev/portcullis/internal/identity"
	"github.com/portcullis-dev/portcullis/internal/observe"
	"github.com/portcullis-dev/portcullis/internal/testdns"
	"github.com/portcullis-dev/portcullis/internal/testpki"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.yaml.in/yaml/v3"
	"golang.org/x/net/http/httpproxy"
)

// ---- fake DNS -------------------------------------------------------------

// startDNS points names at any address, including ones that must never
// be connected to (NXDOMAIN for unknown names).
func startDNS(t *testing.T, records map[string][]netip.Addr) *net.Resolver {
	return testdns.Start(t, records)
}

// ---- certificates and vendors ---------------------------------------------

// testPKI is a throwaway CA and a vendor certificate for vendor.test,
// localhost and 127.0.0.1.
type testPKI struct {
	pool   *x509.CertPool
	cert   tls.Certificate
	caFile string
}

func newPKI(t *testing.T) *testPKI {
	t.Helper()
	ca := testpki.New(t, "portcullis test CA", "vendor.test", "other.test", "report.test", "localhost")
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, ca.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return &testPKI{pool: ca.Pool(), cert: ca.Leaf, caFile: caFile}
}

// vendor is a TLS httptest server on 127.0.0.1 that counts the TCP
// connections it accepts and records the last request's headers.
type vendor struct {
	*httptest.Server
	port    string
	conns   atomic.Int64
	mu      sync.Mutex
	lastHdr http.Header
	lastReq string
}

func startVendor(t *testing.T, pki *testPKI, useTLS bool) *vendor {
	t.Helper()
	v := &vendor{}
	v.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v.mu.Lock()
		v.lastHdr, v.lastReq = r.Header.Clone(), r.Host+" "+r.URL.RequestURI()
		v.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"vendor":"ok","path":%q}`, r.URL.Path)
	}))
	v.Config.ErrorLog = log.New(io.Discard, "", 0) // tunnels that never handshake
	v.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			v.conns.Add(1)
		}
	}
	if useTLS {
		v.TLS = &tls.Config{Certificates: []tls.Certificate{pki.cert}}
		v.StartTLS()
	} else {
		v.Start()
	}
	t.Cleanup(v.Close)
	_, v.port, _ = net.SplitHostPort(v.Listener.Addr().String())
	return v
}

func (v *vendor) last() (http.Header, string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.lastHdr, v.lastReq
}

// startEcho is a TCP echo server on 127.0.0.1; it returns its port.
func startEcho(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); _, _ = io.Copy(c, c); c.Close() }()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// ---- the proxy under test -------------------------------------------------

// syncBuffer collects log output from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// fixture is a Proxy served on a real loopback listener.
type fixture struct {
	proxy   *Proxy
	srv     *httptest.Server
	addr    string // proxy host:port
	tokens  map[string]string
	logs    *syncBuffer
	clock   *clock.Fake
	reg     *prometheus.Registry
	metrics *Metrics
	pki     *testPKI
}

// callers every fixture config declares; the template refers to their
// token hashes as $HASH_<name>.
var testCallers = []string{"billing", "support", "ops", "mapsonly", "nobody"}

// newFixture builds the proxy from a YAML template. Placeholders: $HASH_x
// (caller x's token hash) and those in vars.
func newFixture(t *testing.T, pki *testPKI, resolver *net.Resolver, tmpl string, vars map[string]string) *fixture {
	t.Helper()
	f := &fixture{tokens: map[string]string{}, logs: &syncBuffer{}, clock: clock.NewFake(time.Unix(1_800_000_000, 0)), pki: pki}
	var pairs []string
	for _, c := range testCallers {
		tok, hash, err := identity.NewToken()
		if err != nil {
			t.Fatal(err)
		}
		f.tokens[c] = tok
		pairs = append(pairs, "$HASH_"+c, hash)
	}
	for k, v := range vars {
		pairs = append(pairs, k, v)
	}
	text := strings.NewReplacer(pairs...).Replace(tmpl)
	callers, ins, err := parseTestConfig(text)
	if err != nil {
		t.Fatalf("config: %v\n%s", err, text)
	}
	auth, err := identity.New(callers)
	if err != nil {
		t.Fatal(err)
	}
	f.reg = prometheus.NewRegistry()
	f.metrics = NewMetrics(f.reg)
	f.srv = httptest.NewUnstartedServer(nil)
	f.addr = f.srv.Listener.Addr().String()
	f.proxy, err = New(ins, auth, Options{
		Logger:    observe.NewLogger(f.logs, "debug", "json", nil),
		Metrics:   f.metrics,
		Resolver:  resolver,
		SelfAddrs: func() []string { return []string{f.addr} },
		Clock:     f.clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !IsProxyRequest(r) {
			http.NotFound(w, r)
			return
		}
		f.proxy.ServeHTTP(w, r)
	})
	f.srv.Start()
	t.Cleanup(func() {
		f.srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = f.proxy.Shutdown(ctx)
		f.proxy.Close()
	})
	return f
}

// proxyURL is the HTTPS_PROXY value for a caller: http://caller:token@host:port.
func (f *fixture) proxyURL(caller, token string) string {
	return (&url.URL{Scheme: "http", User: url.UserPassword(caller, token), Host: f.addr}).String()
}

// client is an unmodified http.Client whose only configuration is the
// HTTPS_PROXY/HTTP_PROXY environment (read the way net/http reads it) and
// trust in the test CA.
func (f *fixture) client(caller string) *http.Client {
	env := &httpproxy.Config{HTTPSProxy: f.proxyURL(caller, f.tokens[caller]), HTTPProxy: f.proxyURL(caller, f.tokens[caller])}
	pf := env.ProxyFunc()
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		Proxy:             func(r *http.Request) (*url.URL, error) { return pf(r.URL) },
		TLSClientConfig:   &tls.Config{RootCAs: f.pki.pool},
		DisableKeepAlives: true,
	}}
}

// basic is a Proxy-Authorization value.
func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// connectResult is the proxy's answer to a raw CONNECT.
type connectResult struct {
	resp *http.Response
	body []byte
	conn net.Conn      // open after a 200
	br   *bufio.Reader // reads tunnel bytes after a 200
}

// connect sends "CONNECT target" with the given Proxy-Authorization
// (none when empty) on a fresh connection.
func (f *fixture) connect(t *testing.T, target, proxyAuth string) connectResult {
	t.Helper()
	c, err := net.DialTimeout("tcp", f.addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	req := "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n"
	if proxyAuth != "" {
		req += "Proxy-Authorization: " + proxyAuth + "\r\n"
	}
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		c.Close()
		t.Fatalf("CONNECT %s: %v", target, err)
	}
	_ = c.SetReadDeadline(time.Time{})
	res := connectResult{resp: resp}
	if resp.StatusCode == http.StatusOK {
		res.conn, res.br = c, br
		t.Cleanup(func() { c.Close() })
		return res
	}
	res.body, _ = io.ReadAll(resp.Body)
	c.Close()
	return res
}

// code is the X-Portcullis-Error of a refused CONNECT.
func (r connectResult) code() string { return r.resp.Header.Get("X-Portcullis-Error") }

// logLines returns the JSON log lines whose message is one of msgs.
func (f *fixture) logLines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(f.logs.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if _, ok := m[KeyKind]; ok {
			out = append(out, m)
		}
	}
	return out
}

// waitLog waits for the proxy's line about target (tunnel lines are
// written when the tunnel closes).
func (f *fixture) waitLog(t *testing.T, target string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, m := range f.logLines(t) {
			if m[KeyTarget] == target {
				return m
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no log line for %s in:\n%s", target, f.logs.String())
	return nil
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// metricValue reads a counter or gauge child.
func metricValue(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		return -1
	}
	switch {
	case d.Counter != nil:
		return d.Counter.GetValue()
	case d.Gauge != nil:
		return d.Gauge.GetValue()
	}
	return -1
}

// parseTestConfig reads the parts of a config file the forward proxy
// takes: the callers and, of each integration, its proxy, egress and
// timeouts blocks and its routes' callers. (The config package imports
// this one for ProxySpec, so its tests cannot use config.Parse.) Every
// Spec is provisioned and validated as config.Load does; other keys are
// ignored.
func parseTestConfig(text string) (map[string]*identity.Caller, map[string]Integration, error) {
	var file struct {
		Callers      map[string]*identity.Caller `yaml:"callers"`
		Integrations map[string]struct {
			Proxy    *ProxySpec      `yaml:"proxy"`
			Egress   egress.Spec     `yaml:"egress"`
			Timeouts egress.Timeouts `yaml:"timeouts"`
			Routes   []struct {
				Callers []string `yaml:"callers"`
			} `yaml:"routes"`
		} `yaml:"integrations"`
	}
	if err := yaml.Unmarshal([]byte(text), &file); err != nil {
		return nil, nil, err
	}
	ins := map[string]Integration{}
	for name, in := range file.Integrations {
		r := conf.NewReport("integrations." + name)
		in.Proxy.Provision()
		in.Proxy.Validate(r.At("proxy"))
		in.Egress.Provision()
		in.Egress.Validate(r.At("egress"))
		in.Timeouts.Provision()
		if err := r.Err(); err != nil {
			return nil, nil, err
		}
		fi := Integration{Proxy: in.Proxy, Egress: in.Egress, Timeouts: in.Timeouts}
		for _, rt := range in.Routes {
			fi.RouteCallers = append(fi.RouteCallers, rt.Callers...)
		}
		ins[name] = fi
	}
	return file.Callers, ins, nil
}
