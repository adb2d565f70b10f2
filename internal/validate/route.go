package validate

import (
	"mime"
	"strings"
)

// Gateway route templates use whole-segment parameters ("/v1/charges/{id}");
// spec templates may also put a parameter inside a segment
// ("/Messages/{Sid}.json"). Matching ignores parameter names and goes segment
// by segment, preferring the most literal candidate:
//
//	gateway segment   spec segment        score
//	literal "search"  literal "search"    2
//	"{id}"            "{charge}"          2
//	"{file}"          "{Sid}.json"        1  (a parameter covers the whole segment)
//	literal "search"  "{charge}"          1  (a literal is one value of the parameter)
//
// The candidate with the highest total wins; a tie between two spec paths is
// ambiguous and matches nothing (so `check` reports it instead of guessing).
// A template that starts with the spec's server base path ("/api" of
// https://slack.com/api) is also tried with that prefix removed.

// normalizeTemplate replaces every "{name}" with "{}".
func normalizeTemplate(p string) string {
	if !strings.Contains(p, "{") {
		return p
	}
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); i++ {
		if p[i] == '{' {
			if j := strings.IndexByte(p[i:], '}'); j > 0 && !strings.ContainsRune(p[i:i+j], '/') {
				b.WriteString("{}")
				i += j
				continue
			}
		}
		b.WriteByte(p[i])
	}
	return b.String()
}

func splitSegments(norm string) []string {
	return strings.Split(strings.TrimPrefix(norm, "/"), "/")
}

func (s *Spec) match(method, template string) *operation {
	if op := s.matchPath(method, template); op != nil {
		return op
	}
	if s.base != "" && strings.HasPrefix(template, s.base+"/") {
		return s.matchPath(method, strings.TrimPrefix(template, s.base))
	}
	return nil
}

func (s *Spec) matchPath(method, template string) *operation {
	segs := splitSegments(normalizeTemplate(template))
	var best *operation
	bestScore, tie := -1, false
	for _, c := range s.paths[method] {
		score, ok := segmentScore(segs, c.segs)
		if !ok {
			continue
		}
		switch {
		case score > bestScore:
			best, bestScore, tie = c.op, score, false
		case score == bestScore:
			tie = true
		}
	}
	if tie {
		return nil
	}
	return best
}

func segmentScore(route, spec []string) (int, bool) {
	if len(route) != len(spec) {
		return 0, false
	}
	total := 0
	for i, r := range route {
		sp := spec[i]
		switch {
		case r == sp:
			total += 2
		case r == "{}" && strings.Contains(sp, "{}"):
			total++
		case sp == "{}" && !strings.Contains(r, "{"):
			total++
		default:
			return 0, false
		}
	}
	return total, true
}

// isJSONMediaType reports whether a documented media type (or media range)
// carries JSON: application/json, application/*+json, or a range that can
// only be JSON.
func isJSONMediaType(mt string) bool {
	base, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(mt)), ";")
	base = strings.TrimSpace(base)
	return base == "application/json" || strings.HasSuffix(base, "+json")
}

// safeMediaType returns the base media type of a Content-Type header if it
// parses, else "unparseable". It is the only part of a vendor header that a
// Violation repeats.
func safeMediaType(ct string) string {
	if ct == "" {
		return "none"
	}
	base, _, err := mime.ParseMediaType(ct)
	if err != nil || len(base) > 64 {
		return "unparseable"
	}
	return base
}
