package validate

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the validation and drift series. Share one *Metrics across
// integrations; labels tell them apart.
//
//	portcullis_validation_total{integration,route,result}   result: valid or a Reason
//	portcullis_validation_duration_seconds{integration}     time spent in Check
//	portcullis_drift_events_total{integration,change}       new_field, type_change, field_missing, more_changes
type Metrics struct {
	checks   *prometheus.CounterVec
	duration *prometheus.HistogramVec
	drift    *prometheus.CounterVec
}

// NewMetrics registers the series on reg. Registering again on the same
// registry (a config reload) reuses the existing series.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_validation_total",
			Help: "Vendor responses checked against the OpenAPI spec, by result: valid, or the violation reason (schema, status, content_type, body, malformed, too_large, too_deep, no_operation).",
		}, []string{"integration", "route", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "portcullis_validation_duration_seconds",
			Help:    "Time spent validating one vendor response.",
			Buckets: []float64{.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05},
		}, []string{"integration"}),
		drift: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_drift_events_total",
			Help: "Schema drift changes detected in vendor responses, by change: new_field, type_change, field_missing, more_changes.",
		}, []string{"integration", "change"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.checks, err = register(reg, m.checks); err != nil {
		return nil, err
	}
	if m.duration, err = register(reg, m.duration); err != nil {
		return nil, err
	}
	if m.drift, err = register(reg, m.drift); err != nil {
		return nil, err
	}
	return m, nil
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, fmt.Errorf("validation metrics: %w", err)
	}
	return c, nil
}

func (m *Metrics) record(integration, route string, v *Violation, took time.Duration) {
	result := "valid"
	if v != nil {
		result = string(v.Reason)
	}
	m.checks.WithLabelValues(integration, route, result).Inc()
	m.duration.WithLabelValues(integration).Observe(took.Seconds())
}
