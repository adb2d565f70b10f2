package validate

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"

	"github.com/portcullis-dev/portcullis/internal/anomaly"
)

// gatewayMetrics are the series other packages export that the shipped
// dashboard and alert rules also use.
var gatewayMetrics = []string{
	"portcullis_requests_total", "portcullis_request_duration_seconds", "portcullis_upstream_duration_seconds",
	"portcullis_circuit_breaker_state", "portcullis_vendor_ratelimit_remaining", "portcullis_rate_limited_total",
	"portcullis_bulkhead_in_flight", "portcullis_integration_disabled",
}

// TestDeployFilesUseExportedMetrics checks that the Grafana dashboard and the
// Prometheus rules in deploy/ parse, and name only metrics that exist: the
// validation, drift and alert series are taken from a registry these
// packages filled, so a renamed metric fails here.
func TestDeployFilesUseExportedMetrics(t *testing.T) {
	known := map[string]bool{}
	for _, n := range gatewayMetrics {
		known[n] = true
	}
	for _, n := range exportedNames(t) {
		known[n] = true
	}

	dash, err := os.ReadFile("../../deploy/grafana/portcullis-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(dash, &d); err != nil {
		t.Fatalf("dashboard is not JSON: %v", err)
	}
	rules, err := os.ReadFile("../../deploy/prometheus/portcullis-rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Groups []struct {
			Rules []struct{ Alert, Expr string }
		}
	}
	if err := yaml.Unmarshal(rules, &r); err != nil {
		t.Fatalf("rules are not YAML: %v", err)
	}
	var exprs []string
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, g := range r.Groups {
		for _, rule := range g.Rules {
			exprs = append(exprs, rule.Expr)
		}
	}
	if len(exprs) < 20 {
		t.Fatalf("found %d expressions in the deploy files, want at least 20", len(exprs))
	}
	name := regexp.MustCompile(`portcullis_[a-z_]+`)
	used := map[string]bool{}
	for _, e := range exprs {
		for _, m := range name.FindAllString(e, -1) {
			base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_sum"), "_count")
			used[base] = true
			if !known[base] {
				t.Errorf("deploy files use %s, which nothing exports", m)
			}
		}
	}
	for _, mine := range exportedNames(t) {
		if !used[mine] {
			t.Errorf("%s is exported but neither the dashboard nor the rules use it", mine)
		}
	}
}

// exportedNames fills one registry through validate and anomaly and returns
// the metric family names.
func exportedNames(t *testing.T) []string {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	hub, err := anomaly.NewHub([]*anomaly.SinkSpec{{Type: "webhook", URL: srv.URL}}, nil, reg,
		anomaly.WithHTTPClient(&http.Client{Transport: &http.Transport{}}))
	if err != nil {
		t.Fatal(err)
	}
	spec := mustLoad(t, "testdata/pets30.yaml")
	d := NewDrift(spec, 1, hub.Emit, WithDriftMetrics(m))
	v := New(spec, ModeEnforce, 0, 0).With(Observers{Metrics: m, Drift: d, Emit: hub.Emit})
	v.Check("GET", "/v1/pets/{id}", 200, jsonHeader(), []byte(`{"id":1,"color":"red"}`))
	v.Check("GET", "/v1/pets/{id}", 200, jsonHeader(), []byte(`{"id":1,"color":"red"}`))
	if err := hub.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range fams {
		names = append(names, f.GetName())
	}
	sort.Strings(names)
	want := []string{"portcullis_alert_deliveries_total", "portcullis_anomaly_events_suppressed_total", "portcullis_anomaly_events_total",
		"portcullis_drift_events_total", "portcullis_validation_duration_seconds", "portcullis_validation_total"}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Fatalf("registry holds %v, want %v", names, want)
	}
	return names
}
