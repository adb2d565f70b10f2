package dashboard

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/admin"
	"github.com/portcullis-dev/portcullis/internal/chaos"
	"github.com/portcullis-dev/portcullis/internal/clock"
	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/internal/credential"
	"github.com/portcullis-dev/portcullis/internal/egress"
	"github.com/portcullis-dev/portcullis/internal/gateway"
	"github.com/portcullis-dev/portcullis/internal/identity"
	"github.com/portcullis-dev/portcullis/internal/observe"
	"github.com/portcullis-dev/portcullis/internal/secret"
	"github.com/portcullis-dev/portcullis/internal/store"
)

// Canaries: if either ever shows up in a page, an API answer or a log
// line, a secret leaked.
const (
	canaryVendorKey = "sk_live_CANARY_vendor_9f8e7d6c5b4a"
	canaryAdmin     = "pa_CANARY_admin_1a2b3c4d5e6f7a8b"
	canaryEnv       = "PORTCULLIS_DASHBOARD_TEST_VENDOR_KEY"
)

// flakyVendor is an httptest vendor whose health the test switches.
type flakyVendor struct {
	*httptest.Server
	failing atomic.Bool
	hits    atomic.Int64
	sawKey  atomic.Bool
}

func newFlakyVendor(t *testing.T) *flakyVendor {
	t.Helper()
	v := &flakyVendor{}
	v.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v.hits.Add(1)
		if r.Header.Get("Authorization") == "Bearer "+canaryVendorKey {
			v.sawKey.Store(true)
		}
		if v.failing.Load() {
			http.Error(w, `{"error":"vendor incident"}`, http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-RateLimit-Remaining", "4200")
		fmt.Fprint(w, `{"ok":true}`)
	}))
	t.Cleanup(v.Close)
	return v
}

const rigConfig = `
version: 1
callers:
  billing: {tokens: ["%[1]s"]}
integrations:
  payments:
    upstream: %[2]s
    egress: {allow: ["%[3]s"], allow_private: true}
    credential: {type: bearer, secret: "env:%[6]s", max_age: 90d}
    timeouts: {connect: 1s, request: 2s}
    retry: {attempts: 1}
    circuit_breaker: {failure_ratio: 0.5, min_requests: 10, window: 20s, open_for: 1m}
    routes:
      - {method: GET, path: "/v1/charges/{id}", callers: [billing]}
    vendor:
      sla: {uptime: 99.9, p99_latency: 800ms}
  maps:
    upstream: %[4]s
    egress: {allow: ["%[5]s"], allow_private: true}
    timeouts: {connect: 1s, request: 2s}
    routes:
      - {method: GET, path: "/v1/geocode", callers: [billing]}
    vendor:
      sla: {uptime: 99.5, p99_latency: 300ms}
`

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// syncBuffer collects log output from several goroutines.
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

// rig is a gateway assembled in process, as cmd/portcullis would: two
// httptest vendors, the caller listener, and the admin listener with the
// dashboard mounted through admin.Options.Extend.
type rig struct {
	payments, maps *flakyVendor
	gw             *gateway.Gateway
	caller, admin  *httptest.Server
	dash           *Dashboard
	series         *Series
	store          *store.Memory
	chaos          *chaos.Injector
	logs           *syncBuffer
	callerToken    string
	adminToken     atomic.Pointer[string]
}

type rigOptions struct {
	seriesClock clock.Clock
	secure      bool
	anomalies   func(int) any
	findings    func() any
}

func newRig(t *testing.T, ro rigOptions) *rig {
	t.Helper()
	t.Setenv(canaryEnv, canaryVendorKey)
	r := &rig{payments: newFlakyVendor(t), maps: newFlakyVendor(t), logs: &syncBuffer{}}
	adminTok := canaryAdmin
	r.adminToken.Store(&adminTok)
	tok, hash, err := identity.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	r.callerToken = tok
	hp := func(u string) string { return strings.TrimPrefix(u, "http://") }
	text := fmt.Sprintf(rigConfig, hash, r.payments.URL, hp(r.payments.URL), r.maps.URL, hp(r.maps.URL), canaryEnv)
	cfg, _, err := config.Parse("dashboard-test.yaml", []byte(text))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	// No scrubber on purpose: a leak must show in the logs, not be masked.
	log := observe.NewLogger(r.logs, "debug", "json", nil)
	r.series = NewSeries(ro.seriesClock)
	r.store = store.NewMemory(nil)
	r.chaos = chaos.NewInjector(nil, true, nil)
	resolver := credential.NewResolver(credential.Options{Logger: log})
	t.Cleanup(resolver.Close)
	var injectors sync.Map
	r.gw, err = gateway.New(cfg, gateway.Options{
		Logger: log,
		Store:  r.store,
		OnRecord: func(rec *observe.Record) {
			r.series.Observe(rec)
			r.recordUsage(rec)
		},
		// The gateway does not yet tell chaos which integration a call is
		// for (chaos.WithTarget); the request record in the context does.
		Faults: func(next http.RoundTripper) http.RoundTripper {
			faulty := r.chaos.Wrap(next)
			return roundTripFunc(func(req *http.Request) (*http.Response, error) {
				rec := observe.RecordFrom(req.Context())
				return faulty.RoundTrip(req.WithContext(chaos.WithTarget(req.Context(), rec.Integration, rec.Route)))
			})
		},
		Credentials: func(name string, c *config.Credential, base http.RoundTripper, _ *egress.Policy) (http.RoundTripper, func(context.Context) error, error) {
			inj, err := credential.NewInjector(name, c, resolver, credential.Options{Logger: log})
			if err != nil {
				return nil, nil, err
			}
			injectors.Store(name, inj)
			return &credential.Transport{Base: base, Injector: inj, Integration: name, Logger: log}, inj.Refresh, nil
		},
		Status: func(name string, st *admin.Status) {
			if v, ok := injectors.Load(name); ok {
				c := v.(credential.Injector).Status()
				st.Credential = &c
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.gw.Close)
	token := func() (secret.Value, bool) { return secret.New(*r.adminToken.Load()), true }
	r.dash = New(Options{
		Series: r.series, Token: token, Config: r.gw.Config, Usage: r.store,
		QueueStats: func(ctx context.Context) (int, time.Time, error) { return r.store.Stats(ctx, "vendor-calls") },
		Anomalies:  ro.anomalies, Findings: ro.findings,
		Chaos:  chaos.AdminHandler(r.chaos, log),
		Logger: log, Secure: ro.secure,
	})
	r.caller = httptest.NewServer(r.gw)
	t.Cleanup(r.caller.Close)
	r.admin = httptest.NewServer(admin.Handler(r.gw, admin.Options{Token: token, Extend: r.dash.Mount, Logger: log}))
	t.Cleanup(r.admin.Close)
	return r
}

// recordUsage stores the usage record the server's usage writer would.
func (r *rig) recordUsage(rec *observe.Record) {
	if rec.Integration == "" || rec.Caller == "" {
		return
	}
	_ = r.store.AppendUsage(context.Background(), []store.UsageRecord{{
		Time: rec.Start, Caller: rec.Caller, Integration: rec.Integration, Route: rec.Route, Method: rec.Method,
		Status: rec.Status, LatencyMS: float64(time.Since(rec.Start).Microseconds()) / 1000,
		VendorFailed: rec.UpstreamStatus >= 500 || rec.ErrorCode == "upstream_timeout" || rec.ErrorCode == "upstream_unreachable",
	}})
}

// call sends one caller request and returns its status and error code.
func (r *rig) call(t *testing.T, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, r.caller.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+r.callerToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("X-Portcullis-Error")
}

func (r *rig) drive(t *testing.T, n int) {
	t.Helper()
	for i := range n {
		r.call(t, fmt.Sprintf("/payments/v1/charges/ch_%d", i))
		r.call(t, "/maps/v1/geocode")
	}
}

// client is a browser-like HTTP client of the admin listener: a cookie
// jar, and Origin/Sec-Fetch-Site headers as a same-origin page sends.
type client struct {
	t    *testing.T
	base string
	hc   *http.Client
	csrf string
}

func (r *rig) newClient(t *testing.T) *client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	return &client{t: t, base: r.admin.URL, hc: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (c *client) do(method, path string, body io.Reader, hdr map[string]string) (*http.Response, string) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if method == http.MethodPost {
		req.Header.Set("Origin", c.base)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// login posts the form and reads the session's CSRF token.
func (c *client) login(token string) *http.Response {
	c.t.Helper()
	form := url.Values{"token": {token}}.Encode()
	resp, _ := c.do(http.MethodPost, "/ui/login", strings.NewReader(form),
		map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	if resp.StatusCode == http.StatusSeeOther {
		_, body := c.do(http.MethodGet, "/ui/api/session", nil, nil)
		var s struct{ CSRF string }
		_ = jsonUnmarshal(body, &s)
		c.csrf = s.CSRF
	}
	return resp
}
