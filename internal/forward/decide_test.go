package forward

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/portcullis-dev/portcullis/internal/egress"
	"github.com/portcullis-dev/portcullis/internal/identity"
	"github.com/prometheus/client_golang/prometheus"
)

const decideConfig = `
version: 1
callers:
  billing: {tokens: ["$HASH_billing"]}
  support: {tokens: ["$HASH_support"]}
  ops: {tokens: ["$HASH_ops"]}
  mapsonly: {tokens: ["$HASH_mapsonly"]}
  nobody: {tokens: ["$HASH_nobody"]}
integrations:
  a-payments:
    upstream: https://api.pay.example
    egress: {allow: ["api.pay.example:443", "*.files.pay.example:443"]}
    routes: [{method: POST, path: /v1/charges, callers: [billing]}]
    proxy: {}
  b-maps:
    upstream: https://maps.example
    egress: {allow: ["maps.example:443"]}
    routes: [{method: GET, path: /v1/tiles, callers: [mapsonly, billing]}]
  c-crm:
    upstream: https://crm.example
    egress: {allow: ["crm.example:443", "api.pay.example:443"]}
    proxy: {mode: report, connect_callers: [support]}
  d-legacy:
    upstream: https://legacy.example
    egress: {allow: ["legacy.example:443"]}
    proxy: {mode: open, connect_callers: [ops, support]}
`

func TestDecide(t *testing.T) {
	f := newFixture(t, newPKI(t), nil, decideConfig, nil)
	tests := []struct {
		name  string
		args  Args
		want  Decision
		errIs error
	}{
		{"route-holder-on-allowlist", Args{"billing", "api.pay.example", "443"}, Decision{Verdict: VerdictAllow, Integration: "a-payments"}, nil},
		{"wildcard-entry", Args{"billing", "eu.files.pay.example", "443"}, Decision{Verdict: VerdictAllow, Integration: "a-payments"}, nil},
		{"wrong-port", Args{"billing", "api.pay.example", "80"}, Decision{}, ErrNotAllowed},
		{"unlisted-host", Args{"billing", "evil.example", "443"}, Decision{}, ErrNotAllowed},
		{"host-of-integration-without-proxy-block", Args{"billing", "maps.example", "443"}, Decision{}, ErrNotAllowed},
		{"caller-with-routes-only-without-proxy-block", Args{"mapsonly", "maps.example", "443"}, Decision{}, ErrNotProxyCaller},
		{"caller-of-nothing", Args{"nobody", "api.pay.example", "443"}, Decision{}, ErrNotProxyCaller},
		{"other-callers-integration", Args{"billing", "crm.example", "443"}, Decision{}, ErrOtherIntegration},
		{"connect-caller-listed", Args{"support", "crm.example", "443"}, Decision{Verdict: VerdictAllow, Integration: "c-crm"}, nil},
		{"shared-host-first-integration-the-caller-may-use", Args{"support", "api.pay.example", "443"}, Decision{Verdict: VerdictAllow, Integration: "c-crm"}, nil},
		{"open-beats-report", Args{"support", "anything.example", "8443"}, Decision{Verdict: VerdictOpen, Integration: "d-legacy"}, nil},
		{"open-mode", Args{"ops", "anything.example", "22"}, Decision{Verdict: VerdictOpen, Integration: "d-legacy"}, nil},
		{"ip-literal-not-listed", Args{"billing", "192.0.2.1", "443"}, Decision{}, ErrNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := f.proxy.Decide(tt.args)
			if !errors.Is(err, tt.errIs) || (tt.errIs == nil) != (err == nil) {
				t.Fatalf("err %v, want %v", err, tt.errIs)
			}
			if d := cmp.Diff(tt.want, got, cmpopts.IgnoreUnexported(Decision{})); d != "" {
				t.Errorf("decision (-want +got):\n%s", d)
			}
		})
	}
}

func TestDecideReportModeWouldDeny(t *testing.T) {
	const cfg = `
version: 1
callers:
  support: {tokens: ["$HASH_support"]}
  billing: {tokens: ["$HASH_billing"]}
integrations:
  crm:
    upstream: https://crm.example
    egress: {allow: ["crm.example:443"]}
    proxy: {mode: report, connect_callers: [support]}
  payments:
    upstream: https://api.pay.example
    egress: {allow: ["api.pay.example:443"]}
    proxy: {connect_callers: [billing]}
`
	f := newFixture(t, newPKI(t), nil, cfg, nil)
	tests := []struct {
		name, host, wouldDeny string
	}{
		{"unlisted", "evil.example", "target not on the egress allowlist of any integration the caller may use"},
		{"another-integrations-host", "api.pay.example", "target belongs to an integration the caller may not use (payments)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := f.proxy.Decide(Args{"support", tt.host, "443"})
			if err != nil {
				t.Fatal(err)
			}
			want := Decision{Verdict: VerdictReport, Integration: "crm", WouldDeny: tt.wouldDeny}
			if d := cmp.Diff(want, got, cmpopts.IgnoreUnexported(Decision{})); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestNewRejectsBadEgressAndNilAuth(t *testing.T) {
	ins := map[string]Integration{
		"x": {Egress: egress.Spec{Allow: []string{"*.com:443"}}, Proxy: &ProxySpec{Mode: "enforce"}},
	}
	auth, _ := identity.New(nil)
	if _, err := New(ins, auth, Options{}); err == nil {
		t.Error("New accepted a wildcard over a public suffix")
	}
	if _, err := New(nil, nil, Options{}); err == nil {
		t.Error("New accepted a nil authenticator")
	}
}

// The lead builds Metrics once, but a second NewMetrics on the same
// registry (a reload that rebuilds them) must neither panic nor split the
// series.
func TestMetricsReRegistration(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := NewMetrics(reg)
	b := NewMetrics(reg)
	b.Requests.WithLabelValues("connect", "x", "y", "allow", "").Inc()
	if got := metricValue(a.Requests.WithLabelValues("connect", "x", "y", "allow", "")); got != 1 {
		t.Errorf("second NewMetrics did not reuse the registered collector: %v", got)
	}
	if _, err := reg.Gather(); err != nil {
		t.Fatal(err)
	}
}

// TestRecordSeries: the children record keeps per label set are the
// vectors' own series, so /metrics counts every event as before, and a
// refused request touches no tunnel series.
func TestRecordSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	p := &Proxy{metrics: m}
	tun := &event{kind: kindConnect, integration: "x", caller: "y", closeReason: CloseEOF, bytesIn: 10, bytesOut: 20}
	p.record(tun, VerdictAllow, 30*time.Millisecond)
	p.record(tun, VerdictAllow, 2*time.Second)
	p.record(&event{kind: kindConnect, integration: "x", caller: "y", code: "egress_denied"}, VerdictDeny, time.Millisecond)
	for _, c := range []struct {
		name string
		m    prometheus.Metric
		want float64
	}{
		{"requests allow", m.Requests.WithLabelValues("connect", "x", "y", "allow", ""), 2},
		{"requests deny", m.Requests.WithLabelValues("connect", "x", "y", "deny", "egress_denied"), 1},
		{"closed", m.Closed.WithLabelValues("x", CloseEOF), 2},
		{"bytes in", m.Bytes.WithLabelValues("x", "y", "in"), 20},
		{"bytes out", m.Bytes.WithLabelValues("x", "y", "out"), 40},
	} {
		if got := metricValue(c.m); got != c.want {
			t.Errorf("%s = %v, want %v", c.name, got, c.want)
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "portcullis_proxy_tunnel_duration_seconds" {
			if n := mf.GetMetric()[0].GetHistogram().GetSampleCount(); n != 2 {
				t.Errorf("duration samples = %d, want 2", n)
			}
		}
	}
	m.activeGauge("x", "y").Inc()
	m.activeGauge("x", "y").Inc()
	if got := metricValue(m.Active.WithLabelValues("x", "y")); got != 2 {
		t.Errorf("active = %v, want 2", got)
	}
}
