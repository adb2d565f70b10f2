package forward

import (
	"errors"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the forward proxy's Prometheus collectors. Create them once
// per process with NewMetrics and pass them to every Proxy built on reload,
// so counters keep counting across config loads. Labels carry config names
// only (integration, caller, verdict, error code), never hosts: a caller
// could otherwise mint unbounded label values.
type Metrics struct {
	// Requests counts CONNECT and absolute-form requests by kind (connect,
	// http), integration, caller, decision (allow, report, open, deny) and
	// gateway error code ("" when the tunnel or request went through).
	Requests *prometheus.CounterVec
	// WouldDeny counts tunnels that report mode let through but enforce
	// mode would have refused.
	WouldDeny *prometheus.CounterVec
	// Active is the number of open tunnels and in-flight plain requests.
	Active *prometheus.GaugeVec
	// Bytes counts tunnel bytes by direction: "in" from the caller, "out"
	// to the caller.
	Bytes *prometheus.CounterVec
	// Duration is the lifetime of closed tunnels.
	Duration *prometheus.HistogramVec
	// Closed counts closed tunnels by why they closed (eof, idle_timeout,
	// max_lifetime, error, shutdown).
	Closed *prometheus.CounterVec

	// mu guards the children of the vectors above that record and
	// activeGauge update, kept per label set so a tunnel costs one map
	// lookup instead of a WithLabelValues (hash, lock, lookup) per series.
	// Their label values are config names and fixed sets, so these maps
	// are as bounded as the series themselves.
	mu     sync.RWMutex
	events map[eventKey]*eventSeries
	active map[activeKey]prometheus.Gauge
}

// eventKey is the label values of one finished event's series.
type eventKey struct{ kind, integration, caller, verdict, code, reason string }

// eventSeries are the children record updates for one eventKey; all but
// requests are nil when the event is not a closed tunnel (reason "").
type eventSeries struct {
	requests          prometheus.Counter
	duration          prometheus.Observer
	closed            prometheus.Counter
	bytesIn, bytesOut prometheus.Counter
}

type activeKey struct{ integration, caller string }

// eventSeries returns k's children, made at k's first event.
func (m *Metrics) eventSeries(k eventKey) *eventSeries {
	m.mu.RLock()
	s := m.events[k]
	m.mu.RUnlock()
	if s != nil {
		return s
	}
	s = &eventSeries{requests: m.Requests.WithLabelValues(k.kind, k.integration, k.caller, k.verdict, k.code)}
	if k.reason != "" {
		s.duration = m.Duration.WithLabelValues(k.integration)
		s.closed = m.Closed.WithLabelValues(k.integration, k.reason)
		s.bytesIn = m.Bytes.WithLabelValues(k.integration, k.caller, "in")
		s.bytesOut = m.Bytes.WithLabelValues(k.integration, k.caller, "out")
	}
	m.mu.Lock()
	if m.events == nil {
		m.events = map[eventKey]*eventSeries{}
	}
	m.events[k] = s
	m.mu.Unlock()
	return s
}

// activeGauge is Active's child for integration and caller.
func (m *Metrics) activeGauge(integration, caller string) prometheus.Gauge {
	k := activeKey{integration, caller}
	m.mu.RLock()
	g := m.active[k]
	m.mu.RUnlock()
	if g != nil {
		return g
	}
	g = m.Active.WithLabelValues(integration, caller)
	m.mu.Lock()
	if m.active == nil {
		m.active = map[activeKey]prometheus.Gauge{}
	}
	m.active[k] = g
	m.mu.Unlock()
	return g
}

// NewMetrics builds the collectors and registers them on reg (nil: not
// registered). A collector that reg already holds is reused, so calling
// NewMetrics again with the same registry is harmless.
func NewMetrics(reg *prometheus.Registry) *Metrics {
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_proxy_requests_total",
			Help: "Forward-proxy requests (CONNECT and absolute-form) by kind, integration, caller, decision and gateway error code.",
		}, []string{"kind", "integration", "caller", "decision", "code"}),
		WouldDeny: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_proxy_would_deny_total",
			Help: "Forward-proxy requests let through by report mode that enforce mode would refuse.",
		}, []string{"integration", "caller"}),
		Active: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "portcullis_proxy_tunnels_active",
			Help: "Open tunnels and in-flight plain-HTTP proxy requests.",
		}, []string{"integration", "caller"}),
		Bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_proxy_tunnel_bytes_total",
			Help: "Bytes relayed through tunnels; direction in is caller to vendor, out is vendor to caller.",
		}, []string{"integration", "caller", "direction"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "portcullis_proxy_tunnel_duration_seconds",
			Help:    "Lifetime of closed tunnels.",
			Buckets: []float64{.01, .05, .1, .5, 1, 5, 15, 60, 300, 900, 3600, 14400},
		}, []string{"integration"}),
		Closed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_proxy_tunnels_closed_total",
			Help: "Closed tunnels by reason (eof, idle_timeout, max_lifetime, error, shutdown).",
		}, []string{"integration", "reason"}),
	}
	if reg != nil {
		m.Requests = register(reg, m.Requests)
		m.WouldDeny = register(reg, m.WouldDeny)
		m.Active = register(reg, m.Active)
		m.Bytes = register(reg, m.Bytes)
		m.Duration = register(reg, m.Duration)
		m.Closed = register(reg, m.Closed)
	}
	return m
}

// register registers c, or returns the identical collector reg already has.
func register[C prometheus.Collector](reg *prometheus.Registry, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		// A different collector under the same name is a programming
		// error; keep c unregistered rather than crash the gateway.
	}
	return c
}
