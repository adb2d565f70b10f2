package policy

import (
	"net/http"
	"strings"
)

// Args is what the policy decides on.
type Args struct {
	// Method is the request method as received; it is matched exactly, so
	// "post" is not POST and matches no route.
	Method string
	// Segments are the decoded segments from [CheckPath]. Decide trusts them:
	// passing anything else voids the hygiene guarantees.
	Segments []string
	// Caller is the authenticated caller name.
	Caller string
}

// Decision is the policy's answer.
type Decision struct {
	// Allowed is true only when a route matched and lists the caller.
	Allowed bool
	// Route is the matched template, e.g. "/v1/charges/{id}", or "" when no
	// route matched. Safe for logs and metric labels (bounded by config).
	Route string
	// Reason explains a denial for the problem detail and logs, e.g.
	// "caller billing may not POST /v1/payouts" (the template when a route
	// matched) or "no route for GET /v1/x" (a sanitised request path of at
	// most 128 bytes). Empty when Allowed.
	Reason string

	route    *compiledRoute
	segments []string
}

// Param returns the value of the matched route's {name} parameter. It
// allocates nothing: the value is the decoded segment from Args.Segments.
func (d Decision) Param(name string) (string, bool) {
	if d.route == nil {
		return "", false
	}
	for _, p := range d.route.params {
		if p.name == name {
			return d.segments[p.index], true
		}
	}
	return "", false
}

// Decide matches a.Method and a.Segments against the table and checks
// a.Caller against the matched route. Precedence is static-first: at each
// segment a literal beats a {param}, and the {param} branch is tried only if
// the literal branch matches no route. A {param} never matches "" (a trailing
// slash) nor a case variant of a sibling literal ("Admin" next to "admin"),
// because a case-insensitive vendor would read it as that literal. Only the
// single best-matching route is consulted: if it does not list the caller the
// request is denied even if a less specific route would have allowed it, so
// that adding a more specific route can only narrow access. Decide does not
// allocate when it allows a request.
func (t *Table) Decide(a Args) Decision {
	var r *compiledRoute
	if mi := methodIndex(a.Method); t != nil && mi >= 0 && t.roots[mi] != nil {
		r = t.roots[mi].match(a.Segments)
	}
	if r == nil {
		return Decision{Reason: "no route for " + sanitise(a.Method, maxReasonMethod) + " " + sanitisePath(a.Segments)}
	}
	d := Decision{Route: r.template, route: r, segments: a.Segments}
	if _, ok := r.callers[a.Caller]; ok && a.Caller != "" {
		d.Allowed = true
		return d
	}
	who := "caller " + sanitise(a.Caller, maxReasonCaller)
	if a.Caller == "" {
		who = "anonymous caller"
	}
	d.Reason = who + " may not " + r.method + " " + r.template
	return d
}

const (
	maxReasonPath   = 128
	maxReasonMethod = 16
	maxReasonCaller = 64
)

// sanitisePath rebuilds a printable, bounded path from segments for a
// denial reason: bytes outside printable ASCII are %XX-escaped, "/" and "%"
// inside a segment too, and the result is cut at maxReasonPath bytes with a
// "..." marker.
func sanitisePath(segs []string) string {
	var b strings.Builder
	for _, s := range segs {
		b.WriteByte('/')
		for i := 0; i < len(s); i++ {
			writeSafe(&b, s[i], true)
			if b.Len() > maxReasonPath {
				return truncate(b.String(), maxReasonPath)
			}
		}
	}
	if len(segs) == 0 {
		return "/"
	}
	return b.String()
}

// sanitise makes a short caller-supplied token printable and bounded.
func sanitise(s string, limit int) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		writeSafe(&b, s[i], false)
		if b.Len() > limit {
			return truncate(b.String(), limit)
		}
	}
	return b.String()
}

func writeSafe(b *strings.Builder, c byte, inSegment bool) {
	const hex = "0123456789ABCDEF"
	if c > 0x20 && c < 0x7f && !(inSegment && (c == '/' || c == '%')) && c != '"' && c != '\\' {
		b.WriteByte(c)
		return
	}
	b.WriteByte('%')
	b.WriteByte(hex[c>>4])
	b.WriteByte(hex[c&0xf])
}

func truncate(s string, limit int) string {
	return s[:limit-3] + "..."
}

// StripMethodOverride deletes X-HTTP-Method-Override, X-HTTP-Method and
// X-Method-Override from h, whatever the letter case of the stored name.
// Vendor frameworks honour them (Rails, Laravel, Express method-override,
// Google APIs), so a POST the policy allowed could run as a DELETE.
func StripMethodOverride(h http.Header) {
	deleteFold(h, "X-Http-Method-Override", "X-Http-Method", "X-Method-Override")
}

// StripPathOverride deletes X-Original-URL and X-Rewrite-URL from h, whatever
// the letter case of the stored name. IIS URL Rewrite and Symfony/Zend route on
// them instead of the path the policy checked. Request headers are also
// allow-listed per integration; this holds even where that list is broad.
func StripPathOverride(h http.Header) {
	deleteFold(h, "X-Original-Url", "X-Rewrite-Url")
}

// deleteFold deletes every key of h equal to one of names ignoring case, so a
// header set through the map with a non-canonical name goes too.
func deleteFold(h http.Header, names ...string) {
	for k := range h {
		for _, n := range names {
			if strings.EqualFold(k, n) {
				delete(h, k)
				break
			}
		}
	}
}
