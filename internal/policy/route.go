package policy

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// ErrBadRoute is wrapped by every problem [Compile] reports.
var ErrBadRoute = errors.New("bad route")

// Route is one allow rule as written in the config file.
type Route struct {
	// Method is an upper-case HTTP method: GET, HEAD, POST, PUT, PATCH,
	// DELETE or OPTIONS. Methods are case-sensitive (RFC 9110 §9.1), so "get"
	// is refused rather than guessed at. HEAD is not implied by GET: list it if
	// callers need it. TRACE and CONNECT are never routable.
	Method string
	// Path is a template: "/" followed by segments, each either a literal
	// (escaped the way it appears on the wire, held to the same hygiene as
	// request paths) or a whole-segment parameter "{name}", name being
	// [A-Za-z_][A-Za-z0-9_]*. A trailing "/" is part of the template and
	// matches only request paths with a trailing slash.
	Path string
	// Callers names the callers allowed on this route. It is a set: order and
	// repeats do not matter. It must not be empty, and "*" is refused: there
	// is no wildcard caller, every caller is listed by name.
	Callers []string
}

// numMethods is the number of routable methods; see methodIndex.
const numMethods = 7

// methodIndex returns the trie index of a routable method, or -1. Exact and
// case-sensitive.
func methodIndex(m string) int {
	switch m {
	case http.MethodGet:
		return 0
	case http.MethodHead:
		return 1
	case http.MethodPost:
		return 2
	case http.MethodPut:
		return 3
	case http.MethodPatch:
		return 4
	case http.MethodDelete:
		return 5
	case http.MethodOptions:
		return 6
	}
	return -1
}

// Table is a compiled route policy. It is immutable after [Compile] and safe
// for concurrent use. A nil *Table denies everything.
type Table struct {
	roots [numMethods]*node
}

// node is one segment position in a per-method trie.
type node struct {
	static map[string]*node
	// keys lists the static children so a {param} value can be compared to
	// them ignoring case without ranging over the map.
	keys  []string
	param *node
	route *compiledRoute
}

type compiledRoute struct {
	method   string
	template string
	callers  map[string]struct{}
	params   []param
}

type param struct {
	name  string
	index int // segment index
}

// Compile validates routes and builds a [Table]. It reports every problem,
// each prefixed with the route's index, joined with errors.Join, and each
// wrapping [ErrBadRoute]. Refused: an unknown or non-upper-case method; a path
// that does not start with "/" or whose literal segments fail [CheckPath]'s
// rules; an empty, malformed or repeated {param} name; a parameter that is not
// a whole segment ("/v1/ch_{id}"); a route whose method and shape (literals,
// with parameters in the same places) repeat an earlier one, whatever its
// parameter names; an empty caller list, an empty caller name, or "*".
func Compile(routes []Route) (*Table, error) {
	t := &Table{}
	var errs []error
	seen := make(map[string]int, len(routes))
	for i, rt := range routes {
		bad := func(format string, a ...any) {
			msg := fmt.Sprintf(format, a...)
			errs = append(errs, fmt.Errorf("routes[%d] %q %q: %w: %s", i, rt.Method, rt.Path, ErrBadRoute, msg))
		}
		cr, segs, problems := parseRoute(rt)
		for _, p := range problems {
			bad("%s", p)
		}
		if len(problems) > 0 {
			continue
		}
		key := rt.Method + " " + shape(segs)
		if j, dup := seen[key]; dup {
			bad("duplicate of routes[%d]", j)
			continue
		}
		seen[key] = i
		t.insert(methodIndex(rt.Method), segs, cr)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return t, nil
}

// tmplSeg is one parsed template segment: a decoded literal, or a parameter.
type tmplSeg struct {
	literal string
	param   string // non-empty for {param}
}

// parseRoute checks one route and returns it compiled, or the list of
// problems found.
func parseRoute(rt Route) (*compiledRoute, []tmplSeg, []string) {
	var problems []string
	if methodIndex(rt.Method) < 0 {
		msg := "unknown method"
		if up := strings.ToUpper(rt.Method); methodIndex(up) >= 0 {
			msg = fmt.Sprintf("unknown method (methods are case-sensitive: write %q)", up)
		}
		problems = append(problems, msg)
	}
	segs, pathProblem := parseTemplate(rt.Path)
	if pathProblem != "" {
		problems = append(problems, pathProblem)
	}
	callers := make(map[string]struct{}, len(rt.Callers))
	if len(rt.Callers) == 0 {
		problems = append(problems, "no callers (a route nobody may call is dead config)")
	}
	for _, c := range rt.Callers {
		switch c {
		case "":
			problems = append(problems, "empty caller name")
		case "*":
			problems = append(problems, `caller "*" is not a wildcard: list each caller`)
		}
		callers[c] = struct{}{}
	}
	if len(problems) > 0 {
		return nil, nil, problems
	}
	cr := &compiledRoute{method: rt.Method, template: rt.Path, callers: callers}
	for i, s := range segs {
		if s.param != "" {
			cr.params = append(cr.params, param{name: s.param, index: i})
		}
	}
	return cr, segs, nil
}

// parseTemplate splits a template into segments. It returns a short problem
// description instead of an error because Compile adds the route context.
func parseTemplate(path string) ([]tmplSeg, string) {
	if path == "" || path[0] != '/' {
		return nil, `path must start with "/"`
	}
	raw := strings.Split(path[1:], "/")
	if len(raw) > MaxSegments {
		return nil, ReasonTooManySegments
	}
	if len(path) > MaxPathLen {
		return nil, ReasonTooLong
	}
	segs := make([]tmplSeg, 0, len(raw))
	names := make(map[string]bool)
	for i, s := range raw {
		switch {
		case s == "" && i == len(raw)-1:
			segs = append(segs, tmplSeg{}) // trailing slash
		case s == "":
			return nil, ReasonEmptySegment
		case strings.ContainsAny(s, "{}"):
			name, ok := strings.CutPrefix(s, "{")
			name, ok2 := strings.CutSuffix(name, "}")
			switch {
			case !ok || !ok2 || strings.ContainsAny(name, "{}"):
				return nil, fmt.Sprintf("parameter %q must be a whole segment", s)
			case name == "":
				return nil, "empty parameter name"
			case !isParamName(name):
				return nil, fmt.Sprintf("parameter name %q must match [A-Za-z_][A-Za-z0-9_]*", name)
			case names[name]:
				return nil, fmt.Sprintf("parameter name %q repeated", name)
			}
			names[name] = true
			segs = append(segs, tmplSeg{param: name})
		default:
			lit, err := checkSegment(s)
			if err != nil {
				var pe *PathError
				if errors.As(err, &pe) {
					return nil, "literal segment: " + pe.Reason
				}
				return nil, "literal segment: " + err.Error()
			}
			segs = append(segs, tmplSeg{literal: lit})
		}
	}
	return segs, ""
}

func isParamName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9'
		if !ok {
			return false
		}
	}
	return s != ""
}

// shape renders segments with parameters anonymised, for duplicate detection.
// Literals are quoted so a literal "{}" could never collide with a parameter.
func shape(segs []tmplSeg) string {
	var b strings.Builder
	for _, s := range segs {
		b.WriteByte('/')
		if s.param != "" {
			b.WriteString("{}")
		} else {
			fmt.Fprintf(&b, "%q", s.literal)
		}
	}
	return b.String()
}

func (t *Table) insert(mi int, segs []tmplSeg, cr *compiledRoute) {
	if t.roots[mi] == nil {
		t.roots[mi] = &node{}
	}
	n := t.roots[mi]
	for _, s := range segs {
		if s.param != "" {
			if n.param == nil {
				n.param = &node{}
			}
			n = n.param
			continue
		}
		child := n.static[s.literal]
		if child == nil {
			if n.static == nil {
				n.static = make(map[string]*node)
			}
			child = &node{}
			n.static[s.literal] = child
			n.keys = append(n.keys, s.literal)
		}
		n = child
	}
	n.route = cr
}

// match finds the route for segs below n. At each position a literal child is
// tried first and the {param} child only if the literal branch matched
// nothing (static-first with backtracking), so the winner is the route whose
// first literal-vs-parameter difference is a literal. A parameter matches one
// non-empty segment, and not a value that equals a sibling literal ignoring
// case: a case-insensitive vendor would read "/v1/Admin" as the literal
// "/v1/admin" route while the policy read it as "/v1/{kind}". (A value equal
// to a literal whose branch matched nothing is fine: every reader sees the
// same bytes.) Each trie node
// is visited at most once, so the work is bounded by the table size.
func (n *node) match(segs []string) *compiledRoute {
	if len(segs) == 0 {
		return n.route
	}
	s := segs[0]
	if child := n.static[s]; child != nil {
		if r := child.match(segs[1:]); r != nil {
			return r
		}
	}
	if n.param == nil || s == "" || n.foldsToStatic(s) {
		return nil
	}
	return n.param.match(segs[1:])
}

func (n *node) foldsToStatic(s string) bool {
	for _, k := range n.keys {
		if k != s && strings.EqualFold(k, s) {
			return true
		}
	}
	return false
}
