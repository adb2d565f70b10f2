package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/portcullis-dev/portcullis/internal/clock"
	"github.com/portcullis-dev/portcullis/internal/conf"
	"github.com/portcullis-dev/portcullis/internal/secret"
	"github.com/portcullis-dev/portcullis/internal/store"
)

// newClock is a fake clock shared by the store, the Handler and the Forwarder.
func newClock() *clock.Fake { return clock.NewFake(baseTime) }

// logBuf collects JSON log records safely across goroutines.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// records returns the decoded log records whose msg is msg.
func (l *logBuf) records(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, ln := range strings.Split(strings.TrimSpace(l.String()), "\n") {
		if ln == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(ln), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", ln)
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// Secrets used by the fixtures (values are test-only).
var testSecrets = map[string]string{
	"env:STD_NEW":  "whsec_bmV3LXNlY3JldC1mb3Itc3RhbmRhcmQ=",
	"env:STD_OLD":  "whsec_b2xkLXNlY3JldC1mb3Itc3RhbmRhcmQ=",
	"env:STRIPE":   "whsec_stripe_endpoint_secret",
	"env:GITHUB":   "github-hook-secret",
	"env:SLACK":    "slack-signing-secret",
	"env:HMAC":     "hmac-shared-secret",
	"env:INTERNAL": "whsec_aW50ZXJuYWwtZm9yd2FyZC1zZWNyZXQtMzJieXRlcw==",
}

type fixture struct {
	t        testing.TB
	clock    *clock.Fake
	store    Store
	logs     *logBuf
	metrics  *Metrics
	registry *prometheus.Registry
	webhooks map[string]*Spec
	opts     Options

	mu      sync.Mutex
	events  []Event
	missing map[string]bool // secret refs that fail to resolve
}

func newFixture(t testing.TB, webhooks map[string]*Spec) *fixture {
	t.Helper()
	f := &fixture{t: t, clock: newClock(), logs: &logBuf{}, webhooks: webhooks, missing: map[string]bool{}}
	f.store = store.NewMemory(f.clock)
	f.registry = prometheus.NewRegistry()
	m, err := NewMetrics(f.registry)
	if err != nil {
		t.Fatal(err)
	}
	f.metrics = m
	f.opts = Options{
		Store: f.store, Secrets: f.secretFunc, Clock: f.clock, Metrics: m,
		Logger:  slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		OnEvent: f.onEvent, Jitter: func() float64 { return 0 },
		// The receivers are httptest servers on loopback ports chosen at
		// run time; egress_test.go tests the internal_egress client.
		Client: &http.Client{Transport: &http.Transport{}},
	}
	return f
}

func (f *fixture) secretFunc(_ context.Context, ref conf.SecretRef) (secret.Value, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := testSecrets[ref.Ref()]
	if !ok || f.missing[ref.Ref()] {
		return secret.Value{}, fmt.Errorf("%s: %w", ref.Ref(), store.ErrNotFound)
	}
	return secret.New(v), nil
}

func (f *fixture) onEvent(e Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, e)
}

func (f *fixture) eventsOf(kind string) []Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Event
	for _, e := range f.events {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

func (f *fixture) handler() *Handler {
	f.t.Helper()
	h, err := NewHandler(f.webhooks, f.opts)
	if err != nil {
		f.t.Fatal(err)
	}
	return h
}

func (f *fixture) forwarder() *Forwarder {
	f.t.Helper()
	fw, err := NewForwarder(f.webhooks, f.opts)
	if err != nil {
		f.t.Fatal(err)
	}
	return fw
}

func (f *fixture) count(webhook, outcome string) float64 {
	return metricValue(f.t, f.metrics.Requests.WithLabelValues(webhook, outcome))
}

// metricValue reads a counter or gauge.
func metricValue(t testing.TB, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}

// signed builds a request for webhook name signed with secret refs at the
// fixture's current time.
func (f *fixture) signed(name, id string, body []byte, refs ...string) *http.Request {
	f.t.Helper()
	w := f.webhooks[name]
	v, err := NewVerifier(w)
	if err != nil {
		f.t.Fatal(err)
	}
	var secrets []secret.Value
	for _, r := range refs {
		secrets = append(secrets, secret.New(testSecrets[r]))
	}
	h, err := v.Sign(body, secrets, SignParams{ID: id, Timestamp: f.clock.Now()})
	if err != nil {
		f.t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPost, w.Path, bytes.NewReader(body))
	r.RemoteAddr = "203.0.113.7:40000"
	for k, vs := range h {
		r.Header[k] = vs
	}
	r.Header.Set("Content-Type", "application/json")
	return r
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

func refs(rs ...string) []conf.SecretRef {
	out := make([]conf.SecretRef, len(rs))
	for i, r := range rs {
		out[i] = conf.MustRef(r)
	}
	return out
}

// testWebhooks is one webhook per scheme, all forwarding to forwardTo.
func testWebhooks(forwardTo string) map[string]*Spec {
	base := func(path, scheme string, secrets ...string) *Spec {
		return &Spec{
			Path: path, Scheme: scheme, Secrets: refs(secrets...), Tolerance: conf.Dur(5 * time.Minute),
			ForwardTo: forwardTo, ForwardSecret: conf.MustRef("env:INTERNAL"), MaxBodyBytes: conf.Bytes(4096),
		}
	}
	g := base("/hooks/hmac", "hmac_sha256", "env:HMAC")
	g.Header, g.Encoding, g.Prefix = "X-Signature", "hex", "sha256="
	return map[string]*Spec{
		"payments": base("/hooks/payments", "standard", "env:STD_NEW", "env:STD_OLD"),
		"stripe":   base("/hooks/stripe", "stripe", "env:STRIPE"),
		"github":   base("/hooks/github", "github", "env:GITHUB"),
		"slack":    base("/hooks/slack", "slack", "env:SLACK"),
		"hmac":     g,
	}
}

// problemBody decodes a problem+json answer.
func problemBody(t *testing.T, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json (body %q)", ct, rec.Body.String())
	}
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	return m
}
