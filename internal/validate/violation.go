package validate

import (
	"fmt"
	"slices"
	"strings"

	"github.com/portcullis-dev/portcullis/internal/problem"
)

// Reason classifies a violation; it is the `result` label of
// portcullis_validation_total and picks the problem code.
type Reason string

// The reasons a response is refused or reported.
const (
	ReasonSchema      Reason = "schema"       // the body breaks its schema
	ReasonStatus      Reason = "status"       // status code not documented
	ReasonContentType Reason = "content_type" // Content-Type not documented
	ReasonBody        Reason = "body"         // body present where none is documented, or missing
	ReasonMalformed   Reason = "malformed"    // not JSON, not UTF-8, or duplicate keys
	ReasonTooLarge    Reason = "too_large"    // over max_response_bytes, not parsed
	ReasonTooDeep     Reason = "too_deep"     // nested deeper than max_depth, not parsed
	ReasonNoOperation Reason = "no_operation" // the route has no operation in the spec
)

// FieldProblem is one broken rule: Path is a JSON pointer into the body
// ("/data/0/amount", "" for the body or the response as a whole) and Rule
// says what the spec wanted ("type: want integer, got string"). Neither ever
// holds a value the vendor sent.
type FieldProblem struct {
	Path string
	Rule string
}

// maxProblems bounds what one Violation collects.
const maxProblems = 20

// Violation says why a response does not match the spec. It carries no
// vendor values, so it is safe to log, to count, and (through Detail) to
// show to the caller.
type Violation struct {
	// Route is "METHOD template", e.g. "GET /v1/charges/{id}".
	Route    string
	Status   int
	Reason   Reason
	Problems []FieldProblem
	// Truncated is set when more problems were found than are listed.
	Truncated bool
}

// Detail is the short public text for the problem+json detail, e.g.
// "GET /v1/charges/{id} 200: /amount type: want integer, got string; /id required: missing".
func (v *Violation) Detail() string {
	const show = 5
	var b strings.Builder
	fmt.Fprintf(&b, "%s %d:", v.Route, v.Status)
	for i, p := range v.Problems {
		if i == show {
			fmt.Fprintf(&b, " (and %d more)", len(v.Problems)-show)
			break
		}
		if i > 0 {
			b.WriteByte(';')
		}
		b.WriteByte(' ')
		if p.Path != "" {
			b.WriteString(p.Path)
			b.WriteByte(' ')
		}
		b.WriteString(p.Rule)
	}
	if v.Truncated && len(v.Problems) <= show {
		b.WriteString(" (and more)")
	}
	return b.String()
}

// Error makes a *Violation usable as the private cause of a problem.Error.
func (v *Violation) Error() string { return "response does not match the OpenAPI spec: " + v.Detail() }

// Problem is the gateway refusal for enforce mode: response_too_large for a
// body over the size limit, invalid_upstream_response otherwise.
func (v *Violation) Problem() *problem.Error {
	code := problem.InvalidUpstreamResponse
	if v.Reason == ReasonTooLarge {
		code = problem.ResponseTooLarge
	}
	return problem.Wrap(code, "response does not match the vendor's OpenAPI spec: "+v.Detail(), v)
}

// sort orders problems by path, then rule, so the same response always
// reads the same (the JSON Schema library reports in map order).
func (v *Violation) sort() {
	slices.SortStableFunc(v.Problems, func(a, b FieldProblem) int {
		if c := strings.Compare(a.Path, b.Path); c != 0 {
			return c
		}
		return strings.Compare(a.Rule, b.Rule)
	})
}

func (v *Violation) add(path, rule string) {
	if len(v.Problems) >= maxProblems {
		v.Truncated = true
		return
	}
	v.Problems = append(v.Problems, FieldProblem{Path: path, Rule: rule})
}

// pointer builds a JSON pointer from instance path segments, writing an
// object key only when the spec declares it or it looks like an identifier
// (see segmentSafe); anything else becomes "*".
func (s *Spec) pointer(segs []string) string {
	if len(segs) == 0 {
		return ""
	}
	var b strings.Builder
	for _, seg := range segs {
		b.WriteByte('/')
		if s.segmentSafe(seg) {
			b.WriteString(escapePointer(seg))
		} else {
			b.WriteByte('*')
		}
	}
	return b.String()
}

// segmentSafe reports whether a key or index from the vendor's body may be
// repeated: an array index, a property name the spec declares, or an
// identifier ([A-Za-z_][A-Za-z0-9_-]{0,63}) such as a newly added field. An
// e-mail address, phone number or free text used as a map key is not.
func (s *Spec) segmentSafe(seg string) bool {
	if s != nil {
		if _, ok := s.names[seg]; ok {
			return true
		}
	}
	return identifierOrIndex(seg)
}

func identifierOrIndex(seg string) bool {
	if seg == "" || len(seg) > 64 {
		return false
	}
	digits := true
	for i := 0; i < len(seg); i++ {
		if seg[i] < '0' || seg[i] > '9' {
			digits = false
			break
		}
	}
	if digits {
		return len(seg) <= 9
	}
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		switch {
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
		case i > 0 && (c == '-' || c >= '0' && c <= '9'):
		default:
			return false
		}
	}
	return true
}

// jsonType names the JSON type of a decoded value (never the value).
func jsonType(v any) string {
	switch t := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case float64:
		if t == float64(int64(t)) {
			return "integer"
		}
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "unknown"
}

// clip shortens spec text (a pattern, an enum list) quoted in a rule.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
