package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/internal/identity"
	"github.com/portcullis-dev/portcullis/internal/observe"
	"github.com/portcullis-dev/portcullis/internal/problem"
)

// vendor is an httptest server playing a vendor; it records what it got.
type vendor struct {
	*httptest.Server
	got chan *http.Request
}

func newVendor(t *testing.T, h http.HandlerFunc) *vendor {
	t.Helper()
	v := &vendor{got: make(chan *http.Request, 100)}
	v.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r2 := r.Clone(r.Context())
		r2.Body = io.NopCloser(bytes.NewReader(body))
		select {
		case v.got <- r2:
		default:
		}
		if h != nil {
			h(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"path":%q}`, r.URL.EscapedPath())
	}))
	t.Cleanup(v.Close)
	return v
}

type fixture struct {
	gw      *Gateway
	srv     *httptest.Server
	billing string
	support string
	logs    *bytes.Buffer
}

// newFixture builds a gateway in front of upstream from a YAML config
// template; %[1]s is the upstream URL, %[2]s its host:port, %[3]s and %[4]s
// the token hashes of billing and support.
func newFixture(t *testing.T, upstream string, yamlTmpl string) *fixture {
	t.Helper()
	return newFixtureWith(t, upstream, yamlTmpl, Options{})
}

func newFixtureWith(t *testing.T, upstream string, yamlTmpl string, o Options) *fixture {
	t.Helper()
	f := newGatewayFixture(t, upstream, yamlTmpl, o)
	f.srv = httptest.NewServer(f.gw)
	t.Cleanup(f.srv.Close)
	return f
}

// newGatewayFixture is newFixtureWith without the listener: do then calls
// the gateway's handler in process (for tests in a synctest bubble).
func newGatewayFixture(t *testing.T, upstream string, yamlTmpl string, o Options) *fixture {
	t.Helper()
	tb, hb, _ := identity.NewToken()
	ts, hs, _ := identity.NewToken()
	hostport := strings.TrimPrefix(strings.TrimPrefix(upstream, "http://"), "https://")
	text := fmt.Sprintf(yamlTmpl, upstream, hostport, hb, hs)
	cfg, _, err := config.Parse("test.yaml", []byte(text))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, text)
	}
	logs := &bytes.Buffer{}
	o.Logger = observe.NewLogger(logs, "debug", "json", nil)
	gw, err := New(cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{gw: gw, billing: tb, support: ts, logs: logs}
}

const baseConfig = `
version: 1
callers:
  billing: {tokens: ["%[3]s"]}
  support: {tokens: ["%[4]s"]}
integrations:
  payments:
    upstream: %[1]s
    egress: {allow: ["%[2]s"], allow_private: true}
    request_headers: [Content-Type, Idempotency-Key, Accept]
    timeouts: {connect: 1s, request: 2s}
    limits: {max_request_bytes: 1KiB, max_response_bytes: 4KiB}
    routes:
      - {method: POST, path: "/v1/charges", callers: [billing]}
      - {method: GET, path: "/v1/charges/{id}", callers: [billing, support]}
      - {method: GET, path: "/v1/big", callers: [billing]}
      - {method: GET, path: "/v1/slow", callers: [billing]}
`

func (f *fixture) do(t *testing.T, method, path, token string, body io.Reader, hdr map[string]string) *http.Response {
	t.Helper()
	if f.srv == nil {
		req := httptest.NewRequest(method, path, body)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		f.gw.ServeHTTP(rec, req)
		return rec.Result()
	}
	req, err := http.NewRequest(method, f.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func problemOf(t *testing.T, resp *http.Response) problem.Body {
	t.Helper()
	var b problem.Body
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want problem+json (status %d)", ct, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&b); err != nil {
		t.Fatal(err)
	}
	if got := resp.Header.Get(problem.HeaderError); got != string(b.Code) {
		t.Errorf("X-Portcullis-Error %q != body code %q", got, b.Code)
	}
	return b
}

func TestAllowedCallStripsCallerHeaders(t *testing.T) {
	v := newVendor(t, nil)
	f := newFixture(t, v.URL, baseConfig)
	resp := f.do(t, "POST", "/payments/v1/charges?amount=5", f.billing, strings.NewReader(`{"a":1}`), map[string]string{
		"Content-Type": "application/json", "Cookie": "session=abc", "X-Internal-Secret": "nope",
		"X-Forwarded-For": "10.1.1.1", "Idempotency-Key": "k1", "X-Request-Id": "caller-id.1",
		"X-HTTP-Method-Override": "DELETE",
	})
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, problemOf(t, resp).Detail)
	}
	if got := resp.Header.Get("X-Request-Id"); got != "caller-id.1" {
		t.Errorf("X-Request-Id echoed = %q", got)
	}
	r := <-v.got
	if r.Method != "POST" || r.URL.Path != "/v1/charges" || r.URL.RawQuery != "amount=5" {
		t.Errorf("vendor got %s %s?%s", r.Method, r.URL.Path, r.URL.RawQuery)
	}
	for _, h := range []string{"Authorization", "Cookie", "X-Internal-Secret", "X-Forwarded-For", "X-Http-Method-Override"} {
		if r.Header.Get(h) != "" {
			t.Errorf("vendor received %s", h)
		}
	}
	if r.Header.Get("Idempotency-Key") != "k1" || r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("allow-listed headers lost: %v", r.Header)
	}
	if r.Header.Get("X-Request-Id") != "caller-id.1" {
		t.Errorf("vendor X-Request-Id = %q", r.Header.Get("X-Request-Id"))
	}
	if b, _ := io.ReadAll(r.Body); string(b) != `{"a":1}` {
		t.Errorf("vendor body = %q", b)
	}
	// One log line, with the route template and not the raw query.
	var line map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(f.logs.Bytes()), &line); err != nil {
		t.Fatalf("log is not one JSON line: %v\n%s", err, f.logs)
	}
	if line["route"] != "/v1/charges" || line["caller"] != "billing" || line["integration"] != "payments" || line["status"] != float64(200) {
		t.Errorf("log line = %v", line)
	}
	if strings.Contains(f.logs.String(), "amount=5") {
		t.Errorf("log holds the query: %s", f.logs)
	}
}

func TestRefusals(t *testing.T) {
	v := newVendor(t, nil)
	f := newFixture(t, v.URL, baseConfig)
	tests := []struct {
		name, method, path string
		token              func(*fixture) string
		wantStatus         int
		wantCode           problem.Code
	}{
		{"unknown-integration", "GET", "/nope/v1/charges/1", (*fixture).billingTok, 404, problem.UnknownIntegration},
		{"no-token", "GET", "/payments/v1/charges/1", nil, 401, problem.Unauthenticated},
		{"wrong-token", "GET", "/payments/v1/charges/1", func(*fixture) string { return "pcs_wrong" }, 401, problem.Unauthenticated},
		{"route-not-allowed-caller", "POST", "/payments/v1/charges", (*fixture).supportTok, 403, problem.RouteNotAllowed},
		{"no-route", "DELETE", "/payments/v1/charges/1", (*fixture).billingTok, 403, problem.RouteNotAllowed},
		{"trailing-slash-is-another-route", "GET", "/payments/v1/charges/1/", (*fixture).billingTok, 403, problem.RouteNotAllowed},
		{"dot-dot", "GET", "/payments/v1/charges/../payouts", (*fixture).billingTok, 400, problem.BadRequestPath},
		{"encoded-slash", "GET", "/payments/v1/charges/1%2F..%2Fpayouts", (*fixture).billingTok, 400, problem.BadRequestPath},
		{"encoded-dot", "GET", "/payments/v1/charges/%2e%2e", (*fixture).billingTok, 400, problem.BadRequestPath},
		{"double-encoded", "GET", "/payments/v1/charges/%252e%252e", (*fixture).billingTok, 400, problem.BadRequestPath},
		{"double-slash", "GET", "/payments/v1//charges/1", (*fixture).billingTok, 400, problem.BadRequestPath},
		{"backslash", "GET", "/payments/v1/charges/1%5c..", (*fixture).billingTok, 400, problem.BadRequestPath},
		{"nul", "GET", "/payments/v1/charges/1%00", (*fixture).billingTok, 400, problem.BadRequestPath},
		{"lower-case-method", "get", "/payments/v1/charges/1", (*fixture).billingTok, 403, problem.RouteNotAllowed},
		{"case-trick", "GET", "/payments/V1/charges/1", (*fixture).billingTok, 403, problem.RouteNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := ""
			if tt.token != nil {
				tok = tt.token(f)
			}
			resp := f.rawDo(t, tt.method, tt.path, tok)
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if b := problemOf(t, resp); b.Code != tt.wantCode || b.RequestID == "" {
				t.Errorf("code = %q (request id %q), want %q", b.Code, b.RequestID, tt.wantCode)
			}
		})
	}
	select {
	case r := <-v.got:
		t.Errorf("vendor was called for a refused request: %s %s", r.Method, r.URL)
	default:
	}
}

func (f *fixture) billingTok() string { return f.billing }
func (f *fixture) supportTok() string { return f.support }

// rawDo sends the request target byte for byte (http.NewRequest would
// normalise some of the tricks under test).
func (f *fixture) rawDo(t *testing.T, method, target, token string) *http.Response {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(f.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	auth := ""
	if token != "" {
		auth = "Authorization: Bearer " + token + "\r\n"
	}
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: gw\r\n%sConnection: close\r\n\r\n", method, target, auth)
	resp, err := http.ReadResponse(bufioReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestUpstreamFailures(t *testing.T) {
	stalledBodyCut := make(chan bool, 1)
	slow := newVendor(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/slow":
			select {
			case <-time.After(5 * time.Second):
			case <-r.Context().Done():
			}
		case "/v1/charges/stalled-body":
			// Headers and a first chunk, then nothing: timeouts.request
			// (2s) bounds the body too, so the gateway drops this call
			// before the vendor gives up on its own.
			w.Write([]byte("first chunk"))
			w.(http.Flusher).Flush()
			select {
			case <-time.After(8 * time.Second):
				stalledBodyCut <- false
			case <-r.Context().Done():
				stalledBodyCut <- true
			}
		case "/v1/big":
			if r.URL.Query().Get("stream") == "" {
				w.Header().Set("Content-Length", "8192")
			}
			w.Write(bytes.Repeat([]byte("x"), 8<<10))
		default:
			w.WriteHeader(200)
		}
	})
	f := newFixture(t, slow.URL, baseConfig)
	t.Run("timeout", func(t *testing.T) {
		start := time.Now()
		resp := f.do(t, "GET", "/payments/v1/slow", f.billing, nil, nil)
		if resp.StatusCode != 504 || problemOf(t, resp).Code != problem.UpstreamTimeout {
			t.Errorf("status %d", resp.StatusCode)
		}
		if el := time.Since(start); el > 4*time.Second {
			t.Errorf("caller waited %s, over the 2s request timeout", el)
		}
	})
	t.Run("timeout-bounds-the-body", func(t *testing.T) {
		resp := f.do(t, "GET", "/payments/v1/charges/stalled-body", f.billing, nil, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d, want the vendor's 200", resp.StatusCode)
		}
		select {
		case cut := <-stalledBodyCut:
			if !cut {
				t.Error("the stalled body outlived timeouts.request")
			}
		case <-time.After(20 * time.Second):
			t.Fatal("the vendor never finished the stalled body")
		}
	})
	t.Run("response-too-large-known-length", func(t *testing.T) {
		resp := f.do(t, "GET", "/payments/v1/big", f.billing, nil, nil)
		if resp.StatusCode != 502 || problemOf(t, resp).Code != problem.ResponseTooLarge {
			t.Errorf("status %d", resp.StatusCode)
		}
	})
	t.Run("response-too-large-streamed-is-cut", func(t *testing.T) {
		resp := f.do(t, "GET", "/payments/v1/big?stream=1", f.billing, nil, nil)
		if resp.StatusCode == 200 {
			// Headers were already sent: the caller must see a broken
			// body, never a complete-looking truncated one.
			b, err := io.ReadAll(resp.Body)
			if err == nil {
				t.Errorf("read %d bytes of an over-limit body without error", len(b))
			}
			if len(b) > 4<<10 {
				t.Errorf("caller received %d bytes, over the 4KiB limit", len(b))
			}
		} else if problemOf(t, resp).Code != problem.ResponseTooLarge {
			t.Errorf("status %d", resp.StatusCode)
		}
	})
	t.Run("request-too-large", func(t *testing.T) {
		resp := f.do(t, "POST", "/payments/v1/charges", f.billing, strings.NewReader(strings.Repeat("y", 2<<10)), nil)
		if resp.StatusCode != 413 || problemOf(t, resp).Code != problem.RequestTooLarge {
			t.Errorf("status %d", resp.StatusCode)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := ln.Addr().String()
		ln.Close()
		g := newFixture(t, "http://"+addr, baseConfig)
		resp := g.do(t, "GET", "/payments/v1/charges/1", g.billing, nil, nil)
		if resp.StatusCode != 502 || problemOf(t, resp).Code != problem.UpstreamUnreachable {
			t.Errorf("status %d", resp.StatusCode)
		}
	})
}

func TestEgressDeniedWithoutAllowPrivate(t *testing.T) {
	v := newVendor(t, nil)
	// The name is allow-listed, but it resolves to loopback: the dial-time
	// check must refuse it.
	cfg := strings.Replace(baseConfig, ", allow_private: true", "", 1)
	f := newFixture(t, strings.Replace(v.URL, "127.0.0.1", "localhost", 1), cfg)
	resp := f.do(t, "GET", "/payments/v1/charges/1", f.billing, nil, nil)
	if resp.StatusCode != 502 || problemOf(t, resp).Code != problem.EgressDenied {
		t.Errorf("status %d", resp.StatusCode)
	}
	select {
	case <-v.got:
		t.Error("vendor on loopback was reached")
	default:
	}
}

func TestVendorCannotSpoofGatewayHeaders(t *testing.T) {
	v := newVendor(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Portcullis-Error", "route_not_allowed")
		w.Header().Set("Set-Cookie", "vendor=1")
		w.WriteHeader(200)
	})
	f := newFixture(t, v.URL, baseConfig)
	resp := f.do(t, "GET", "/payments/v1/charges/1", f.billing, nil, nil)
	if resp.Header.Get("X-Portcullis-Error") != "" || resp.Header.Get("Set-Cookie") != "" {
		t.Errorf("vendor headers passed: %v", resp.Header)
	}
}

var _ = slog.LevelInfo
