package validate

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp/syntax"
	"strings"
	"sync"
	"testing"
)

// The vendor specs are fetched by scripts/fetch-specs.sh into
// PORTCULLIS_SPECS_DIR (shared test convention: skip when unset, unless
// PORTCULLIS_REQUIRE_SERVERS=1).
func specsDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("PORTCULLIS_SPECS_DIR")
	if dir == "" {
		if os.Getenv("PORTCULLIS_REQUIRE_SERVERS") == "1" {
			t.Fatal("PORTCULLIS_SPECS_DIR is not set (run scripts/fetch-specs.sh)")
		}
		t.Skip("PORTCULLIS_SPECS_DIR not set; run scripts/fetch-specs.sh and export it")
	}
	return dir
}

// vendor is a loaded real spec with its raw JSON for the generator.
type vendor struct {
	spec *Spec
	raw  map[string]any
}

type vendorEntry struct {
	once sync.Once
	v    *vendor
	err  string
}

var (
	vendorMu    sync.Mutex
	vendorCache = map[string]*vendorEntry{}
)

// loadVendor loads a spec from the specs dir once per test binary (GitHub's
// takes seconds); different specs load in parallel.
func loadVendor(t testing.TB, file string) *vendor {
	t.Helper()
	path := filepath.Join(specsDir(t), file)
	vendorMu.Lock()
	e := vendorCache[path]
	if e == nil {
		e = &vendorEntry{}
		vendorCache[path] = e
	}
	vendorMu.Unlock()
	e.once.Do(func() {
		s, err := LoadSpec(path)
		if err != nil {
			e.err = err.Error()
			return
		}
		data, err := os.ReadFile(path)
		if err != nil {
			e.err = err.Error()
			return
		}
		var raw map[string]any
		if err := json.Unmarshal(data, &raw); err != nil {
			e.err = err.Error()
			return
		}
		e.v = &vendor{spec: s, raw: raw}
	})
	if e.v == nil {
		t.Fatalf("loading %s: %s", file, e.err)
	}
	return e.v
}

// gen builds JSON values that should satisfy a schema of the raw spec. It
// works on the raw document, independently of kin-openapi, so it is a
// second opinion rather than the validator grading itself.
type gen struct {
	doc      map[string]any
	maxDepth int
}

// responseSchema finds a raw response schema: paths[p][method].responses[code].content[mt].schema.
func (g *gen) responseSchema(path, method, code, mt string) map[string]any {
	item, _ := g.doc["paths"].(map[string]any)[path].(map[string]any)
	op, _ := item[method].(map[string]any)
	resps, _ := op["responses"].(map[string]any)
	r, _ := resps[code].(map[string]any)
	if r == nil {
		return nil
	}
	r = g.resolve(r)
	c, _ := r["content"].(map[string]any)
	m, _ := c[mt].(map[string]any)
	sc, _ := m["schema"].(map[string]any)
	return sc
}

func (g *gen) resolve(s map[string]any) map[string]any {
	for range 20 {
		ref, ok := s["$ref"].(string)
		if !ok {
			return s
		}
		var cur any = g.doc
		for _, p := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
			p = strings.ReplaceAll(strings.ReplaceAll(p, "~1", "/"), "~0", "~")
			m, _ := cur.(map[string]any)
			cur = m[p]
		}
		n, _ := cur.(map[string]any)
		if n == nil {
			return map[string]any{}
		}
		s = n
	}
	return s
}

func (g *gen) value(s0 any, depth int) any {
	s, ok := s0.(map[string]any)
	if !ok {
		return "x"
	}
	s = g.resolve(s)
	if e, ok := s["enum"].([]any); ok && len(e) > 0 {
		for _, v := range e {
			if v != nil {
				return v
			}
		}
		return e[0]
	}
	if depth > g.maxDepth && s["nullable"] == true {
		return nil
	}
	if all, ok := s["allOf"].([]any); ok {
		out := map[string]any{}
		var last any
		for _, sub := range all {
			if m, ok := g.value(sub, depth).(map[string]any); ok {
				for k, x := range m {
					out[k] = x
				}
			} else {
				last = g.value(sub, depth)
			}
		}
		if len(out) == 0 && last != nil {
			return last
		}
		return out
	}
	for _, k := range []string{"oneOf", "anyOf"} {
		alts, ok := s[k].([]any)
		if !ok || len(alts) == 0 {
			continue
		}
		pick := alts[0]
		if depth > g.maxDepth/2 {
			// Prefer a branch that is not an object, to end recursion.
			for _, a := range alts {
				if am, ok := a.(map[string]any); ok {
					am = g.resolve(am)
					if t, _ := am["type"].(string); t != "object" && am["properties"] == nil {
						pick = a
						break
					}
				}
			}
		}
		// Keywords next to oneOf/anyOf apply to the branch too.
		if pm, ok := pick.(map[string]any); ok {
			merged := map[string]any{}
			for key, x := range g.resolve(pm) {
				merged[key] = x
			}
			for key, x := range s {
				if key == "oneOf" || key == "anyOf" || key == "discriminator" {
					continue
				}
				if cur, ok := merged[key]; !ok || isEmptyMap(cur) {
					merged[key] = x
				}
			}
			v := g.value(merged, depth+1)
			g.tagDiscriminator(s, pick, v)
			return v
		}
		v := g.value(pick, depth+1)
		g.tagDiscriminator(s, pick, v)
		return v
	}
	switch typeOfRaw(s) {
	case "object":
		return g.object(s, depth)
	case "array":
		n := 1
		if m, ok := s["minItems"].(float64); ok && int(m) > n {
			n = int(m)
		}
		if m, ok := s["minItems"].(float64); depth > g.maxDepth && (!ok || m == 0) {
			return []any{}
		}
		out := make([]any, 0, n)
		for i := range n {
			v := g.value(s["items"], depth+1)
			if str, ok := v.(string); ok && i > 0 {
				v = str + strings.Repeat("y", i)
			}
			out = append(out, v)
		}
		return out
	case "integer":
		v := 1.0
		if m, ok := s["minimum"].(float64); ok && v < m {
			v = m
		}
		if m, ok := s["maximum"].(float64); ok && v > m {
			v = m
		}
		return int64(v)
	case "number":
		v := 1.5
		if m, ok := s["minimum"].(float64); ok && v < m {
			v = m + 0.5
		}
		if m, ok := s["maximum"].(float64); ok && v > m {
			v = m
		}
		return v
	case "boolean":
		return true
	default:
		return g.str(s)
	}
}

// tagDiscriminator sets the discriminator property of v to the branch picked.
func (g *gen) tagDiscriminator(s map[string]any, pick, v any) {
	d, ok := s["discriminator"].(map[string]any)
	m, isObj := v.(map[string]any)
	if !ok || !isObj {
		return
	}
	prop, _ := d["propertyName"].(string)
	pm, _ := pick.(map[string]any)
	ref, _ := pm["$ref"].(string)
	tag := ref[strings.LastIndex(ref, "/")+1:]
	if mapping, ok := d["mapping"].(map[string]any); ok {
		for k, target := range mapping {
			if target == ref {
				tag = k
			}
		}
	}
	m[prop] = tag
}

func isEmptyMap(x any) bool {
	m, ok := x.(map[string]any)
	return ok && len(m) == 0
}

func (g *gen) object(s map[string]any, depth int) any {
	out := map[string]any{}
	props, _ := s["properties"].(map[string]any)
	req := map[string]bool{}
	if r, ok := s["required"].([]any); ok {
		for _, x := range r {
			if k, ok := x.(string); ok {
				req[k] = true
			}
		}
	}
	for k, ps := range props {
		if !req[k] && depth > g.maxDepth/2 {
			continue
		}
		out[k] = g.value(ps, depth+1)
	}
	return out
}

func (g *gen) str(s map[string]any) string {
	v := map[any]string{
		"date-time": "2024-01-02T03:04:05Z", "date": "2024-01-02", "uri": "https://example.com/x",
		"uri-template": "https://example.com/{x}", "email": "a@example.com",
		"uuid": "123e4567-e89b-12d3-a456-426614174000", "ipv4": "192.0.2.1", "ipv6": "2001:db8::1",
	}[s["format"]]
	if v == "" {
		v = "x"
	}
	if p, ok := s["pattern"].(string); ok {
		if re, err := syntax.Parse(p, syntax.Perl); err == nil {
			var b strings.Builder
			fromRegexp(&b, re.Simplify())
			v = b.String()
		}
	}
	if m, ok := s["minLength"].(float64); ok {
		for len(v) < int(m) {
			v += "x"
		}
	}
	if m, ok := s["maxLength"].(float64); ok && len(v) > int(m) {
		v = v[:int(m)]
	}
	return v
}

// fromRegexp writes a short string matching re.
func fromRegexp(b *strings.Builder, re *syntax.Regexp) {
	switch re.Op {
	case syntax.OpLiteral:
		b.WriteString(string(re.Rune))
	case syntax.OpCharClass:
		if len(re.Rune) > 0 {
			r := re.Rune[0]
			for i := 0; i+1 < len(re.Rune); i += 2 {
				if re.Rune[i] <= 'a' && 'a' <= re.Rune[i+1] {
					r = 'a'
					break
				}
			}
			b.WriteRune(r)
		}
	case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		b.WriteByte('a')
	case syntax.OpCapture, syntax.OpPlus:
		fromRegexp(b, re.Sub[0])
	case syntax.OpConcat:
		for _, s := range re.Sub {
			fromRegexp(b, s)
		}
	case syntax.OpAlternate:
		fromRegexp(b, re.Sub[0])
	case syntax.OpRepeat:
		for range re.Min {
			fromRegexp(b, re.Sub[0])
		}
	}
}

func typeOfRaw(s map[string]any) string {
	if t, ok := s["type"].(string); ok {
		return t
	}
	if s["properties"] != nil || s["additionalProperties"] != nil {
		return "object"
	}
	if s["items"] != nil {
		return "array"
	}
	return ""
}

// generate returns a JSON body for a response schema.
func (g *gen) generate(t testing.TB, path, method, code string) []byte {
	t.Helper()
	sc := g.responseSchema(path, method, code, "application/json")
	if sc == nil {
		t.Fatalf("no application/json schema for %s %s %s", method, path, code)
	}
	b, err := json.Marshal(g.value(sc, 0))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
