package validate

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/portcullis-dev/portcullis/internal/anomaly"
)

func TestObserversRecordResults(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	var log eventLog
	var logs bytes.Buffer
	v := New(mustLoad(t, "testdata/pets30.yaml"), ModeReport, 0, 0).With(Observers{
		Integration: "pets", Metrics: m, Emit: log.emit,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
	})
	route := "/v1/pets/{id}"
	v.Check("GET", route, 200, jsonHeader(), []byte(validPet))
	v.Check("GET", route, 200, jsonHeader(), []byte(`{"id":"secret-value-123"}`))
	v.Check("GET", route, 500, jsonHeader(), []byte(`{}`))

	tests := []struct {
		name   string
		result string
		want   float64
	}{
		{"valid-counted", "valid", 1},
		{"schema-violation-counted", "schema", 1},
		{"status-violation-counted", "status", 1},
		{"nothing-else", "too_large", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := testutil.ToFloat64(m.checks.WithLabelValues("pets", "GET "+route, tc.result))
			if got != tc.want {
				t.Errorf("portcullis_validation_total{result=%q} = %v, want %v", tc.result, got, tc.want)
			}
		})
	}
	wantKinds := []anomaly.Kind{anomaly.KindValidationFailed, anomaly.KindValidationFailed}
	var gotKinds []anomaly.Kind
	for _, e := range log.events {
		gotKinds = append(gotKinds, e.Kind)
		if e.Integration != "pets" || e.Route != "GET "+route {
			t.Errorf("event %+v: want integration pets, route GET %s", e, route)
		}
	}
	if diff := cmp.Diff(wantKinds, gotKinds); diff != "" {
		t.Errorf("event kinds (-want +got):\n%s", diff)
	}
	if n := strings.Count(logs.String(), "vendor response does not match its spec"); n != 2 {
		t.Errorf("report mode logged %d violations, want 2:\n%s", n, logs.String())
	}
	if strings.Contains(logs.String(), "secret-value-123") || strings.Contains(log.messages()[0], "secret-value-123") {
		t.Error("a body value reached a log line or an event")
	}
}

func TestNewMetricsTwiceOnOneRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewMetrics(reg)
	if err != nil {
		t.Fatalf("second NewMetrics on the same registry (config reload): %v", err)
	}
	(&routeObs{route: "GET /x"}).record(Observers{Integration: "i", Metrics: a}, nil, 0)
	(&routeObs{route: "GET /x"}).record(Observers{Integration: "i", Metrics: b}, nil, 0)
	if got := testutil.ToFloat64(a.checks.WithLabelValues("i", "GET /x", "valid")); got != 2 {
		t.Errorf("both metrics sets must count on the same series: got %v, want 2", got)
	}
}
