package anomaly

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/portcullis-dev/portcullis/internal/clock"
)

// Hub defaults; see the HubOption functions to change them.
const (
	DefaultDedupeWindow = 10 * time.Minute
	DefaultRingSize     = 500
	// DefaultRate and DefaultBurst bound deliveries to sinks (events per
	// second across all kinds). Events over the limit are still kept for
	// GET /api/v1/anomalies and counted; only delivery is skipped.
	DefaultRate  = rate.Limit(1)
	DefaultBurst = 20
	// webhookQueue is how many events wait for one webhook sink before new
	// ones are dropped (and counted): delivery never blocks the request path.
	webhookQueue = 256
)

// Hub delivers events. It is safe for concurrent use; Emit never blocks on a
// sink.
type Hub struct {
	clk     clock.Clock
	logger  *slog.Logger
	window  time.Duration
	limiter *rate.Limiter
	client  *http.Client
	sinks   []sink
	m       *hubMetrics

	mu       sync.Mutex
	ring     []Event
	next     int
	full     bool
	lastSent map[string]time.Time

	wg sync.WaitGroup
}

type sink interface {
	deliver(Event)
	close()
}

// HubOption changes a Hub default.
type HubOption func(*Hub)

// WithClock sets the clock for de-duplication and rate limiting (default
// clock.System).
func WithClock(c clock.Clock) HubOption { return func(h *Hub) { h.clk = clock.Or(c) } }

// WithDedupeWindow sets how long an event key stays suppressed.
func WithDedupeWindow(d time.Duration) HubOption { return func(h *Hub) { h.window = d } }

// WithRateLimit sets the delivery rate limit (events per second, burst).
func WithRateLimit(r rate.Limit, burst int) HubOption {
	return func(h *Hub) { h.limiter = rate.NewLimiter(r, burst) }
}

// WithRingSize sets how many recent events Recent can return.
func WithRingSize(n int) HubOption { return func(h *Hub) { h.ring = make([]Event, n) } }

// WithHTTPClient sets the client webhook sinks post with. It is required
// when a webhook sink is configured: the gateway passes one built on the
// internal_egress policy. Its redirects are never followed.
func WithHTTPClient(c *http.Client) HubOption { return func(h *Hub) { h.client = c } }

// ErrSink is wrapped by NewHub's errors for an unusable sink.
var ErrSink = errors.New("bad alert sink")

// SinkSpec is one alert destination (an alerts.sinks entry): log, or webhook
// (a JSON POST; format slack for a Slack-compatible payload).
type SinkSpec struct {
	Type   string `yaml:"type"`
	URL    string `yaml:"url"`
	Format string `yaml:"format"`
}

// NewHub builds the sinks of alerts.sinks. logger receives log-sink events
// and delivery failures; reg (may be nil) gets the hub's metrics.
func NewHub(sinks []*SinkSpec, logger *slog.Logger, reg *prometheus.Registry, opts ...HubOption) (*Hub, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &Hub{
		clk: clock.System(), logger: logger, window: DefaultDedupeWindow,
		limiter:  rate.NewLimiter(DefaultRate, DefaultBurst),
		ring:     make([]Event, DefaultRingSize),
		lastSent: map[string]time.Time{},
	}
	for _, o := range opts {
		o(h)
	}
	if len(h.ring) == 0 {
		h.ring = make([]Event, 1)
	}
	if h.client != nil {
		// An alert endpoint that redirects is misconfigured; following it
		// could post events somewhere nobody chose.
		c := *h.client
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		h.client = &c
	}
	m, err := newHubMetrics(reg)
	if err != nil {
		return nil, err
	}
	h.m = m
	for i, s := range sinks {
		if s == nil {
			return nil, fmt.Errorf("alerts.sinks[%d]: %w: empty", i, ErrSink)
		}
		switch s.Type {
		case "log":
			h.sinks = append(h.sinks, logSink{logger: logger})
		case "webhook":
			if s.URL == "" {
				return nil, fmt.Errorf("alerts.sinks[%d]: %w: webhook needs a url", i, ErrSink)
			}
			if s.Format != "" && s.Format != "json" && s.Format != "slack" {
				return nil, fmt.Errorf("alerts.sinks[%d]: %w: format must be json or slack", i, ErrSink)
			}
			if h.client == nil || h.client.Transport == nil {
				// Never http.DefaultTransport: no egress guard, and the
				// environment's proxy.
				return nil, fmt.Errorf("alerts.sinks[%d]: %w: no egress-guarded HTTP client (WithHTTPClient)", i, ErrSink)
			}
			h.sinks = append(h.sinks, h.startWebhook(i, s.URL, s.Format == "slack"))
		default:
			return nil, fmt.Errorf("alerts.sinks[%d]: %w: type must be log or webhook", i, ErrSink)
		}
	}
	return h, nil
}

// Emit records e and delivers it, unless an event with the same key was
// delivered within the de-duplication window. A zero e.Time is set to now.
func (h *Hub) Emit(e Event) {
	if e.Time.IsZero() {
		e.Time = h.clk.Now()
	}
	key := e.DedupeKey()
	e.Key = key
	h.mu.Lock()
	if t, ok := h.lastSent[key]; ok && e.Time.Sub(t) < h.window {
		h.mu.Unlock()
		h.m.suppressed.WithLabelValues("duplicate").Inc()
		return
	}
	h.lastSent[key] = e.Time
	if len(h.lastSent) > 4096 {
		for k, t := range h.lastSent {
			if e.Time.Sub(t) >= h.window {
				delete(h.lastSent, k)
			}
		}
	}
	h.ring[h.next] = e
	h.next = (h.next + 1) % len(h.ring)
	if h.next == 0 {
		h.full = true
	}
	allowed := h.limiter.AllowN(e.Time, 1)
	h.mu.Unlock()

	h.m.events.WithLabelValues(string(e.Kind)).Inc()
	if !allowed {
		h.m.suppressed.WithLabelValues("rate_limited").Inc()
		return
	}
	for _, s := range h.sinks {
		s.deliver(e)
	}
}

// Recent returns up to n recent events, newest first (n <= 0: all kept).
func (h *Hub) Recent(n int) []Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	size := h.next
	if h.full {
		size = len(h.ring)
	}
	if n <= 0 || n > size {
		n = size
	}
	out := make([]Event, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, h.ring[(h.next-i+len(h.ring))%len(h.ring)])
	}
	return out
}

// Close stops the webhook senders after they deliver what is queued, or
// when ctx ends.
func (h *Hub) Close(ctx context.Context) error {
	for _, s := range h.sinks {
		s.close()
	}
	done := make(chan struct{})
	go func() { h.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type logSink struct{ logger *slog.Logger }

func (s logSink) deliver(e Event) {
	s.logger.Warn("anomaly",
		slog.String("kind", string(e.Kind)),
		slog.String("integration", e.Integration),
		slog.String("route", e.Route),
		slog.String("caller", e.Caller),
		slog.String("message", e.Message))
}

func (logSink) close() {}

type hubMetrics struct {
	events     *prometheus.CounterVec
	suppressed *prometheus.CounterVec
	deliveries *prometheus.CounterVec
}

func newHubMetrics(reg *prometheus.Registry) (*hubMetrics, error) {
	m := &hubMetrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_anomaly_events_total",
			Help: "Anomaly and security events raised (after de-duplication), by kind.",
		}, []string{"kind"}),
		suppressed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_anomaly_events_suppressed_total",
			Help: "Events not delivered to sinks: duplicate (within the de-duplication window), rate_limited, queue_full, closed.",
		}, []string{"reason"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_alert_deliveries_total",
			Help: "Webhook alert deliveries by sink index and result (ok, error).",
		}, []string{"sink", "result"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []**prometheus.CounterVec{&m.events, &m.suppressed, &m.deliveries} {
		if err := reg.Register(*c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, fmt.Errorf("anomaly metrics: %w", err)
			}
			// A reloaded config builds a new hub on the same registry:
			// keep counting on the existing series.
			existing, ok := are.ExistingCollector.(*prometheus.CounterVec)
			if !ok {
				return nil, fmt.Errorf("anomaly metrics: %w", err)
			}
			*c = existing
		}
	}
	return m, nil
}
