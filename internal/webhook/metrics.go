package webhook

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the webhook collectors. Share one between the Handler and the
// Forwarder of a process.
type Metrics struct {
	// Requests counts every request on the webhook listener by outcome:
	// accepted, signature, timestamp, replay, malformed, too_large,
	// content_type, method, schema, rate_limited, unknown_path, unavailable.
	Requests *prometheus.CounterVec
	// Alerts counts alert events raised (kind bad_signature_burst,
	// forward_gave_up).
	Alerts *prometheus.CounterVec
	// Forwards counts delivery attempts by result: delivered, retry, failed.
	Forwards *prometheus.CounterVec
	// ForwardSeconds is the latency of delivery attempts.
	ForwardSeconds *prometheus.HistogramVec
	// QueueDepth is how many webhooks wait to be forwarded (pending or in flight).
	QueueDepth *prometheus.GaugeVec
	// QueueOldestAge is the age in seconds of the oldest of them (0 when empty).
	QueueOldestAge *prometheus.GaugeVec
}

// NewMetrics builds the collectors and registers them on reg when reg is not
// nil (nil: collectors that nobody scrapes, for tests and tools).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_webhook_requests_total",
			Help: "Requests on the webhook listener by webhook and outcome.",
		}, []string{"webhook", "outcome"}),
		Alerts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_webhook_alerts_total",
			Help: "Webhook alert events raised by webhook and kind.",
		}, []string{"webhook", "kind"}),
		Forwards: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_webhook_forward_attempts_total",
			Help: "Attempts to deliver verified webhooks to forward_to, by result.",
		}, []string{"webhook", "result"}),
		ForwardSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "portcullis_webhook_forward_duration_seconds",
			Help:    "Latency of delivery attempts to forward_to.",
			Buckets: prometheus.DefBuckets,
		}, []string{"webhook"}),
		QueueDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "portcullis_webhook_queue_depth",
			Help: "Verified webhooks waiting to be forwarded (pending or in flight).",
		}, []string{"webhook"}),
		QueueOldestAge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "portcullis_webhook_queue_oldest_age_seconds",
			Help: "Age of the oldest webhook waiting to be forwarded; 0 when none.",
		}, []string{"webhook"}),
	}
	if reg == nil {
		return m, nil
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.Requests, m.Alerts, m.Forwards, m.ForwardSeconds, m.QueueDepth, m.QueueOldestAge} {
		errs = append(errs, reg.Register(c))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return m, nil
}
