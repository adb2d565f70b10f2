package webhook

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/egress"
)

// Issue 13 item 8: forward_to goes through the internal_egress policy.

// forwardThrough accepts one webhook and runs one forwarding pass with a
// client on an internal policy allowing allow; it returns the failed
// forward count.
func forwardThrough(t *testing.T, target string, allow []string) float64 {
	t.Helper()
	p, err := egress.NewInternalPolicy(allow, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, testWebhooks(target))
	f.opts.Client = p.Client(5 * time.Second)
	h, fw := f.handler(), f.forwarder()
	r := f.signed("github", "72d3162e-cc78-11e3-81ab-4c9367dc0958", eventBody, "env:GITHUB")
	r.Header.Set("X-GitHub-Event", "push")
	if rec := serve(h, r); rec.Code != 200 {
		t.Fatalf("accept: %d %s", rec.Code, rec.Body)
	}
	fw.pass(context.Background())
	return metricValue(t, f.metrics.Forwards.WithLabelValues("github", "delivered"))
}

func TestForwardEgress(t *testing.T) {
	t.Run("allow-listed-receiver-gets-it", func(t *testing.T) {
		rcv := newReceiver(t, time.Now)
		rcv.up()
		if n := forwardThrough(t, rcv.url(), []string{rcv.addr}); n != 1 || len(rcv.deliveries()) != 1 {
			t.Errorf("delivered %v, receiver got %d; want 1 and 1", n, len(rcv.deliveries()))
		}
	})

	t.Run("receiver-not-on-internal-allowlist-is-refused", func(t *testing.T) {
		rcv := newReceiver(t, time.Now)
		rcv.up()
		if n := forwardThrough(t, rcv.url(), []string{"hooks.corp.example:7000"}); n != 0 {
			t.Errorf("delivered %v, want 0", n)
		}
		if got := len(rcv.deliveries()); got != 0 {
			t.Errorf("the receiver got %d deliveries, want 0", got)
		}
	})

	t.Run("redirect-is-not-followed", func(t *testing.T) {
		rcv := newReceiver(t, time.Now)
		rcv.up()
		var redirected atomic.Int64
		lb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			redirected.Add(1)
			http.Redirect(w, r, rcv.url(), http.StatusTemporaryRedirect)
		}))
		t.Cleanup(lb.Close)
		lbHost := strings.TrimPrefix(lb.URL, "http://")
		if n := forwardThrough(t, lb.URL+"/hooks", []string{lbHost, rcv.addr}); n != 0 {
			t.Errorf("delivered %v, want 0 (a 3xx is a failure)", n)
		}
		if redirected.Load() != 1 || len(rcv.deliveries()) != 0 {
			t.Errorf("redirector hits %d (want 1), redirect target deliveries %d (want 0)", redirected.Load(), len(rcv.deliveries()))
		}
	})

	t.Run("environment-proxy-is-ignored", func(t *testing.T) {
		var proxied atomic.Int64
		proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { proxied.Add(1) }))
		t.Cleanup(proxy.Close)
		t.Setenv("HTTP_PROXY", proxy.URL)
		t.Setenv("HTTPS_PROXY", proxy.URL)
		if n := forwardThrough(t, "http://hooks.portcullis.invalid:7000/hooks", []string{"hooks.portcullis.invalid:7000"}); n != 0 {
			t.Errorf("delivered %v, want 0 (the name does not resolve)", n)
		}
		if proxied.Load() != 0 {
			t.Errorf("the environment's proxy received %d forwards, want 0", proxied.Load())
		}
	})

	t.Run("no-client-is-an-error", func(t *testing.T) {
		f := newFixture(t, testWebhooks("http://127.0.0.1:7000/hooks"))
		for _, c := range []*http.Client{nil, {}} {
			f.opts.Client = c
			if _, err := NewForwarder(f.webhooks, f.opts); err == nil || !strings.Contains(err.Error(), "Client") {
				t.Errorf("NewForwarder with client %v: err = %v, want an error", c, err)
			}
		}
	})
}
