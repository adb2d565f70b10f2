package gateway

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/internal/credential"
	"github.com/portcullis-dev/portcullis/internal/egress"
	"github.com/portcullis-dev/portcullis/internal/observe"
	"github.com/portcullis-dev/portcullis/internal/problem"
)

// gatewayFields are the fields only the gateway may set on an answer.
var gatewayFields = []string{"X-Portcullis-Error", "X-Portcullis-Fallback", "Set-Cookie", "X-Request-Id"}

// TestCallerTrailersNeverReachVendor: a chunked request whose trailer
// carries Authorization, Cookie and a method override delivers none of
// them to the vendor (issue 13 item 2).
func TestCallerTrailersNeverReachVendor(t *testing.T) {
	v := newVendor(t, nil)
	f := newFixture(t, v.URL, baseConfig)
	conn, err := net.Dial("tcp", strings.TrimPrefix(f.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /payments/v1/charges HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nTE: trailers\r\n"+
		"Trailer: Authorization, Cookie, X-Http-Method-Override\r\nTrailer: Idempotency-Key\r\n\r\n"+
		"7\r\n{\"a\":1}\r\n0\r\nAuthorization: Bearer CALLER-TRAILER-CANARY\r\nCookie: session=abc\r\n"+
		"X-Http-Method-Override: DELETE\r\nIdempotency-Key: from-trailer\r\n\r\n", f.billing)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d, want 200", resp.StatusCode)
	}
	r := <-v.got
	if len(r.Trailer) != 0 {
		t.Errorf("vendor got trailer fields %v, want none", r.Trailer)
	}
	for _, k := range []string{"Trailer", "Te", "Authorization", "Cookie", "X-Http-Method-Override", "Idempotency-Key"} {
		if got := r.Header.Values(k); len(got) != 0 {
			t.Errorf("vendor got header %s: %q", k, got)
		}
	}
	if r.Method != "POST" {
		t.Errorf("vendor got method %s", r.Method)
	}
}

// TestVendorTrailersCannotSpoofGateway: gateway fields in a vendor's
// trailer, announced or not, never reach the caller; other trailer fields
// do (issue 13 item 4).
func TestVendorTrailersCannotSpoofGateway(t *testing.T) {
	v := newVendor(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Portcullis-Error, Set-Cookie, X-Request-Id, X-Checksum")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(200)
		_, _ = io.WriteString(w, `{"id":"ch_1"}`)
		w.(http.Flusher).Flush()
		w.Header().Set("X-Portcullis-Error", "route_not_allowed")
		w.Header().Set("Set-Cookie", "session=vendor")
		w.Header().Set("X-Request-Id", "spoofed")
		w.Header().Set("X-Checksum", "abc")
		// Unannounced: net/http sends these as trailers too.
		w.Header().Set(http.TrailerPrefix+"X-Portcullis-Fallback", "stale")
		w.Header().Set(http.TrailerPrefix+"X-Late", "ok")
	})
	f := newFixture(t, v.URL, baseConfig)
	resp := f.do(t, "GET", "/payments/v1/charges/ch_1", f.billing, nil, map[string]string{"X-Request-Id": "req-trailer"})
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for _, k := range gatewayFields {
		if got := resp.Trailer.Values(k); len(got) != 0 {
			t.Errorf("caller got trailer %s: %q", k, got)
		}
	}
	if got := resp.Trailer.Get("X-Checksum"); got != "abc" {
		t.Errorf("trailer X-Checksum = %q, want abc (other trailers pass)", got)
	}
	if got := resp.Trailer.Get("X-Late"); got != "ok" {
		t.Errorf("trailer X-Late = %q, want ok", got)
	}
	if got := resp.Header.Values("X-Request-Id"); len(got) != 1 || got[0] != "req-trailer" {
		t.Errorf("X-Request-Id = %q, want the caller's own", got)
	}
}

// informational sends n 1xx answers, each with the gateway's fields and an
// Early Hints Link, then a 200.
func informational(n int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		for i := 0; i < n; i++ {
			h.Set("Link", fmt.Sprintf("</style%d.css>; rel=preload", i))
			h.Set("X-Portcullis-Error", "route_not_allowed")
			h.Set("Set-Cookie", "session=vendor")
			h.Set("X-Request-Id", "spoofed")
			w.WriteHeader(http.StatusEarlyHints)
		}
		for _, k := range []string{"Link", "X-Portcullis-Error", "Set-Cookie", "X-Request-Id"} {
			h.Del(k)
		}
		h.Set("Content-Type", "application/json")
		w.WriteHeader(200)
		_, _ = io.WriteString(w, `{"id":"ch_1"}`)
	}
}

// got1xx records the 1xx answers a caller sees.
type got1xx struct {
	mu      sync.Mutex
	headers []textproto.MIMEHeader
}

func (g *got1xx) do(t *testing.T, f *fixture, reqID string) *http.Response {
	t.Helper()
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		g.mu.Lock()
		defer g.mu.Unlock()
		c := textproto.MIMEHeader{}
		for k, v := range h {
			c[k] = append([]string(nil), v...)
		}
		g.headers = append(g.headers, c)
		return nil
	}}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(t.Context(), trace), "GET", f.srv.URL+"/payments/v1/charges/ch_1", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+f.billing)
	req.Header.Set("X-Request-Id", reqID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// TestVendorInformationalResponses: 1xx answers are relayed without the
// gateway's fields, at most maxInformational per call; the final answer
// keeps the caller's request id and is logged with its own status (issue
// 13 item 4).
func TestVendorInformationalResponses(t *testing.T) {
	v := newVendor(t, informational(10))
	statuses := make(chan int, 1)
	f := newFixtureWith(t, v.URL, baseConfig, Options{OnRecord: func(r *observe.Record) { statuses <- r.Status }})
	var g got1xx
	resp := g.do(t, f, "req-early-hints")
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if len(g.headers) != maxInformational {
		t.Errorf("caller saw %d informational answers, want %d (the cap)", len(g.headers), maxInformational)
	}
	for i, h := range g.headers {
		for _, k := range gatewayFields {
			if got := h.Values(k); len(got) != 0 {
				t.Errorf("1xx #%d carries %s: %q", i, k, got)
			}
		}
		if want := fmt.Sprintf("</style%d.css>; rel=preload", i); h.Get("Link") != want {
			t.Errorf("1xx #%d Link = %q, want %q (the vendor's own hints pass)", i, h.Get("Link"), want)
		}
	}
	if got := resp.Header.Values("X-Request-Id"); len(got) != 1 || got[0] != "req-early-hints" {
		t.Errorf("final X-Request-Id = %q, want the caller's", got)
	}
	for _, k := range []string{"X-Portcullis-Error", "Set-Cookie", "Link"} {
		if got := resp.Header.Values(k); len(got) != 0 {
			t.Errorf("final answer carries %s: %q", k, got)
		}
	}
	select {
	case st := <-statuses:
		if st != 200 {
			t.Errorf("the request record has status %d, want 200 (a 1xx is not the answer)", st)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no request record")
	}
}

// TestVendorInformationalFlood: a vendor that keeps sending 1xx answers
// is cut off with invalid_upstream_response instead of holding the call.
func TestVendorInformationalFlood(t *testing.T) {
	v := newVendor(t, informational(500))
	f := newFixture(t, v.URL, baseConfig)
	var g got1xx
	start := time.Now()
	resp := g.do(t, f, "req-flood")
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", resp.StatusCode)
	}
	if b := problemOf(t, resp); b.Code != problem.InvalidUpstreamResponse {
		t.Errorf("code %s, want invalid_upstream_response", b.Code)
	}
	if len(g.headers) > maxInformational {
		t.Errorf("caller saw %d informational answers, want at most %d", len(g.headers), maxInformational)
	}
	if d := time.Since(start); d > 1900*time.Millisecond {
		t.Errorf("answered after %v: the flood was not cut before the 2s request timeout", d)
	}
}

// TestInformationalAnswersMaskTheCredential: a vendor that echoes the
// injected key in a 103 Early Hints answer does not hand it to the
// caller. The credential Transport leaves 1xx answers to the gateway's
// ResponseWriter (credential.Call.Informational), which masks them before
// they are relayed.
func TestInformationalAnswersMaskTheCredential(t *testing.T) {
	const key = "canary-early-hints-gw-5521"
	t.Setenv("PORTCULLIS_TEST_1XX_KEY", key)
	v := newVendor(t, func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Link", "</style.css?auth="+r.Header.Get("Authorization")+">; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		h.Del("Link")
		_, _ = io.WriteString(w, `{"id":"ch_1"}`)
	})
	resolver := credential.NewResolver(credential.Options{Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(resolver.Close)
	cfg := strings.Replace(baseConfig, "    request_headers:", "    credential: {type: bearer, secret: env:PORTCULLIS_TEST_1XX_KEY}\n    request_headers:", 1)
	f := newFixtureWith(t, v.URL, cfg, Options{
		Credentials: func(name string, c *config.Credential, base http.RoundTripper, _ *egress.Policy) (http.RoundTripper, func(context.Context) error, error) {
			inj, err := credential.NewInjector(name, c, resolver, credential.Options{})
			if err != nil {
				return nil, nil, err
			}
			return &credential.Transport{Base: base, Injector: inj, Integration: name}, inj.Refresh, nil
		},
	})
	var g got1xx
	resp := g.do(t, f, "req-hints-canary")
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if len(g.headers) != 1 {
		t.Fatalf("caller saw %d informational answers, want 1", len(g.headers))
	}
	link := g.headers[0].Get("Link")
	if strings.Contains(link, key) || !strings.Contains(link, "REDACTED") {
		t.Errorf("1xx Link = %q; want the key masked", link)
	}
}

// TestRetriesSendTheSameRequest: every attempt of a retried call reaches
// the vendor with the same headers (the credential once, not stacked) and
// the same body: the retry layer's per-attempt copy is shallow, and only
// the credential Transport's own copy carries the credential.
func TestRetriesSendTheSameRequest(t *testing.T) {
	const key = "canary-retry-key-9911"
	t.Setenv("PORTCULLIS_TEST_RETRY_KEY", key)
	type seen struct {
		Header http.Header
		Body   string
	}
	var mu sync.Mutex
	var got []seen
	v := newVendor(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		h := r.Header.Clone()
		h.Del("Content-Length")
		got = append(got, seen{h, string(body)})
		n := len(got)
		mu.Unlock()
		if n < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, `{"id":"ch_1"}`)
	})
	resolver := credential.NewResolver(credential.Options{Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(resolver.Close)
	cfg := strings.Replace(baseConfig, "    request_headers:", "    credential: {type: bearer, secret: env:PORTCULLIS_TEST_RETRY_KEY}\n    retry: {backoff: 1ms, max_backoff: 2ms}\n    request_headers:", 1)
	f := newFixtureWith(t, v.URL, cfg, Options{
		Credentials: func(name string, c *config.Credential, base http.RoundTripper, _ *egress.Policy) (http.RoundTripper, func(context.Context) error, error) {
			inj, err := credential.NewInjector(name, c, resolver, credential.Options{})
			if err != nil {
				return nil, nil, err
			}
			return &credential.Transport{Base: base, Injector: inj, Integration: name}, inj.Refresh, nil
		},
	})
	resp := f.do(t, "POST", "/payments/v1/charges", f.billing, strings.NewReader(`{"amount":100}`),
		map[string]string{"Idempotency-Key": "k-retry", "Content-Type": "application/json"})
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 3 {
		t.Fatalf("vendor got %d attempts, want 3", len(got))
	}
	if a := got[0].Header.Values("Authorization"); len(a) != 1 || a[0] != "Bearer "+key {
		t.Errorf("attempt 1 Authorization = %q, want the injected key once", a)
	}
	for i := 1; i < len(got); i++ {
		if diff := cmp.Diff(got[0], got[i]); diff != "" {
			t.Errorf("attempt %d differs from attempt 1 (-first +this):\n%s", i+1, diff)
		}
	}
}
