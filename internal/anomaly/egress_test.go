package anomaly

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/portcullis-dev/portcullis/internal/egress"
)

// Issue 13 item 8: alert webhooks go through the internal_egress policy.

func counting(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if h != nil {
			h(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// deliverOne emits one event to a hub with a single webhook sink and
// returns the delivery results once the sink has finished.
func deliverOne(t *testing.T, sinkURL string, allow []string) (ok, failed float64) {
	t.Helper()
	p, err := egress.NewInternalPolicy(allow, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	h, err := NewHub([]*SinkSpec{{Type: "webhook", URL: sinkURL}}, slog.New(slog.DiscardHandler), reg,
		WithHTTPClient(p.Client(5*time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	h.Emit(Event{Kind: KindSizeAnomaly, Integration: "payments", Message: "size up"})
	if err := h.Close(context.Background()); err != nil { // waits for the sink
		t.Fatal(err)
	}
	return testutil.ToFloat64(h.m.deliveries.WithLabelValues("0", "ok")), testutil.ToFloat64(h.m.deliveries.WithLabelValues("0", "error"))
}

func TestAlertWebhookEgress(t *testing.T) {
	t.Run("allow-listed-internal-sink-is-delivered", func(t *testing.T) {
		sink, hits := counting(t, nil)
		u, _ := url.Parse(sink.URL)
		if ok, _ := deliverOne(t, sink.URL, []string{u.Host}); ok != 1 || hits.Load() != 1 {
			t.Errorf("delivered %v, sink hits %d; want 1 and 1", ok, hits.Load())
		}
	})

	t.Run("sink-not-on-internal-allowlist-is-refused", func(t *testing.T) {
		sink, hits := counting(t, nil)
		if _, failed := deliverOne(t, sink.URL, []string{"alerts.corp.example:443"}); failed != 1 {
			t.Errorf("failed deliveries %v, want 1", failed)
		}
		if hits.Load() != 0 {
			t.Errorf("the sink received %d posts, want 0", hits.Load())
		}
	})

	t.Run("redirect-is-not-followed", func(t *testing.T) {
		internal, hits := counting(t, nil)
		sink, _ := counting(t, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, internal.URL+"/admin", http.StatusTemporaryRedirect)
		})
		su, _ := url.Parse(sink.URL)
		iu, _ := url.Parse(internal.URL)
		// Even with the redirect target on the allowlist, a 3xx is a failed
		// delivery, not a hop.
		if _, failed := deliverOne(t, sink.URL, []string{su.Host, iu.Host}); failed != 1 {
			t.Errorf("failed deliveries %v, want 1", failed)
		}
		if hits.Load() != 0 {
			t.Errorf("the redirect target received %d posts, want 0", hits.Load())
		}
	})

	t.Run("environment-proxy-is-ignored", func(t *testing.T) {
		proxy, proxied := counting(t, nil)
		t.Setenv("HTTP_PROXY", proxy.URL)
		t.Setenv("HTTPS_PROXY", proxy.URL)
		if _, failed := deliverOne(t, "http://alerts.portcullis.invalid/hook", []string{"alerts.portcullis.invalid:80"}); failed != 1 {
			t.Errorf("failed deliveries %v, want 1 (the name does not resolve)", failed)
		}
		if proxied.Load() != 0 {
			t.Errorf("the environment's proxy received %d alert posts, want 0", proxied.Load())
		}
	})

	t.Run("no-client-is-an-error", func(t *testing.T) {
		for _, opts := range [][]HubOption{nil, {WithHTTPClient(&http.Client{})}} {
			_, err := NewHub([]*SinkSpec{{Type: "webhook", URL: "http://127.0.0.1:7000/alerts"}}, nil, nil, opts...)
			if !errors.Is(err, ErrSink) {
				t.Errorf("NewHub without an egress client: err = %v, want ErrSink", err)
			}
		}
	})
}
