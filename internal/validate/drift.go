package validate

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/portcullis-dev/portcullis/internal/anomaly"
)

// Drift watches the shape of each route's responses: the set of JSON paths
// seen and their types, compared with the spec or, where there is none (or
// the route has no operation in it), with a baseline learned over the first
// N responses. It raises one schema_drift event per change:
//
//   - new field: a path the spec does not declare (with a spec), or that the
//     baseline never saw (without one);
//   - type change: a value of a type the spec does not allow there, or that
//     the baseline never saw there (integer and number count as one type,
//     and null is never a change: nullable fields come and go);
//   - field missing: a path present in every baseline response is absent
//     while its parent object is present (this needs the baseline in both
//     cases: a spec's optional fields are not promises).
//
// Events carry the JSON path, never a value. Keys that are not declared by
// the spec and do not look like identifiers (an e-mail address used as a map
// key, say) are folded into "*", and so are the keys of objects the spec
// declares as maps; without a spec, an object that shows more than 64
// distinct keys is treated as a map. Arrays are sampled (first 16 elements)
// and paths deeper than 32 levels are not followed. Drift is safe for
// concurrent use.
type Drift struct {
	spec        *Spec
	learnN      int
	emit        func(anomaly.Event)
	integration string
	metrics     *Metrics

	mu     sync.Mutex
	routes map[driftKey]*routeDrift
}

// DriftOption configures NewDrift.
type DriftOption func(*Drift)

// WithIntegration names the integration in events and metrics.
func WithIntegration(name string) DriftOption { return func(d *Drift) { d.integration = name } }

// WithDriftMetrics counts events in portcullis_drift_events_total.
func WithDriftMetrics(m *Metrics) DriftOption { return func(d *Drift) { d.metrics = m } }

// Bounds that keep drift tracking cheap and its memory fixed.
const (
	driftArraySample = 16
	driftMaxDepth    = 32
	driftMaxKeys     = 64
	driftMaxEvents   = 50 // per route and status; then one "more changes" event
	driftMaxRoutes   = 4096
)

// NewDrift returns a drift detector. spec may be nil (baseline only); learnN
// is how many responses per route and status form the baseline (at least 1).
func NewDrift(spec *Spec, learnN int, emit func(anomaly.Event), opts ...DriftOption) *Drift {
	if learnN < 1 {
		learnN = 1
	}
	d := &Drift{spec: spec, learnN: learnN, emit: emit, routes: map[driftKey]*routeDrift{}}
	for _, o := range opts {
		o(d)
	}
	return d
}

// Observe decodes a JSON body (anything else is ignored) and observes it.
// When a Validator feeds this Drift, prefer letting it: it passes the body
// it already decoded.
func (d *Drift) Observe(method, template string, status int, body []byte) {
	if len(body) == 0 || int64(len(body)) > DefaultMaxBytes {
		return
	}
	if c := firstNonSpace(body); c != '{' && c != '[' {
		return
	}
	if scanJSON(body, DefaultMaxDepth) != nil {
		return
	}
	var v any
	if json.Unmarshal(body, &v) != nil {
		return
	}
	d.ObserveValue(method, template, status, v)
}

func firstNonSpace(b []byte) byte {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return c
	}
	return 0
}

// ObserveValue observes an already decoded JSON body (from encoding/json).
func (d *Drift) ObserveValue(method, template string, status int, v any) {
	r := d.route(method, template, status)
	if r == nil {
		return
	}
	r.mu.Lock()
	changes := r.observe(v, d.learnN)
	r.mu.Unlock()
	for _, c := range changes {
		d.report(method+" "+template, status, c)
	}
}

func (d *Drift) route(method, template string, status int) *routeDrift {
	key := driftKey{method, template, status}
	d.mu.Lock()
	defer d.mu.Unlock()
	if r, ok := d.routes[key]; ok {
		return r
	}
	if len(d.routes) >= driftMaxRoutes {
		return nil
	}
	r := &routeDrift{spec: d.spec, root: &node{}, reported: map[string]bool{}}
	if sc := d.spec.responseSchema(method, template, status); sc != nil {
		r.root.spec = specSetOf(sc)
		r.root.specKnown = true
	}
	d.routes[key] = r
	return r
}

// driftKey is a route and status, as a map key.
type driftKey struct {
	method, template string
	status           int
}

// Change kinds, the `change` label of portcullis_drift_events_total.
const (
	ChangeNewField   = "new_field"
	ChangeTypeChange = "type_change"
	ChangeMissing    = "field_missing"
	ChangeOverflow   = "more_changes"
)

type change struct {
	kind     string
	path     string
	from, to string
}

func (d *Drift) report(route string, status int, c change) {
	var msg string
	switch c.kind {
	case ChangeNewField:
		msg = fmt.Sprintf("new field %s (%s) in %d responses of %s", c.path, c.to, status, route)
	case ChangeTypeChange:
		msg = fmt.Sprintf("type of %s changed from %s to %s in %d responses of %s", c.path, c.from, c.to, status, route)
	case ChangeMissing:
		msg = fmt.Sprintf("field %s missing from %d responses of %s (present in every baseline response)", c.path, status, route)
	default:
		msg = fmt.Sprintf("more schema changes in %d responses of %s are not reported individually", status, route)
	}
	if d.metrics != nil {
		d.metrics.drift.WithLabelValues(d.integration, c.kind).Inc()
	}
	if d.emit == nil {
		return
	}
	d.emit(anomaly.Event{
		Kind:        anomaly.KindSchemaDrift,
		Integration: d.integration,
		Route:       route,
		Message:     msg,
		Key:         strings.Join([]string{string(anomaly.KindSchemaDrift), d.integration, route, strconv.Itoa(status), c.kind, c.path}, "|"),
	})
}
