package observe

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// requestFamilies is the text form of m's request-path metrics.
func requestFamilies(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		switch mf.GetName() {
		case "portcullis_requests_total", "portcullis_request_duration_seconds", "portcullis_upstream_duration_seconds":
			if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
				t.Fatal(err)
			}
		}
	}
	return b.String()
}

// TestObserveSeries: Observe, through its cache of children, gives the
// series that updating the vectors directly gives, and makes no upstream
// series for an integration the vendor never answered for.
func TestObserveSeries(t *testing.T) {
	recs := []*Record{
		{Integration: "pay", Route: "/v1/a", Caller: "billing", Status: 200, Attempts: 1, UpstreamLatency: 3 * time.Millisecond},
		{Integration: "pay", Route: "/v1/a", Caller: "billing", Status: 200, Attempts: 2, UpstreamLatency: 40 * time.Millisecond},
		{Integration: "pay", Route: "/v1/a", Caller: "billing", Status: 503, Attempts: 1, ErrorCode: "upstream_error"},
		{Integration: "mail", Route: "/send", Caller: "ops", Status: 401, ErrorCode: "unauthenticated"},
		{Status: 404, ErrorCode: "unknown_integration"},
	}
	got, want := NewMetrics(), NewMetrics()
	for i, r := range recs {
		got.Observe(r, float64(i)/100)
		want.Requests.WithLabelValues(r.Integration, r.Route, r.Caller, StatusClass(r.Status), r.ErrorCode).Inc()
		want.Duration.WithLabelValues(r.Integration, r.Route, r.Caller).Observe(float64(i) / 100)
		if r.Attempts > 0 {
			want.Upstream.WithLabelValues(r.Integration).Observe(r.UpstreamLatency.Seconds())
		}
	}
	g, w := requestFamilies(t, got.Registry), requestFamilies(t, want.Registry)
	if g != w {
		t.Fatalf("series differ\ngot:\n%s\nwant:\n%s", g, w)
	}
	if strings.Contains(g, `portcullis_upstream_duration_seconds_count{integration="mail"}`) {
		t.Errorf("upstream series for an integration with no vendor call:\n%s", g)
	}
}

func BenchmarkObserve(b *testing.B) {
	m := NewMetrics()
	r := benchRecord()
	b.ReportAllocs()
	for b.Loop() {
		m.Observe(r, 0.0012)
	}
}
