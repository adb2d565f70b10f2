package webhook

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/portcullis-dev/portcullis/internal/conf"
	"github.com/portcullis-dev/portcullis/internal/store"
)

var eventBody = []byte(`{"type":"invoice.paid","data":{"amount":4200}}`)

// TestRefusals sends one request per refusal the issue lists and checks the
// status, the problem document (which says only the class of failure), the
// metric and the log record.
func TestRefusals(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 5000)
	tests := []struct {
		name       string
		prepare    func(f *fixture) *http.Request
		wantStatus int
		wantCode   string
		wantDetail string
		outcome    string
	}{
		{"missing-headers", func(f *fixture) *http.Request {
			r := f.signed("payments", "msg_1", eventBody, "env:STD_NEW")
			r.Header.Del("Webhook-Signature")
			return r
		}, 400, "webhook_rejected", "signature", "malformed"},
		{"malformed-timestamp", func(f *fixture) *http.Request {
			r := f.signed("payments", "msg_1", eventBody, "env:STD_NEW")
			r.Header.Set("Webhook-Timestamp", "17e8")
			return r
		}, 400, "webhook_rejected", "signature", "malformed"},
		{"bad-signature", func(f *fixture) *http.Request {
			r := f.signed("payments", "msg_1", eventBody, "env:STD_NEW")
			r.Body = httpBody(append([]byte(nil), bytes.Replace(eventBody, []byte("4200"), []byte("9999"), 1)...))
			return r
		}, 401, "webhook_rejected", "signature", "signature"},
		{"wrong-secret", func(f *fixture) *http.Request {
			return f.signed("payments", "msg_1", eventBody, "env:INTERNAL")
		}, 401, "webhook_rejected", "signature", "signature"},
		{"expired", func(f *fixture) *http.Request {
			f.clock.Advance(-6 * time.Minute)
			defer f.clock.Advance(6 * time.Minute)
			return f.signed("payments", "msg_1", eventBody, "env:STD_NEW")
		}, 401, "webhook_rejected", "timestamp", "timestamp"},
		{"future", func(f *fixture) *http.Request {
			f.clock.Advance(6 * time.Minute)
			defer f.clock.Advance(-6 * time.Minute)
			return f.signed("payments", "msg_1", eventBody, "env:STD_NEW")
		}, 401, "webhook_rejected", "timestamp", "timestamp"},
		{"replayed", func(f *fixture) *http.Request {
			h := f.handler()
			if rec := serve(h, f.signed("payments", "msg_1", eventBody, "env:STD_NEW")); rec.Code != 200 {
				t.Fatalf("first delivery: %d %s", rec.Code, rec.Body)
			}
			f.clock.Advance(time.Minute) // the vendor's copy, or an attacker's, a minute later
			return f.signed("payments", "msg_1", eventBody, "env:STD_NEW")
		}, 401, "webhook_rejected", "replay", "replay"},
		{"body-over-limit-declared", func(f *fixture) *http.Request {
			return f.signed("payments", "msg_1", big, "env:STD_NEW")
		}, 400, "webhook_rejected", "body too large", "too_large"},
		{"body-over-limit-chunked", func(f *fixture) *http.Request {
			r := f.signed("payments", "msg_1", big, "env:STD_NEW")
			r.ContentLength = -1
			return r
		}, 400, "webhook_rejected", "body too large", "too_large"},
		{"wrong-content-type", func(f *fixture) *http.Request {
			r := f.signed("payments", "msg_1", eventBody, "env:STD_NEW")
			r.Header.Set("Content-Type", "text/plain")
			return r
		}, 400, "webhook_rejected", "content type", "content_type"},
		{"form-body-on-json-only-scheme", func(f *fixture) *http.Request {
			r := f.signed("stripe", "", eventBody, "env:STRIPE")
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r
		}, 400, "webhook_rejected", "content type", "content_type"},
		{"method-get", func(f *fixture) *http.Request {
			r := f.signed("payments", "msg_1", eventBody, "env:STD_NEW")
			r.Method = http.MethodGet
			return r
		}, 405, "webhook_rejected", "method", "method"},
		{"unknown-path", func(f *fixture) *http.Request {
			r := f.signed("payments", "msg_1", eventBody, "env:STD_NEW")
			r.URL.Path = "/hooks/payments/" // exact match only
			return r
		}, 404, "webhook_rejected", "no webhook at this path", "unknown_path"},
		{"secrets-unavailable", func(f *fixture) *http.Request {
			f.missing["env:STD_NEW"], f.missing["env:STD_OLD"] = true, true
			return f.signed("payments", "msg_1", eventBody, "env:STD_NEW")
		}, 503, "credential_unavailable", "webhook secret unavailable", "unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, testWebhooks("http://127.0.0.1:1/unused"))
			r := tt.prepare(f)
			rec := serve(f.handler(), r)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d (body %s)", rec.Code, tt.wantStatus, rec.Body)
			}
			p := problemBody(t, rec)
			got := map[string]any{"code": p["code"], "detail": p["detail"], "status": p["status"]}
			want := map[string]any{"code": tt.wantCode, "detail": tt.wantDetail, "status": float64(tt.wantStatus)}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("problem document (-want +got):\n%s", diff)
			}
			if rec.Header().Get("X-Portcullis-Error") != tt.wantCode {
				t.Errorf("X-Portcullis-Error = %q", rec.Header().Get("X-Portcullis-Error"))
			}
			// Nothing beyond the class of failure reaches the sender.
			for _, leak := range []string{"Webhook-", "matches no", "secret #", "tolerance", "whsec_", "old,"} {
				if strings.Contains(rec.Body.String(), leak) {
					t.Errorf("problem body %q reveals %q", rec.Body, leak)
				}
			}
			name := "payments"
			if tt.name == "unknown-path" {
				name = "unknown"
			} else if strings.HasPrefix(tt.name, "form-body") {
				name = "stripe"
			}
			if n := f.count(name, tt.outcome); n != 1 {
				t.Errorf("requests_total{webhook=%s,outcome=%s} = %v, want 1", name, tt.outcome, n)
			}
			logs := f.logs.records(t, "webhook refused")
			if len(logs) != 1 || logs[0]["outcome"] != tt.outcome || logs[0]["reason"] == "" {
				t.Errorf("want one 'webhook refused' record with outcome %s and a reason, got %v", tt.outcome, logs)
			}
			for _, s := range testSecrets {
				if strings.Contains(f.logs.String(), s) {
					t.Errorf("a secret value appears in the logs")
				}
			}
			if d, _, _ := f.store.Stats(context.Background(), QueueName(name)); tt.name != "replayed" && d != 0 {
				t.Errorf("a refused webhook was queued (depth %d)", d)
			}
		})
	}
}

func httpBody(b []byte) *readCloser { return &readCloser{bytes.NewReader(b)} }

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

// TestAcceptedPerScheme: each scheme's good request is persisted before the
// 2xx, and the same request again is refused as a replay.
func TestAcceptedAndReplayedPerScheme(t *testing.T) {
	tests := []struct {
		webhook, secret string
	}{
		{"payments", "env:STD_NEW"}, {"payments", "env:STD_OLD"}, {"stripe", "env:STRIPE"},
		{"github", "env:GITHUB"}, {"slack", "env:SLACK"}, {"hmac", "env:HMAC"},
	}
	for _, tt := range tests {
		t.Run(tt.webhook+"-"+strings.ToLower(strings.TrimPrefix(tt.secret, "env:")), func(t *testing.T) {
			f := newFixture(t, testWebhooks("http://127.0.0.1:1/unused"))
			h := f.handler()
			rec := serve(h, f.signed(tt.webhook, "d6b1f6f0-0c2b-4a57-9d4b-6f1a1f6f0c2b", eventBody, tt.secret))
			if rec.Code != http.StatusOK {
				t.Fatalf("first: %d %s", rec.Code, rec.Body)
			}
			depth, _, _ := f.store.Stats(context.Background(), QueueName(tt.webhook))
			if depth != 1 {
				t.Fatalf("queue depth after the 2xx = %d, want 1 (persisted before answering)", depth)
			}
			rec = serve(h, f.signed(tt.webhook, "d6b1f6f0-0c2b-4a57-9d4b-6f1a1f6f0c2b", eventBody, tt.secret))
			if rec.Code != http.StatusUnauthorized || problemBody(t, rec)["detail"] != "replay" {
				t.Fatalf("replay: %d %s", rec.Code, rec.Body)
			}
			if depth, _, _ := f.store.Stats(context.Background(), QueueName(tt.webhook)); depth != 1 {
				t.Errorf("replay was queued: depth %d", depth)
			}
		})
	}
}

// GitHub signs no delivery id: a replay under a fresh id is still caught.
func TestGitHubReplayUnderNewDeliveryID(t *testing.T) {
	f := newFixture(t, testWebhooks("http://127.0.0.1:1/unused"))
	h := f.handler()
	if rec := serve(h, f.signed("github", "11111111-1111-4111-8111-111111111111", eventBody, "env:GITHUB")); rec.Code != 200 {
		t.Fatalf("first: %d %s", rec.Code, rec.Body)
	}
	f.clock.Advance(24 * time.Hour) // no timestamp: the window is the replay TTL
	rec := serve(h, f.signed("github", "22222222-2222-4222-8222-222222222222", eventBody, "env:GITHUB"))
	if rec.Code != http.StatusUnauthorized || problemBody(t, rec)["detail"] != "replay" {
		t.Fatalf("replay under a new delivery id: %d %s", rec.Code, rec.Body)
	}
}

// Replay ids live in the store: a new Handler (a restart) still refuses.
func TestReplayIDsSurviveHandlerRestart(t *testing.T) {
	f := newFixture(t, testWebhooks("http://127.0.0.1:1/unused"))
	if rec := serve(f.handler(), f.signed("payments", "msg_r", eventBody, "env:STD_NEW")); rec.Code != 200 {
		t.Fatalf("first: %d", rec.Code)
	}
	rec := serve(f.handler(), f.signed("payments", "msg_r", eventBody, "env:STD_NEW"))
	if rec.Code != http.StatusUnauthorized || problemBody(t, rec)["detail"] != "replay" {
		t.Fatalf("replay after restart: %d %s", rec.Code, rec.Body)
	}
	// Past the window (2 × tolerance) the id is forgotten, and the timestamp
	// check alone refuses the old copy.
	old := f.signed("payments", "msg_r", eventBody, "env:STD_NEW")
	f.clock.Advance(11 * time.Minute)
	if got, _ := f.store.Get(context.Background(), replayKey("payments", "msg_r")); got != nil {
		t.Errorf("replay id kept past its window")
	}
	rec = serve(f.handler(), old)
	if rec.Code != http.StatusUnauthorized || problemBody(t, rec)["detail"] != "timestamp" {
		t.Errorf("old copy after the window: %d %s, want 401 timestamp", rec.Code, rec.Body)
	}
}

func TestRateLimitPerSource(t *testing.T) {
	wh := testWebhooks("")
	wh["payments"].RateLimit = conf.Rate{PerSecond: 1} // burst 2
	f := newFixture(t, wh)
	h := f.handler()
	send := func(src string) int {
		r := f.signed("payments", newID("msg_"), eventBody, "env:STD_NEW")
		r.RemoteAddr = src
		return serve(h, r).Code
	}
	got := []int{send("198.51.100.1:1"), send("198.51.100.1:2"), send("198.51.100.1:3"), send("198.51.100.2:1"),
		send("[2001:db8::1]:1"), send("[2001:db8::2]:1"), send("[2001:db8::3]:1")}
	want := []int{200, 200, 429, 200, 200, 200, 429} // one IPv6 /64 is one source
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
	f.clock.Advance(time.Second)
	if c := send("198.51.100.1:4"); c != 200 {
		t.Errorf("after a second the source may send again: got %d", c)
	}
	if n := f.count("payments", "rate_limited"); n != 2 {
		t.Errorf("rate_limited count = %v, want 2", n)
	}
}

func TestBadSignatureBurstRaisesOneAlert(t *testing.T) {
	f := newFixture(t, testWebhooks(""))
	f.opts.BurstThreshold, f.opts.BurstWindow = 5, time.Minute
	h := f.handler()
	bad := func() {
		r := f.signed("payments", newID("msg_"), eventBody, "env:INTERNAL") // not a payments secret
		if c := serve(h, r).Code; c != 401 {
			t.Fatalf("bad signature answered %d", c)
		}
	}
	for range 4 {
		bad()
		f.clock.Advance(time.Second)
	}
	if n := len(f.eventsOf(EventBadSignatureBurst)); n != 0 {
		t.Fatalf("alert after 4 bad signatures: %d events", n)
	}
	bad()
	bad()
	bad()
	ev := f.eventsOf(EventBadSignatureBurst)
	if len(ev) != 1 {
		t.Fatalf("want exactly one alert for the burst, got %d", len(ev))
	}
	want := Event{Kind: EventBadSignatureBurst, Webhook: "payments", Source: "203.0.113.7:40000", Count: 5,
		Window: time.Minute, Time: f.clock.Now(), Detail: "5 bad signatures within 1m0s"}
	if diff := cmp.Diff(want, ev[0], cmp.Comparer(func(a, b time.Time) bool { return a.Sub(b).Abs() < 5*time.Second })); diff != "" {
		t.Errorf("event (-want +got):\n%s", diff)
	}
	f.clock.Advance(2 * time.Minute)
	for range 5 {
		bad()
	}
	if n := len(f.eventsOf(EventBadSignatureBurst)); n != 2 {
		t.Errorf("a later burst raises a new alert: %d events, want 2", n)
	}
	if n := metricValue(t, f.metrics.Alerts.WithLabelValues("payments", "bad_signature_burst")); n != 2 {
		t.Errorf("alerts_total = %v, want 2", n)
	}
}

// failingStore fails SetNX or Enqueue on demand.
type failingStore struct {
	Store
	failSetNX, failEnqueue bool
}

func (s *failingStore) SetNX(ctx context.Context, k string, v []byte, ttl time.Duration) (bool, error) {
	if s.failSetNX {
		return false, store.ErrUnavailable
	}
	return s.Store.SetNX(ctx, k, v, ttl)
}

func (s *failingStore) Enqueue(ctx context.Context, q string, j store.Job) error {
	if s.failEnqueue {
		return store.ErrUnavailable
	}
	return s.Store.Enqueue(ctx, q, j)
}

func TestStoreDown(t *testing.T) {
	t.Run("replay-check-fails-closed", func(t *testing.T) {
		f := newFixture(t, testWebhooks("http://127.0.0.1:1/unused"))
		f.opts.Store = &failingStore{Store: f.store, failSetNX: true}
		rec := serve(f.handler(), f.signed("payments", "msg_s", eventBody, "env:STD_NEW"))
		if rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("status %d, want 503 so the vendor retries", rec.Code)
		}
	})
	t.Run("replay-check-fails-open-when-configured", func(t *testing.T) {
		f := newFixture(t, testWebhooks("http://127.0.0.1:1/unused"))
		f.opts.Store = &failingStore{Store: f.store, failSetNX: true}
		f.opts.ReplayFailOpen = true
		if rec := serve(f.handler(), f.signed("payments", "msg_s", eventBody, "env:STD_NEW")); rec.Code != 200 {
			t.Fatalf("status %d, want 200", rec.Code)
		}
	})
	t.Run("enqueue-failure-lets-the-vendor-retry", func(t *testing.T) {
		f := newFixture(t, testWebhooks("http://127.0.0.1:1/unused"))
		fs := &failingStore{Store: f.store, failEnqueue: true}
		f.opts.Store = fs
		h := f.handler()
		if rec := serve(h, f.signed("payments", "msg_e", eventBody, "env:STD_NEW")); rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("status %d, want 503", rec.Code)
		}
		fs.failEnqueue = false
		f.clock.Advance(10 * time.Second)
		if rec := serve(h, f.signed("payments", "msg_e", eventBody, "env:STD_NEW")); rec.Code != 200 {
			t.Fatalf("the vendor's retry was refused (%d %s): its replay id outlived the failed enqueue", rec.Code, rec.Body)
		}
	})
}

func TestSchemaCheck(t *testing.T) {
	dir := t.TempDir()
	schema := `{"type":"object","required":["type","data"],"properties":{"type":{"type":"string"},"data":{"type":"object"}}}`
	if err := os.WriteFile(filepath.Join(dir, "event.json"), []byte(schema), 0o600); err != nil {
		t.Fatal(err)
	}
	wh := testWebhooks("")
	wh["payments"].Schema = "event.json"
	tests := []struct {
		name string
		body string
		want int
	}{
		{"matches", `{"type":"invoice.paid","data":{}}`, 200},
		{"missing-field", `{"type":"invoice.paid"}`, 400},
		{"not-json", `type=invoice.paid`, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, wh)
			f.opts.BaseDir = dir
			rec := serve(f.handler(), f.signed("payments", "msg_"+tt.name, []byte(tt.body), "env:STD_NEW"))
			if rec.Code != tt.want {
				t.Fatalf("status %d, want %d (%s)", rec.Code, tt.want, rec.Body)
			}
			if tt.want == 400 && problemBody(t, rec)["detail"] != "schema" {
				t.Errorf("detail = %v, want schema", problemBody(t, rec)["detail"])
			}
			if tt.want == 400 && strings.Contains(f.logs.String(), "invoice.paid") {
				t.Errorf("the schema failure log quotes the body")
			}
		})
	}
}

func TestSlackURLVerification(t *testing.T) {
	f := newFixture(t, testWebhooks("http://127.0.0.1:1/unused"))
	body := []byte(`{"token":"x","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}`)
	rec := serve(f.handler(), f.signed("slack", "", body, "env:SLACK"))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"`) {
		t.Fatalf("handshake: %d %s", rec.Code, rec.Body)
	}
	if d, _, _ := f.store.Stats(context.Background(), QueueName("slack")); d != 0 {
		t.Errorf("the handshake was queued for forwarding")
	}
	unsigned := httptest.NewRequest(http.MethodPost, "/hooks/slack", bytes.NewReader(body))
	unsigned.Header.Set("Content-Type", "application/json")
	if rec := serve(f.handler(), unsigned); rec.Code != 400 {
		t.Errorf("an unsigned handshake answered %d", rec.Code)
	}
}

func TestNewHandlerErrors(t *testing.T) {
	f := newFixture(t, nil)
	tests := []struct {
		name     string
		webhooks map[string]*Spec
		want     string
	}{
		{"duplicate-path", map[string]*Spec{
			"a": {Path: "/x", Scheme: "github", Secrets: refs("env:GITHUB")},
			"b": {Path: "/x", Scheme: "github", Secrets: refs("env:GITHUB")},
		}, "same path"},
		{"forward-without-secret", map[string]*Spec{
			"a": {Path: "/x", Scheme: "github", Secrets: refs("env:GITHUB"), ForwardTo: "http://127.0.0.1:7000/"},
		}, "forward_secret"},
		{"no-secrets", map[string]*Spec{"a": {Path: "/x", Scheme: "github"}}, "secrets"},
		{"missing-schema-file", map[string]*Spec{
			"a": {Path: "/x", Scheme: "github", Secrets: refs("env:GITHUB"), Schema: "/nonexistent/schema.json"},
		}, "schema"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewHandler(tt.webhooks, f.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewHandler = %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
	if _, err := NewHandler(nil, Options{}); err == nil {
		t.Errorf("NewHandler without a store must fail, got %v", err)
	}
}
