package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/portcullis-dev/portcullis/internal/clock"
	"github.com/portcullis-dev/portcullis/internal/secret"
)

func TestHealth(t *testing.T) {
	busy := func(req, c5 uint64) Snapshot {
		w := Window{Requests: req, Errors5xx: c5}
		if req > 0 {
			w.Rate5xx = float64(c5) / float64(req)
		}
		return Snapshot{Minute: w}
	}
	tests := []struct {
		name        string
		v           IntegrationView
		wantLevel   string
		wantReasons []string
	}{
		{name: "quiet", v: IntegrationView{Breaker: "closed", Limiter: LimiterView{VendorRemaining: -1}}, wantLevel: "ok", wantReasons: []string{}},
		{name: "healthy-traffic", v: IntegrationView{Breaker: "closed", Traffic: busy(100, 0), Limiter: LimiterView{VendorRemaining: 4000}}, wantLevel: "ok", wantReasons: []string{}},
		{name: "breaker-open", v: IntegrationView{Breaker: "open", Limiter: LimiterView{VendorRemaining: -1}}, wantLevel: "bad",
			wantReasons: []string{"circuit breaker open"}},
		{name: "many-5xx", v: IntegrationView{Breaker: "closed", Traffic: busy(20, 5), Limiter: LimiterView{VendorRemaining: -1}}, wantLevel: "bad",
			wantReasons: []string{"25% 5xx in the last minute"}},
		{name: "few-requests-all-5xx-warns", v: IntegrationView{Breaker: "closed", Traffic: busy(2, 2), Limiter: LimiterView{VendorRemaining: -1}}, wantLevel: "warn",
			wantReasons: []string{"2 5xx in the last minute"}},
		{name: "one-5xx-in-many-warns", v: IntegrationView{Breaker: "closed", Traffic: busy(200, 1), Limiter: LimiterView{VendorRemaining: -1}}, wantLevel: "warn",
			wantReasons: []string{"1 5xx in the last minute"}},
		{name: "half-open", v: IntegrationView{Breaker: "half-open", Limiter: LimiterView{VendorRemaining: -1}}, wantLevel: "warn",
			wantReasons: []string{"circuit breaker half-open"}},
		{name: "vendor-quota-spent", v: IntegrationView{Breaker: "closed", Limiter: LimiterView{VendorRemaining: 0}}, wantLevel: "warn",
			wantReasons: []string{"vendor quota spent"}},
		{name: "vendor-pause", v: IntegrationView{Breaker: "closed", Limiter: LimiterView{VendorRemaining: 0, PausedUntil: t0}}, wantLevel: "warn",
			wantReasons: []string{"paused by the vendor's rate limit"}},
		{name: "bulkhead-full", v: IntegrationView{Breaker: "closed", InFlight: 95, MaxInFlight: 100, Limiter: LimiterView{VendorRemaining: -1}}, wantLevel: "warn",
			wantReasons: []string{"bulkhead nearly full"}},
		{name: "credential-revoked", v: IntegrationView{Breaker: "closed", Limiter: LimiterView{VendorRemaining: -1}, Credential: &CredentialView{Revoked: true}},
			wantLevel: "bad", wantReasons: []string{"credential revoked by the vendor"}},
		{name: "credential-overdue", v: IntegrationView{Breaker: "closed", Limiter: LimiterView{VendorRemaining: -1}, Credential: &CredentialView{Overdue: true}},
			wantLevel: "warn", wantReasons: []string{"credential older than its max_age"}},
		{name: "kill-switch-wins", v: IntegrationView{Disabled: true, Breaker: "open", Limiter: LimiterView{VendorRemaining: -1}}, wantLevel: "off",
			wantReasons: []string{"kill switch on: calls refused", "circuit breaker open"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			level, reasons := health(&tt.v)
			if level != tt.wantLevel {
				t.Errorf("level %q, want %q", level, tt.wantLevel)
			}
			if d := cmp.Diff(tt.wantReasons, reasons); d != "" {
				t.Errorf("reasons (-want +got):\n%s", d)
			}
		})
	}
}

// TestNoSecretsInState feeds every source a canary in a field the page
// has no use for, and checks none of it reaches the page's JSON.
func TestNoSecretsInState(t *testing.T) {
	leaky := `{"integrations":[{"name":"payments","upstream":"https://REDACTED@api.example","routes":1,
		"status":{"breaker":"closed","credential":{"type":"bearer","ref":"env:KEY","value":"` + canaryVendorKey + `",
		"version":"v3","created":"2026-07-01T00:00:00Z"},"secret":"` + canaryVendorKey + `"}}]}`
	d := New(Options{
		Token:        func() (secret.Value, bool) { return secret.New(canaryAdmin), true },
		Integrations: func(context.Context) ([]byte, error) { return []byte(leaky), nil },
		Anomalies: func(int) any {
			return []map[string]any{{"kind": "validation_failed", "field": "$.card.number", "rule": "pattern",
				"value": canaryVendorKey, "sample": canaryVendorKey}}
		},
		Findings: func() any {
			return []map[string]any{{"id": "credential-age", "severity": "high", "message": "rotate it", "secret": canaryAdmin}}
		},
		Clock: clock.NewFake(t0),
	})
	var buf strings.Builder
	st := d.State(context.Background(), "admin:test")
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	buf.Write(b)
	for _, canary := range []string{canaryVendorKey, canaryAdmin, "env:KEY"} {
		if strings.Contains(buf.String(), canary) {
			t.Errorf("state holds %q", canary)
		}
	}
	// ...while what the page needs is there.
	for _, want := range []string{`"version":"v3"`, `"field":"$.card.number"`, `"rule":"pattern"`, `"id":"credential-age"`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("state lacks %s", want)
		}
	}
}

func TestStateSurvivesBrokenSources(t *testing.T) {
	d := New(Options{
		Token:        func() (secret.Value, bool) { return secret.New(canaryAdmin), true },
		Integrations: func(context.Context) ([]byte, error) { return nil, errors.New("admin API down") },
		Anomalies:    func(int) any { return "not a list" },
		QueueStats:   func(context.Context) (int, time.Time, error) { return 3, t0.Add(-time.Minute), nil },
		Clock:        clock.NewFake(t0),
	})
	st := d.State(context.Background(), "admin:test")
	if d := cmp.Diff([]string{"integrations", "anomalies"}, st.Problems); d != "" {
		t.Errorf("problems (-want +got):\n%s", d)
	}
	if st.Queue == nil || st.Queue.Depth != 3 || st.Queue.OldestSeconds != 60 {
		t.Errorf("queue = %+v, want depth 3, oldest 60 s", st.Queue)
	}
}

func TestCredentialAge(t *testing.T) {
	r := newRig(t, rigOptions{})
	r.drive(t, 1) // resolves the credential
	now := time.Now()
	d := New(Options{Series: r.series, Token: r.dash.o.Token, Config: r.gw.Config, Clock: clock.NewFake(now.Add(91 * 24 * time.Hour))})
	d.admin = r.dash.admin
	st := d.State(context.Background(), "admin:test")
	var cred *CredentialView
	for _, in := range st.Integrations {
		if in.Name == "payments" {
			cred = in.Credential
		}
	}
	if cred == nil {
		t.Fatal("payments has no credential view")
	}
	if cred.Type != "bearer" || cred.MaxAgeSeconds != 90*24*3600 || !cred.Overdue || cred.AgeSeconds < 91*24*3600-60 {
		t.Errorf("credential view %+v: want bearer, max_age 90d, overdue at 91 days", cred)
	}
}

func TestActions(t *testing.T) {
	r := newRig(t, rigOptions{})
	c := r.newClient(t)
	c.login(canaryAdmin)
	hdr := map[string]string{CSRFHeader: "", "Content-Type": "application/json"}
	post := func(path, body string) (int, string) {
		hdr[CSRFHeader] = c.csrf
		resp, b := c.do("POST", path, strings.NewReader(body), hdr)
		return resp.StatusCode, b
	}
	tests := []struct {
		name       string
		path, body string
		wantStatus int
		check      func(t *testing.T)
	}{
		{name: "refresh-credential", path: "/ui/api/integrations/payments/refresh-credentials", wantStatus: 200},
		{name: "refresh-without-credential", path: "/ui/api/integrations/maps/refresh-credentials", wantStatus: 200},
		{name: "chaos-start", path: "/ui/api/chaos/start", body: `{"integration":"payments","kind":"error","for":"1m"}`, wantStatus: 200,
			check: func(t *testing.T) {
				if status, _ := r.call(t, "/payments/v1/charges/ch_1"); status != 503 {
					t.Errorf("call during an error fault: %d, want 503", status)
				}
			}},
		{name: "chaos-start-bad-kind", path: "/ui/api/chaos/start", body: `{"integration":"payments","kind":"oversize"}`, wantStatus: 400},
		{name: "chaos-start-unknown-field", path: "/ui/api/chaos/start", body: `{"integration":"payments","kind":"error","size":1}`, wantStatus: 400},
		{name: "chaos-stop", path: "/ui/api/chaos/stop", body: `{"integration":"payments"}`, wantStatus: 200,
			check: func(t *testing.T) {
				if status, _ := r.call(t, "/payments/v1/charges/ch_2"); status != 200 {
					t.Errorf("call after chaos stop: %d, want 200", status)
				}
			}},
		{name: "chaos-stop-bad-name", path: "/ui/api/chaos/stop", body: `{"integration":"../x"}`, wantStatus: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := post(tt.path, tt.body)
			if status != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", status, tt.wantStatus, body)
			}
			if tt.check != nil {
				tt.check(t)
			}
		})
	}
	logs := r.logs.String()
	for _, want := range []string{`"msg":"dashboard action","action":"credential refresh","integration":"payments","by":"admin:`,
		`"action":"chaos start error for 1m","integration":"payments","by":"admin:`} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %s", want)
		}
	}
	if strings.Contains(logs, canaryAdmin) {
		t.Error("the admin token reached the log")
	}
}

func TestSeriesFedByGateway(t *testing.T) {
	r := newRig(t, rigOptions{})
	r.payments.failing.Store(true)
	for range 3 {
		r.call(t, "/payments/v1/charges/ch_1")
	}
	r.call(t, "/nope/v1/x") // unknown integration: not a series
	w := r.series.Snapshot("payments").Minute
	if w.Requests != 3 || w.Errors5xx != 3 || w.VendorCalls != 3 {
		t.Errorf("payments last minute %+v, want 3 requests, 3 5xx, 3 vendor calls", w)
	}
	if _, ok := r.series.m["nope"]; ok {
		t.Error("an unknown integration got a series")
	}
}
