package drill

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/admin"
	"github.com/portcullis-dev/portcullis/internal/chaos"
	"github.com/portcullis-dev/portcullis/internal/credential"
)

// fakeGateway plays a Portcullis gateway with the protections a drill
// looks for, each of which a test can switch off: a breaker (opens after
// 5 vendor failures, half-open after openFor), a stale fallback, response
// validation, and credential refresh on a vendor 401. Faults come from a
// real chaos.Injector behind the real chaos admin API.
type fakeGateway struct {
	breaker, fallback, validate, refresh, chaosOn bool

	mu          sync.Mutex
	state       string
	fails       int
	openedAt    time.Time
	openFor     time.Duration
	revoked     bool
	lastRefresh time.Time
	lastGood    []byte
	alerts      int

	inj              *chaos.Injector
	gw, admin, vendr *httptest.Server
	transport        http.RoundTripper
}

func newFakeGateway(t *testing.T, opts ...func(*fakeGateway)) *fakeGateway {
	t.Helper()
	g := &fakeGateway{breaker: true, fallback: true, validate: true, refresh: true, chaosOn: true, state: "closed", openFor: 100 * time.Millisecond}
	for _, o := range opts {
		o(g)
	}
	g.vendr = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer sk_test_vendor" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"ch_1","amount":100}`)
	}))
	t.Cleanup(g.vendr.Close)
	g.inj = chaos.NewInjector(nil, g.chaosOn, nil)
	base := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(base.CloseIdleConnections)
	g.transport = g.inj.Wrap(base)
	g.gw = httptest.NewServer(http.HandlerFunc(g.serve))
	t.Cleanup(g.gw.Close)
	mux := http.NewServeMux()
	chaosAPI := chaos.AdminHandler(g.inj, nil)
	mux.Handle("/api/v1/chaos", chaosAPI)
	mux.Handle("/api/v1/chaos/", chaosAPI)
	mux.HandleFunc("GET /api/v1/integrations", g.integrations)
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		g.mu.Lock()
		defer g.mu.Unlock()
		fmt.Fprintf(w, "# TYPE portcullis_alerts_total counter\nportcullis_alerts_total{sink=\"log\"} %d\nportcullis_requests_total 3\n", g.alerts)
	})
	g.admin = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer admin-token" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(g.admin.Close)
	return g
}

func (g *fakeGateway) integrations(w http.ResponseWriter, _ *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	st := admin.Status{Breaker: g.state, Limiter: admin.Limiter{Tokens: 5},
		Credential: &credential.Status{Integration: "payments", Revoked: g.revoked, LastRefresh: g.lastRefresh}}
	_ = json.NewEncoder(w).Encode(admin.IntegrationList{Integrations: []admin.Integration{
		{Name: "maps", Routes: 1},
		{Name: "payments", Upstream: g.vendr.URL, Routes: 1, Status: st},
	}})
}

func refuse(w http.ResponseWriter, code string, status int) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Portcullis-Error", code)
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"code":%q}`, code)
}

func (g *fakeGateway) serve(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer caller-token" {
		refuse(w, "unauthenticated", 401)
		return
	}
	path, ok := strings.CutPrefix(r.URL.Path, "/payments")
	if !ok {
		refuse(w, "unknown_integration", 404)
		return
	}
	g.mu.Lock()
	if g.refresh && g.revoked {
		g.mu.Unlock()
		refuse(w, "credential_unavailable", 503)
		return
	}
	if g.breaker && g.state == "open" {
		if time.Since(g.openedAt) < g.openFor {
			stale := g.lastGood
			g.mu.Unlock()
			if g.fallback && stale != nil {
				w.Header().Set("X-Portcullis-Fallback", "stale")
				_, _ = w.Write(stale)
				return
			}
			refuse(w, "circuit_open", 503)
			return
		}
		g.state = "half-open"
	}
	g.mu.Unlock()

	status, body, err := g.vendor(r, path)
	if status == 401 && g.refresh {
		// As the gateway does since issue 13: refresh; the refresh yields
		// the same key, so no retry, no revocation from one caller's
		// traffic, and the vendor's 401 is passed on.
		g.mu.Lock()
		g.lastRefresh = time.Now()
		g.mu.Unlock()
	}
	if err != nil || status >= 500 {
		g.failure()
		g.mu.Lock()
		stale := g.lastGood
		g.mu.Unlock()
		if g.fallback && stale != nil {
			w.Header().Set("X-Portcullis-Fallback", "stale")
			_, _ = w.Write(stale)
			return
		}
		if err != nil {
			refuse(w, "upstream_unreachable", 502)
			return
		}
		w.WriteHeader(status)
		_, _ = w.Write(body)
		return
	}
	if status == 200 && g.validate {
		var v struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(body, &v) != nil || v.ID == "" {
			refuse(w, "invalid_upstream_response", 502)
			return
		}
	}
	g.mu.Lock()
	g.state, g.fails = "closed", 0
	if status == 200 {
		g.lastGood = body
	}
	g.mu.Unlock()
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func (g *fakeGateway) failure() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.breaker {
		return
	}
	g.fails++
	if g.state == "half-open" || g.fails >= 5 {
		if g.state != "open" {
			g.alerts++
		}
		g.state, g.openedAt = "open", time.Now()
	}
}

func (g *fakeGateway) vendor(r *http.Request, path string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(chaos.WithTarget(r.Context(), "payments", "/v1/charges/{id}"), r.Method, g.vendr.URL+path, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer sk_test_vendor")
	resp, err := g.transport.RoundTrip(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}
