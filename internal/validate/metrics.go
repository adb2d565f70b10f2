package validate

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
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

// record counts one check of the route in o.Metrics. The series of a valid
// check and the duration's are looked up once per route (at its first such
// check, as WithLabelValues would create them) and kept in ro.
func (ro *routeObs) record(o Observers, v *Violation, took time.Duration) {
	m := o.Metrics
	if v != nil {
		m.checks.WithLabelValues(o.Integration, ro.route, string(v.Reason)).Inc()
	} else {
		ro.validOnce.Do(func() { ro.valid = m.checks.WithLabelValues(o.Integration, ro.route, "valid") })
		ro.valid.Inc()
	}
	ro.durOnce.Do(func() { ro.duration = m.duration.WithLabelValues(o.Integration) })
	ro.duration.Observe(took.Seconds())
}

// routeCache holds a Validator's routeObs by method and template.
type routeCache struct {
	m      sync.Map // routeKey → *routeObs
	cached atomic.Int64
}

// routeObs is what Check needs of a route on every call: the route's name
// (for violations, metrics and events), its operation, and its metric
// series once used.
type routeObs struct {
	route     string
	op        *operation
	validOnce sync.Once
	valid     prometheus.Counter
	durOnce   sync.Once
	duration  prometheus.Observer
	// last is the response documented for the status last checked (kin's
	// Responses.Status formats the status anew on every call).
	last atomic.Pointer[statusResponse]
}

type statusResponse struct {
	status int
	ref    *openapi3.ResponseRef
}

// response is the operation's response for status: the status's own, its
// range's (2XX), or the default; nil when none is documented.
func (ro *routeObs) response(status int) *openapi3.ResponseRef {
	if l := ro.last.Load(); l != nil && l.status == status {
		return l.ref
	}
	var rr *openapi3.ResponseRef
	if ro.op != nil && ro.op.responses != nil {
		if rr = ro.op.responses.Status(status); rr == nil {
			rr = ro.op.responses.Default()
		}
	}
	ro.last.Store(&statusResponse{status, rr})
	return rr
}

func (c *routeCache) get(v *Validator, method, template string) *routeObs {
	key := routeKey{method, template}
	if ro, ok := c.m.Load(key); ok {
		return ro.(*routeObs)
	}
	ro := &routeObs{route: method + " " + template}
	if v.spec != nil {
		ro.op = v.spec.lookup(method, template)
	}
	// Templates come from the config; the bound only keeps a caller with
	// arbitrary templates from growing the cache (as Spec.lookup's).
	if c.cached.Add(1) <= maxCachedRoutes {
		if prev, loaded := c.m.LoadOrStore(key, ro); loaded {
			return prev.(*routeObs)
		}
	}
	return ro
}
