package anomaly

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/portcullis-dev/portcullis/internal/clock"
)

func newTestHub(t *testing.T, sinks []*SinkSpec, opts ...HubOption) (*Hub, *clock.Fake, *bytes.Buffer, *prometheus.Registry) {
	t.Helper()
	clk := clock.NewFake(monday)
	var logs bytes.Buffer
	reg := prometheus.NewRegistry()
	// The sinks are httptest servers on loopback ports chosen at run time;
	// webhook_test.go tests the egress-guarded client the gateway passes.
	opts = append([]HubOption{WithHTTPClient(&http.Client{Transport: &http.Transport{}})}, opts...)
	h, err := NewHub(sinks, slog.New(slog.NewJSONHandler(&logs, nil)), reg, append([]HubOption{WithClock(clk)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close(context.Background()) })
	return h, clk, &logs, reg
}

func TestHubDeduplicates(t *testing.T) {
	h, clk, logs, _ := newTestHub(t, []*SinkSpec{{Type: "log"}}, WithDedupeWindow(10*time.Minute))
	e := Event{Kind: KindSizeAnomaly, Integration: "payments", Route: "GET /v1/x", Message: "size up"}
	h.Emit(e)
	clk.Advance(5 * time.Minute)
	h.Emit(e) // within the window: dropped
	clk.Advance(6 * time.Minute)
	h.Emit(e) // window passed since the last delivery: delivered
	if got := len(h.Recent(0)); got != 2 {
		t.Errorf("Recent() has %d events, want 2", got)
	}
	if got := strings.Count(logs.String(), `"msg":"anomaly"`); got != 2 {
		t.Errorf("log sink got %d events, want 2", got)
	}
	if got := testutil.ToFloat64(h.m.suppressed.WithLabelValues("duplicate")); got != 1 {
		t.Errorf("suppressed{duplicate} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(h.m.events.WithLabelValues(string(KindSizeAnomaly))); got != 2 {
		t.Errorf("portcullis_anomaly_events_total{kind=size_anomaly} = %v, want 2", got)
	}
}

func TestHubRateLimitsDelivery(t *testing.T) {
	h, _, logs, _ := newTestHub(t, []*SinkSpec{{Type: "log"}}, WithRateLimit(0, 2))
	for i := range 5 {
		h.Emit(Event{Kind: KindErrorRate, Integration: "i", Message: "x", Key: string(rune('a' + i))})
	}
	if got := strings.Count(logs.String(), `"msg":"anomaly"`); got != 2 {
		t.Errorf("log sink got %d events, want 2 (burst)", got)
	}
	if got := len(h.Recent(0)); got != 5 {
		t.Errorf("Recent() has %d events, want all 5: rate limiting skips delivery, not the record", got)
	}
	if got := testutil.ToFloat64(h.m.suppressed.WithLabelValues("rate_limited")); got != 3 {
		t.Errorf("suppressed{rate_limited} = %v, want 3", got)
	}
}

func TestHubRecentNewestFirst(t *testing.T) {
	h, clk, _, _ := newTestHub(t, nil, WithRingSize(3))
	for _, k := range []string{"a", "b", "c", "d"} {
		h.Emit(Event{Kind: KindSchemaDrift, Message: k, Key: k})
		clk.Advance(time.Second)
	}
	var got []string
	for _, e := range h.Recent(0) {
		got = append(got, e.Message)
	}
	if diff := cmp.Diff([]string{"d", "c", "b"}, got); diff != "" {
		t.Errorf("Recent(0) (-want +got):\n%s", diff)
	}
	if got := h.Recent(1); len(got) != 1 || got[0].Message != "d" {
		t.Errorf("Recent(1) = %+v, want just d", got)
	}
}

func TestHubWebhookPayloads(t *testing.T) {
	tests := []struct {
		name   string
		format string
		want   string
	}{
		{"json", "", `{"kind":"caller_volume","integration":"payments","caller":"reports","message":"caller reports making 30x its usual calls at 03:00 <b>","time":"2026-11-02T00:00:00Z","key":"caller_volume|payments||reports"}`},
		{"slack", "slack", `{"text":":rotating_light: *caller_volume* · payments · reports\ncaller reports making 30x its usual calls at 03:00 &lt;b&gt;"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := make(chan string, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
					t.Errorf("got %s with Content-Type %q, want a JSON POST", r.Method, r.Header.Get("Content-Type"))
				}
				got <- string(b)
			}))
			defer srv.Close()
			h, _, _, _ := newTestHub(t, []*SinkSpec{{Type: "webhook", URL: srv.URL, Format: tc.format}})
			h.Emit(Event{Kind: KindCallerVolume, Integration: "payments", Caller: "reports", Message: "caller reports making 30x its usual calls at 03:00 <b>"})
			select {
			case body := <-got:
				if !json.Valid([]byte(body)) {
					t.Fatalf("payload is not JSON: %s", body)
				}
				if diff := cmp.Diff(tc.want, body); diff != "" {
					t.Errorf("payload (-want +got):\n%s", diff)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("webhook never called")
			}
		})
	}
}

func TestHubWebhookFailureDoesNotLogURL(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer srv.Close()
	secretURL := srv.URL + "/services/T000/B000/XXXXsecrettoken"
	h, _, logs, _ := newTestHub(t, []*SinkSpec{{Type: "webhook", URL: secretURL, Format: "slack"}})
	h.Emit(Event{Kind: KindCredentialRevoked, Integration: "payments", Message: "revoked"})
	if err := h.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(h.m.deliveries.WithLabelValues("0", "error")); got != 1 {
		t.Errorf("deliveries{sink=0,result=error} = %v, want 1", got)
	}
	if !strings.Contains(logs.String(), "alert webhook delivery failed") {
		t.Errorf("no failure log line: %s", logs.String())
	}
	if strings.Contains(logs.String(), "secrettoken") {
		t.Errorf("the webhook URL (a credential for Slack) reached the log: %s", logs.String())
	}
	h.Emit(Event{Kind: KindCredentialRevoked, Message: "after close"}) // must not panic
}

func TestNewHubRejectsBadSinks(t *testing.T) {
	tests := []struct {
		name  string
		sinks []*SinkSpec
	}{
		{"nil-sink", []*SinkSpec{nil}},
		{"unknown-type", []*SinkSpec{{Type: "pagerduty"}}},
		{"webhook-without-url", []*SinkSpec{{Type: "webhook"}}},
		{"bad-format", []*SinkSpec{{Type: "webhook", URL: "http://127.0.0.1:1/", Format: "xml"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewHub(tc.sinks, nil, nil); !errors.Is(err, ErrSink) {
				t.Errorf("NewHub() error = %v, want ErrSink", err)
			}
		})
	}
}

func TestNewHubTwiceOnOneRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	for range 2 {
		if _, err := NewHub(nil, nil, reg); err != nil {
			t.Fatalf("NewHub on a registry that already has the hub's metrics (config reload): %v", err)
		}
	}
}

func TestDetectorThroughHub(t *testing.T) {
	h, _, _, reg := newTestHub(t, nil)
	d := NewDetector(Config{}, clock.NewFake(monday), h)
	end := simulate(d, monday, 120, func(int, time.Time) []traffic { return steady() })
	simulate(d, end, 10, func(int, time.Time) []traffic {
		tr := steady()
		tr[0].bytes *= 8
		return tr
	})
	got := h.Recent(0)
	if len(got) != 1 || got[0].Kind != KindSizeAnomaly {
		t.Fatalf("Recent() = %+v, want one size_anomaly", got)
	}
	n, err := testutil.GatherAndCount(reg, "portcullis_anomaly_events_total")
	if err != nil || n != 1 {
		t.Errorf("portcullis_anomaly_events_total series = %d (%v), want 1", n, err)
	}
}
