package validate

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/portcullis-dev/portcullis/internal/anomaly"
)

// Mode is what the gateway does with a violation.
type Mode string

// The modes of `validate.mode`.
const (
	// ModeEnforce fails closed: the caller gets invalid_upstream_response
	// (or response_too_large) instead of the vendor's response.
	ModeEnforce Mode = "enforce"
	// ModeReport passes the response on and records the violation.
	ModeReport Mode = "report"
	// ModeOff checks nothing.
	ModeOff Mode = "off"
)

// Defaults for New's limits when given zero or less.
const (
	DefaultMaxDepth = 64
	DefaultMaxBytes = 5 << 20
)

// Validator checks the responses of one integration against its spec. It is
// immutable and safe for concurrent use; schemas were compiled by LoadSpec,
// so Check does no compilation.
type Validator struct {
	spec     *Spec
	mode     Mode
	maxDepth int
	maxBytes int64
	fast     []openapi3.SchemaValidationOption
	detail   []openapi3.SchemaValidationOption
	obs      Observers
	scanners *scannerPool
	routes   *routeCache // per route: its name and metric series (With makes a fresh one)
}

// Observers receive what Check finds. All fields are optional.
type Observers struct {
	// Integration names the integration in metrics, events and logs.
	Integration string
	// Metrics counts every check in portcullis_validation_total.
	Metrics *Metrics
	// Drift is fed every body Check decoded, so drift detection costs no
	// second decode.
	Drift *Drift
	// Emit receives a validation_failed event per violation (the alert hub
	// de-duplicates repeats of the same breakage).
	Emit func(anomaly.Event)
	// Logger, if set, gets one warning per violation in report mode. Leave it
	// nil when the gateway puts the violation in its own request log line.
	Logger *slog.Logger
}

// New returns a validator for spec. maxDepth bounds JSON nesting and maxBytes
// the body size; both are checked before the body is decoded (zero or less
// means DefaultMaxDepth, DefaultMaxBytes). A nil spec with a mode other than
// off refuses every response.
func New(spec *Spec, mode Mode, maxDepth int, maxBytes int64) *Validator {
	if maxDepth <= 0 {
		maxDepth = DefaultMaxDepth
	}
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	formats := openapi3.WithStringFormatValidators(stringFormats())
	// Reading responses as responses (readOnly/writeOnly rules) costs a sort
	// of property names per object visited; do it only where the spec uses
	// writeOnly in a response schema, the one case it changes the outcome.
	var dir []openapi3.SchemaValidationOption
	if spec != nil && spec.writeOnly {
		dir = append(dir, openapi3.VisitAsResponse())
	}
	base := append(dir, openapi3.EnableFormatValidation(), formats, openapi3.DisableSchemaErrorDetails())
	return &Validator{
		spec: spec, mode: mode, maxDepth: maxDepth, maxBytes: maxBytes, scanners: &scannerPool{}, routes: &routeCache{},
		fast:   append(append([]openapi3.SchemaValidationOption{}, base...), openapi3.FailFast()),
		detail: append(append([]openapi3.SchemaValidationOption{}, base...), openapi3.MultiErrors()),
	}
}

// With returns a copy of v that reports to o.
func (v *Validator) With(o Observers) *Validator {
	c := *v
	c.obs = o
	c.routes = &routeCache{}
	return &c
}

// Mode is the validator's mode.
func (v *Validator) Mode() Mode { return v.mode }

// Enforcing reports whether a violation must fail the call closed.
func (v *Validator) Enforcing() bool { return v.mode == ModeEnforce }

// Check validates one response for the route template. It returns nil when
// the response is valid (or the mode is off). A *Violation lists which JSON
// path broke which rule, never the vendor's values. In enforce mode the
// gateway refuses the response with v.Problem(); in report mode it passes it
// on. Check records to the validator's Observers either way.
func (v *Validator) Check(method, template string, status int, h http.Header, body []byte) *Violation {
	if v.mode == ModeOff {
		if v.obs.Drift != nil {
			v.obs.Drift.Observe(method, template, status, body)
		}
		return nil
	}
	start := time.Now()
	ro := v.routes.get(v, method, template)
	viol, decoded, ok := v.check(ro, method, template, status, h, body)
	if viol != nil {
		viol.sort()
	}
	if v.obs.Drift != nil && ok {
		if tp, isTape := decoded.(*tape); isTape {
			v.obs.Drift.observeTape(method, template, status, tp)
		} else {
			v.obs.Drift.ObserveValue(method, template, status, decoded)
		}
	}
	if tp, isTape := decoded.(*tape); isTape {
		tp.release()
	}
	v.record(ro, viol, time.Since(start))
	return viol
}

// check returns the decoded body (a *tape when the compiled tree accepted it
// from one, which Check releases) and whether it is JSON to observe.
func (v *Validator) check(ro *routeObs, method, template string, status int, h http.Header, body []byte) (viol *Violation, decoded any, ok bool) {
	route := ro.route
	fail := func(r Reason, path, rule string) (*Violation, any, bool) {
		viol := &Violation{Route: route, Status: status, Reason: r}
		viol.add(path, rule)
		return viol, nil, false
	}
	if int64(len(body)) > v.maxBytes {
		return fail(ReasonTooLarge, "", fmt.Sprintf("size: over %d bytes", v.maxBytes))
	}
	if v.spec == nil {
		return fail(ReasonNoOperation, "", "operation: no spec loaded")
	}
	op := ro.op
	if op == nil {
		return fail(ReasonNoOperation, "", "operation: "+route+" is not in the spec")
	}
	if status == http.StatusNotModified {
		if len(body) > 0 {
			return fail(ReasonBody, "", "body: must be empty for 304")
		}
		return nil, nil, false
	}
	rr := ro.response(status)
	if rr == nil || rr.Value == nil {
		return fail(ReasonStatus, "", "status: "+strconv.Itoa(status)+" is not documented")
	}
	if method == http.MethodHead {
		return nil, nil, false
	}
	content := rr.Value.Content
	if len(content) == 0 {
		if len(body) > 0 {
			return fail(ReasonBody, "", "body: none documented for "+strconv.Itoa(status))
		}
		return nil, nil, false
	}
	if len(body) == 0 {
		return fail(ReasonBody, "", "body: empty, want "+documentedTypes(content))
	}
	if ce := h.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return fail(ReasonContentType, "", "content-encoding: want identity (decode before validating)")
	}
	ct := h.Get("Content-Type")
	var m *openapi3.MediaType
	if ct != "" {
		m = content.Get(ct)
	}
	if m == nil {
		return fail(ReasonContentType, "", "content-type: got "+safeMediaType(ct)+", want "+documentedTypes(content))
	}
	mt := v.spec.mediaFor(m)
	if mt == nil || !(mt.json || isJSONMediaType(ct)) {
		// Documented non-JSON media type: size and type were checked.
		return nil, nil, false
	}
	if mt.fast != nil {
		// The common case, a valid body: one pass onto a tape, one walk of
		// the compiled tree. Anything else takes the full path below.
		tp := getTape()
		if tp.parse(body, v.maxDepth) && mt.fast.okTape(tp, 0, v.fast) {
			return nil, tp, true
		}
		tp.release()
	}
	if se := v.scanners.scan(body, v.maxDepth); se != nil {
		viol := &Violation{Route: route, Status: status, Reason: se.reason}
		viol.add(v.spec.pointer(se.path), se.rule)
		return viol, nil, false
	}
	var dv any // declared here: its address escapes, so it is allocated only on this path
	if err := json.Unmarshal(body, &dv); err != nil {
		return fail(ReasonMalformed, "", "body: not valid JSON")
	}
	decoded = dv
	if mt.schema == nil {
		return nil, decoded, true
	}
	if mt.js != nil {
		if err := mt.js.Validate(decoded); err != nil {
			viol := &Violation{Route: route, Status: status, Reason: ReasonSchema}
			v.spec.addJS(viol, err)
			return viol, decoded, true
		}
		return nil, decoded, true
	}
	if mt.fast != nil && mt.fast.ok(decoded, v.fast) {
		return nil, decoded, true
	}
	if mt.schema.VisitJSON(decoded, v.fast...) == nil {
		return nil, decoded, true
	}
	viol = &Violation{Route: route, Status: status, Reason: ReasonSchema}
	if err := mt.schema.VisitJSON(decoded, v.detail...); err != nil {
		v.spec.addKin(viol, err)
	}
	if len(viol.Problems) == 0 {
		viol.add("", "schema")
	}
	return viol, decoded, true
}

func documentedTypes(c openapi3.Content) string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) > 3 {
		keys = append(keys[:3], "…")
	}
	return strings.Join(keys, " or ")
}

func (v *Validator) record(ro *routeObs, viol *Violation, took time.Duration) {
	o := v.obs
	route := ro.route
	if o.Metrics != nil {
		ro.record(o, viol, took)
	}
	if viol == nil {
		return
	}
	if o.Emit != nil {
		first := ""
		if len(viol.Problems) > 0 {
			first = viol.Problems[0].Path + " " + viol.Problems[0].Rule
		}
		o.Emit(anomaly.Event{
			Kind:        anomaly.KindValidationFailed,
			Integration: o.Integration,
			Route:       route,
			Message:     "response does not match the spec (" + string(v.mode) + "): " + viol.Detail(),
			Key:         strings.Join([]string{string(anomaly.KindValidationFailed), o.Integration, route, string(viol.Reason), first}, "|"),
		})
	}
	if o.Logger != nil && v.mode == ModeReport {
		o.Logger.Warn("vendor response does not match its spec",
			slog.String("integration", o.Integration),
			slog.String("route", route),
			slog.Int("status", viol.Status),
			slog.String("reason", string(viol.Reason)),
			slog.String("detail", viol.Detail()))
	}
}

// stringFormats are the formats asserted for OpenAPI 3.0 on top of the ones
// kin-openapi asserts itself (date, date-time, byte, int32, int64).
func stringFormats() map[string]openapi3.StringFormatValidator {
	absURI := openapi3.NewCallbackValidator(func(s string) error {
		u, err := url.Parse(s)
		if err != nil || !u.IsAbs() {
			return fmt.Errorf("not an absolute URI")
		}
		return nil
	})
	uriRef := openapi3.NewCallbackValidator(func(s string) error {
		if _, err := url.Parse(s); err != nil {
			return fmt.Errorf("not a URI reference")
		}
		return nil
	})
	return map[string]openapi3.StringFormatValidator{
		"email":         openapi3.NewRegexpFormatValidator(openapi3.FormatOfStringForEmail),
		"uuid":          openapi3.NewRegexpFormatValidator(openapi3.FormatOfStringForUUIDOfRFC9562),
		"ipv4":          openapi3.NewIPValidator(true),
		"ipv6":          openapi3.NewIPValidator(false),
		"uri":           absURI,
		"uri-reference": uriRef,
	}
}
