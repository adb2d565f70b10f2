package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/portcullis-dev/portcullis/internal/config"
)

const vendorBody = `{"id":"ch_1","amount":100,"paid":true,"card":{"last4":"4242"}}`

// rig is a vendor (httptest), a reverse proxy in front of it whose
// transport goes through an Injector (as the gateway's does), and a
// counter of calls that reached the vendor.
type rig struct {
	inj    *Injector
	reg    *prometheus.Registry
	logs   *syncBuffer
	proxy  *httptest.Server
	vendor *httptest.Server
	hits   atomic.Int64
}

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

func newRig(t *testing.T, enabled bool, opts ...Option) *rig {
	t.Helper()
	rg := &rig{reg: prometheus.NewRegistry(), logs: &syncBuffer{}}
	rg.vendor = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rg.hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, vendorBody)
	}))
	t.Cleanup(rg.vendor.Close)
	opts = append([]Option{WithRegistry(rg.reg), WithLogger(slog.New(slog.NewJSONHandler(rg.logs, nil)))}, opts...)
	rg.inj = NewInjector(nil, enabled, nil, opts...)
	base := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(base.CloseIdleConnections)
	up := rg.vendor.URL
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host = "http", strings.TrimPrefix(up, "http://")
			// As the gateway does: the vendor credential is on the request
			// the injector sees.
			pr.Out.Header.Set("Authorization", "Bearer sk_test_secret_value")
		},
		Transport: rg.inj.Wrap(base),
		ErrorLog:  log.New(io.Discard, "", 0),
	}
	proxy.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, err error) {
		w.Header().Set("X-Test-Error", err.Error())
		w.WriteHeader(http.StatusBadGateway)
	}
	rg.proxy = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		route := "/v1/charges/{id}"
		if !strings.HasPrefix(r.URL.Path, "/v1/charges/") {
			route = r.URL.Path
		}
		proxy.ServeHTTP(w, r.WithContext(WithTarget(r.Context(), "payments", route)))
	}))
	t.Cleanup(rg.proxy.Close)
	return rg
}

func (rg *rig) get(t *testing.T, path string, timeout time.Duration) (*http.Response, []byte, error) {
	t.Helper()
	c := &http.Client{Timeout: timeout}
	resp, err := c.Get(rg.proxy.URL + path)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

func TestEachFaultKindEndToEnd(t *testing.T) {
	tests := []struct {
		name       string
		fault      Fault
		wantStatus int  // 0: the call fails on the client side
		wantVendor bool // the vendor was called
		check      func(t *testing.T, resp *http.Response, body []byte, readErr error, elapsed time.Duration)
	}{
		{name: "latency-delays-then-passes", fault: Fault{Kind: Latency, Latency: 80 * time.Millisecond}, wantStatus: 200, wantVendor: true,
			check: func(t *testing.T, _ *http.Response, body []byte, _ error, elapsed time.Duration) {
				if elapsed < 80*time.Millisecond || string(body) != vendorBody {
					t.Errorf("elapsed %v body %s: want ≥80ms and the vendor's body", elapsed, body)
				}
			}},
		{name: "error-status-without-vendor", fault: Fault{Kind: ErrorStatus, Status: 503}, wantStatus: 503,
			check: func(t *testing.T, resp *http.Response, _ []byte, _ error, _ time.Duration) {
				if got := resp.Header.Get(HeaderChaos); !strings.HasPrefix(got, "error; id=") {
					t.Errorf("%s = %q, want the kind and id", HeaderChaos, got)
				}
			}},
		{name: "error-custom-status", fault: Fault{Kind: ErrorStatus, Status: 429}, wantStatus: 429},
		{name: "reset-is-a-transport-error", fault: Fault{Kind: Reset}, wantStatus: 502,
			check: func(t *testing.T, resp *http.Response, _ []byte, _ error, _ time.Duration) {
				if got := resp.Header.Get("X-Test-Error"); !strings.Contains(got, "connection reset") {
					t.Errorf("proxy error %q, want a connection reset", got)
				}
			}},
		{name: "hang-until-caller-gives-up", fault: Fault{Kind: Hang}, wantStatus: 0,
			check: func(t *testing.T, _ *http.Response, _ []byte, err error, elapsed time.Duration) {
				if err == nil || elapsed < 150*time.Millisecond {
					t.Errorf("err %v after %v, want a client timeout after 150ms", err, elapsed)
				}
			}},
		// The proxy has copied half the body when the read fails, so it
		// aborts the connection: the caller gets no complete answer.
		{name: "truncate-cuts-the-body", fault: Fault{Kind: Truncate}, wantStatus: 0, wantVendor: true,
			check: func(t *testing.T, _ *http.Response, _ []byte, err error, _ time.Duration) {
				if err == nil {
					t.Error("caller got a complete answer from a truncated body")
				}
			}},
		{name: "corrupt-keeps-length-breaks-json", fault: Fault{Kind: Corrupt}, wantStatus: 200, wantVendor: true,
			check: func(t *testing.T, _ *http.Response, body []byte, _ error, _ time.Duration) {
				if len(body) != len(vendorBody) || json.Valid(body) {
					t.Errorf("body %q: want %d bytes of invalid JSON", body, len(vendorBody))
				}
			}},
		{name: "oversize-pads-the-body", fault: Fault{Kind: Oversize, Size: 1 << 20}, wantStatus: 200, wantVendor: true,
			check: func(t *testing.T, resp *http.Response, body []byte, _ error, _ time.Duration) {
				if len(body) != len(vendorBody)+1<<20 || !json.Valid(body) || resp.ContentLength != int64(len(body)) {
					t.Errorf("body %d bytes (Content-Length %d), want vendor body + 1 MiB of valid JSON", len(body), resp.ContentLength)
				}
			}},
		{name: "schema-retypes-every-field", fault: Fault{Kind: Schema}, wantStatus: 200, wantVendor: true,
			check: func(t *testing.T, _ *http.Response, body []byte, _ error, _ time.Duration) {
				var got map[string]any
				if err := json.Unmarshal(body, &got); err != nil {
					t.Fatalf("body %q is not JSON: %v", body, err)
				}
				want := map[string]any{"id": 12345.0, "amount": "unexpected", "paid": "unexpected", "card": []any{"unexpected"}}
				if d := cmp.Diff(want, got); d != "" {
					t.Errorf("schema-broken body (-want +got):\n%s", d)
				}
			}},
		{name: "revoked-answers-401", fault: Fault{Kind: Revoked}, wantStatus: 401,
			check: func(t *testing.T, resp *http.Response, body []byte, _ error, _ time.Duration) {
				if !strings.Contains(resp.Header.Get("Www-Authenticate"), "invalid_token") || !strings.Contains(string(body), "invalid_token") {
					t.Errorf("401 without invalid_token: %v %s", resp.Header, body)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rg := newRig(t, true)
			tc.fault.Integration = "payments"
			if _, err := rg.inj.Set(tc.fault); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			resp, body, err := rg.get(t, "/v1/charges/ch_1", 200*time.Millisecond+tc.fault.Latency)
			elapsed := time.Since(start)
			if tc.wantStatus == 0 {
				if resp != nil {
					t.Errorf("status %d, want no answer", resp.StatusCode)
				}
			} else if resp == nil {
				t.Fatalf("no answer: %v", err)
			} else if resp.StatusCode != tc.wantStatus {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			if got := rg.hits.Load() > 0; got != tc.wantVendor {
				t.Errorf("vendor called: %v, want %v", got, tc.wantVendor)
			}
			if tc.check != nil {
				tc.check(t, resp, body, err, elapsed)
			}
			if got := counterValue(t, rg.inj.counter.WithLabelValues("payments", string(tc.fault.Kind))); got != 1 {
				t.Errorf("portcullis_chaos_injections_total{kind=%s} = %v, want 1", tc.fault.Kind, got)
			}
			if got := rg.inj.List()[0].Injections; got != 1 {
				t.Errorf("fault injections = %d, want 1", got)
			}
			logs := rg.logs.String()
			if !strings.Contains(logs, `"msg":"chaos fault injected"`) || !strings.Contains(logs, `"kind":"`+string(tc.fault.Kind)+`"`) {
				t.Errorf("injection not logged:\n%s", logs)
			}
			if strings.Contains(logs, "sk_test_secret_value") {
				t.Errorf("log carries the vendor credential:\n%s", logs)
			}
		})
	}
}

func TestResetWrapsECONNRESET(t *testing.T) {
	inj := NewInjector(http.NewFileTransport(http.Dir(t.TempDir())), true, nil)
	if _, err := inj.Set(Fault{Integration: "sms", Kind: Reset}); err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("GET", "http://vendor.example/x", nil)
	req = req.WithContext(WithTarget(req.Context(), "sms", "/x"))
	_, err := inj.RoundTrip(req)
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("err %v, want one wrapping ECONNRESET (so retries and breakers treat it as a vendor failure)", err)
	}
}

func TestHangEndsWithTheContext(t *testing.T) {
	inj := NewInjector(nil, true, nil)
	if _, err := inj.Set(Fault{Integration: "sms", Kind: Hang}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(WithTarget(context.Background(), "sms", "/x"), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://vendor.example/x", nil)
	_, err := inj.RoundTrip(req)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err %v, want the context's deadline", err)
	}
}

func TestWhichCallsAreHit(t *testing.T) {
	draws := []float64{0.3, 0.7}
	var n atomic.Int64
	rnd := func() float64 { return draws[int(n.Add(1)-1)%len(draws)] }
	tests := []struct {
		name        string
		fault       Fault
		integration string
		route       string
		noTarget    bool
		calls       int
		wantHits    int
	}{
		{name: "same-integration-any-route", fault: Fault{Integration: "payments"}, integration: "payments", route: "/v1/refunds", calls: 2, wantHits: 2},
		{name: "other-integration-untouched", fault: Fault{Integration: "payments"}, integration: "sms", route: "/v1/refunds", calls: 2, wantHits: 0},
		{name: "route-scoped-match", fault: Fault{Integration: "payments", Route: "/v1/refunds"}, integration: "payments", route: "/v1/refunds", calls: 1, wantHits: 1},
		{name: "route-scoped-other-route", fault: Fault{Integration: "payments", Route: "/v1/refunds"}, integration: "payments", route: "/v1/charges", calls: 2, wantHits: 0},
		{name: "no-target-in-context", fault: Fault{Integration: "payments"}, noTarget: true, calls: 2, wantHits: 0},
		{name: "probability-half", fault: Fault{Integration: "payments", Probability: 0.5}, integration: "payments", route: "/x", calls: 4, wantHits: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n.Store(0)
			var vendor atomic.Int64
			next := roundTripFunc(func(r *http.Request) (*http.Response, error) {
				vendor.Add(1)
				return synthetic(r, 200, "", "{}", nil), nil
			})
			inj := NewInjector(next, true, nil, WithRand(rnd))
			tc.fault.Kind = ErrorStatus
			if _, err := inj.Set(tc.fault); err != nil {
				t.Fatal(err)
			}
			hits := 0
			for range tc.calls {
				req := httptest.NewRequest("GET", "http://vendor.example/x", nil)
				if !tc.noTarget {
					req = req.WithContext(WithTarget(req.Context(), tc.integration, tc.route))
				}
				resp, err := inj.RoundTrip(req)
				if err != nil {
					t.Fatal(err)
				}
				if resp.StatusCode == 503 {
					hits++
				}
			}
			if hits != tc.wantHits || int(vendor.Load()) != tc.calls-tc.wantHits {
				t.Errorf("hits %d vendor calls %d, want %d and %d", hits, vendor.Load(), tc.wantHits, tc.calls-tc.wantHits)
			}
		})
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestFaultsExpire(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clk := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	inj := NewInjector(roundTripFunc(func(r *http.Request) (*http.Response, error) { return synthetic(r, 200, "", "{}", nil), nil }), true, clk)
	if _, err := inj.Set(Fault{Integration: "ai", Kind: ErrorStatus, Expires: now.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	call := func() int {
		req := httptest.NewRequest("GET", "http://v/x", nil)
		resp, err := inj.RoundTrip(req.WithContext(WithTarget(req.Context(), "ai", "/x")))
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode
	}
	if got := call(); got != 503 {
		t.Fatalf("before expiry: %d, want 503", got)
	}
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	if got := call(); got != 200 {
		t.Errorf("after expiry: %d, want 200", got)
	}
	if got := inj.List(); len(got) != 0 {
		t.Errorf("List after expiry = %v, want empty", got)
	}
	if _, err := inj.Set(Fault{Integration: "ai", Kind: Reset, Expires: now.Add(-time.Second)}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Set of an expired fault: %v, want ErrInvalid", err)
	}
}

func TestDisabledRefusesAndPassesThrough(t *testing.T) {
	rg := newRig(t, false)
	if _, err := rg.inj.Set(Fault{Integration: "payments", Kind: ErrorStatus}); !errors.Is(err, ErrDisabled) {
		t.Errorf("Set: %v, want ErrDisabled", err)
	}
	if err := rg.inj.Load([]*config.Fault{{Integration: "payments", Kind: "error"}}); !errors.Is(err, ErrDisabled) {
		t.Errorf("Load: %v, want ErrDisabled", err)
	}
	resp, body, err := rg.get(t, "/v1/charges/ch_1", time.Second)
	if err != nil || resp.StatusCode != 200 || string(body) != vendorBody {
		t.Errorf("disabled injector changed the call: %v %v %s", err, resp, body)
	}
	// Switching chaos off at run time drops the faults already set.
	on := NewInjector(nil, true, nil)
	if _, err := on.Set(Fault{Integration: "payments", Kind: Hang}); err != nil {
		t.Fatal(err)
	}
	on.SetEnabled(false)
	if got := on.List(); len(got) != 0 {
		t.Errorf("faults after SetEnabled(false): %v", got)
	}
}

func TestLoadFromConfig(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	inj := NewInjector(nil, true, func() time.Time { return now })
	api, err := inj.Set(Fault{Integration: "crm", Kind: Reset})
	if err != nil {
		t.Fatal(err)
	}
	err = inj.Load([]*config.Fault{
		{Integration: "payments", Kind: "latency", Latency: config.Dur(2 * time.Second), Probability: 0.1, Expires: config.Dur(time.Hour)},
		{Integration: "sms", Kind: "error", Status: 502},
	})
	if err != nil {
		t.Fatal(err)
	}
	// A reload replaces config faults and keeps the one set through the API.
	if err := inj.Load([]*config.Fault{{Integration: "sms", Kind: "error", Status: 502}}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range inj.List() {
		got = append(got, f.ID+" "+f.Integration+" "+string(f.Kind)+" "+f.Source)
	}
	want := []string{api.ID + " crm reset api", "config-0 sms error config"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("faults after reload (-want +got):\n%s", d)
	}
	bad := inj.Load([]*config.Fault{{Integration: "sms", Kind: "meltdown"}, {Kind: "latency"}})
	for _, want := range []string{"chaos.faults[0]", `kind "meltdown"`, "chaos.faults[1]", "integration is required", "needs latency"} {
		if bad == nil || !strings.Contains(bad.Error(), want) {
			t.Errorf("Load error %v lacks %q", bad, want)
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name  string
		fault Fault
		want  string // "" valid
	}{
		{name: "valid-error", fault: Fault{Integration: "a", Kind: ErrorStatus}},
		{name: "valid-latency", fault: Fault{Integration: "a", Kind: Latency, Latency: time.Second, Probability: 0.5}},
		{name: "missing-integration", fault: Fault{Kind: Reset}, want: "integration is required"},
		{name: "unknown-kind", fault: Fault{Integration: "a", Kind: "explode"}, want: `kind "explode"`},
		{name: "probability-above-one", fault: Fault{Integration: "a", Kind: Reset, Probability: 1.5}, want: "probability"},
		{name: "latency-without-duration", fault: Fault{Integration: "a", Kind: Latency}, want: "needs latency"},
		{name: "latency-too-long", fault: Fault{Integration: "a", Kind: Latency, Latency: time.Hour}, want: "needs latency"},
		{name: "status-not-an-error", fault: Fault{Integration: "a", Kind: ErrorStatus, Status: 200}, want: "status must be"},
		{name: "status-on-other-kind", fault: Fault{Integration: "a", Kind: Reset, Status: 503}, want: "status applies"},
		{name: "route-not-a-template", fault: Fault{Integration: "a", Kind: Reset, Route: "v1/x"}, want: "route must"},
		{name: "oversize-too-big", fault: Fault{Integration: "a", Kind: Oversize, Size: 2 << 30}, want: "size must"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.fault.Validate()
			if tc.want == "" {
				if err != nil {
					t.Errorf("Validate: %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate: %v, want ErrInvalid mentioning %q", err, tc.want)
			}
		})
	}
}

func TestCounterSurvivesRebuild(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := NewInjector(nil, true, nil, WithRegistry(reg))
	b := NewInjector(nil, true, nil, WithRegistry(reg))
	if a.counter != b.counter {
		t.Error("a rebuilt Injector registered a second counter instead of reusing the first")
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func TestTruncatedBodyEndsInUnexpectedEOF(t *testing.T) {
	next := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return synthetic(r, 200, "", vendorBody, nil), nil
	})
	inj := NewInjector(next, true, nil)
	if _, err := inj.Set(Fault{Integration: "maps", Kind: Truncate}); err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("GET", "http://v/x", nil)
	resp, err := inj.RoundTrip(req.WithContext(WithTarget(req.Context(), "maps", "/x")))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if !errors.Is(err, io.ErrUnexpectedEOF) || string(body) != vendorBody[:len(vendorBody)/2] || resp.ContentLength != int64(len(vendorBody)) {
		t.Errorf("read %q (Content-Length %d), err %v: want the first half, the full length announced, then unexpected EOF", body, resp.ContentLength, err)
	}
}
