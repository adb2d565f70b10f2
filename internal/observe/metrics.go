package observe

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the request-path metrics. Labels carry names and templates
// only: integration, route template, caller, status class, error code.
type Metrics struct {
	Registry *prometheus.Registry
	Requests *prometheus.CounterVec
	Duration *prometheus.HistogramVec
	Upstream *prometheus.HistogramVec
	Reloads  *prometheus.CounterVec

	// series caches, per label set, the children Observe updates: each
	// WithLabelValues checks and hashes every label value and takes the
	// vector's lock, three times a request. Its keys are the label sets
	// of the vectors' own series, so it holds no more than they do.
	series   sync.Map // seriesKey → *requestSeries
	upstream sync.Map // integration → prometheus.Observer, made at its first vendor call
}

type seriesKey struct{ integration, route, caller, class, code string }

type requestSeries struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// NewMetrics registers the metrics on a fresh registry (never the global one).
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_requests_total",
			Help: "Calls through the gateway by integration, route template, caller, status class and gateway error code (empty when the vendor answered).",
		}, []string{"integration", "route", "caller", "status_class", "code"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "portcullis_request_duration_seconds",
			Help:    "Total time from the caller's request to the end of the response headers.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"integration", "route", "caller"}),
		Upstream: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "portcullis_upstream_duration_seconds",
			Help:    "Time spent waiting for the vendor, all attempts included.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"integration"}),
		Reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_config_reloads_total",
			Help: "Config reloads by result (ok, error).",
		}, []string{"result"}),
	}
	reg.MustRegister(m.Requests, m.Duration, m.Upstream, m.Reloads,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

var statusClasses = [...]string{"0xx", "1xx", "2xx", "3xx", "4xx", "5xx"}

// StatusClass maps 404 to "4xx".
func StatusClass(code int) string {
	if c := code / 100; c >= 0 && c < len(statusClasses) {
		return statusClasses[c]
	}
	return strconv.Itoa(code)
}

// Observe records one finished request.
func (m *Metrics) Observe(r *Record, seconds float64) {
	k := seriesKey{r.Integration, r.Route, r.Caller, StatusClass(r.Status), r.ErrorCode}
	v, ok := m.series.Load(k)
	if !ok {
		v, _ = m.series.LoadOrStore(k, &requestSeries{
			requests: m.Requests.WithLabelValues(k.integration, k.route, k.caller, k.class, k.code),
			duration: m.Duration.WithLabelValues(k.integration, k.route, k.caller),
		})
	}
	s := v.(*requestSeries)
	s.requests.Inc()
	s.duration.Observe(seconds)
	if r.Attempts > 0 {
		u, ok := m.upstream.Load(r.Integration)
		if !ok {
			u, _ = m.upstream.LoadOrStore(r.Integration, m.Upstream.WithLabelValues(r.Integration))
		}
		u.(prometheus.Observer).Observe(r.UpstreamLatency.Seconds())
	}
}
