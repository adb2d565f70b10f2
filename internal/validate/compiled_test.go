package validate

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// mutations break a value in one way each, to reach the rejecting branches
// of both validators.
var mutations = []struct {
	name string
	to   func(old any) (any, bool) // false: leave the value as it was
}{
	{"null", func(any) (any, bool) { return nil, true }},
	{"string", func(any) (any, bool) { return "x", true }},
	{"long-string", func(any) (any, bool) { return strings.Repeat("é", 5001), true }},
	{"empty-string", func(any) (any, bool) { return "", true }},
	{"integer", func(any) (any, bool) { return float64(7), true }},
	{"fraction", func(any) (any, bool) { return 1.5, true }},
	{"negative", func(any) (any, bool) { return float64(-1e12), true }},
	{"bool", func(any) (any, bool) { return true, true }},
	{"array", func(any) (any, bool) { return []any{}, true }},
	{"object", func(any) (any, bool) { return map[string]any{}, true }},
	{"extra-key", func(old any) (any, bool) {
		m, ok := old.(map[string]any)
		if ok {
			m["zz_undeclared"] = float64(1)
		}
		return m, ok
	}},
	{"drop-key", func(old any) (any, bool) {
		m, ok := old.(map[string]any)
		if !ok || len(m) == 0 {
			return old, false
		}
		keys := sortedKeys(m)
		delete(m, keys[len(keys)/2])
		return m, true
	}},
	{"grow-array", func(old any) (any, bool) {
		a, ok := old.([]any)
		if !ok || len(a) == 0 {
			return old, false
		}
		return append(a, a[0], a[0]), true
	}},
}

// sites lists the values of v in depth-first order, each as a setter.
func sites(v any, out *[]func(func(any) (any, bool)) bool) {
	switch x := v.(type) {
	case map[string]any:
		for _, k := range sortedKeys(x) {
			*out = append(*out, func(f func(any) (any, bool)) bool {
				nv, ok := f(x[k])
				x[k] = nv
				return ok
			})
			sites(x[k], out)
		}
	case []any:
		for i := range x {
			*out = append(*out, func(f func(any) (any, bool)) bool {
				nv, ok := f(x[i])
				x[i] = nv
				return ok
			})
			sites(x[i], out)
		}
	}
}

// TestCompiledAgreesWithKin is the differential test of the compiled tree:
// on generated valid responses of real vendor specs and on those responses
// broken at sampled places in each of the ways above, the compiled tree and
// kin-openapi's walk (with the options Check uses) accept and refuse the
// same bodies.
func TestCompiledAgreesWithKin(t *testing.T) {
	files := []string{"stripe.com.json", "twilio.com.json", "slack.com.json", "api.github.com.json"}
	sitesPerOp := 3
	if testing.Short() {
		sitesPerOp = 1
	}
	for _, file := range files {
		t.Run(file, func(t *testing.T) {
			t.Parallel()
			v := loadVendor(t, file)
			fast := New(v.spec, ModeEnforce, 0, 0).fast
			g := &gen{doc: v.raw, maxDepth: 3}
			rng := rand.New(rand.NewPCG(1, uint64(len(file))))
			var disagree []string
			compared, rejected := 0, 0
			for _, op := range jsonOperations(g, "200", "201") {
				mt := mediaOf(t, v.spec, op)
				if mt == nil || mt.fast == nil {
					continue
				}
				body := g.generate(t, op.path, op.method, op.code)
				compare := func(what string, val any) {
					compared++
					kinOK := mt.schema.VisitJSON(val, fast...) == nil
					if !kinOK {
						rejected++
					}
					if got := mt.fast.ok(val, fast); got != kinOK {
						disagree = append(disagree, fmt.Sprintf("%s %s %s, %s: compiled %v, kin %v", op.method, op.path, op.code, what, got, kinOK))
					}
					if got := tapeOK(t, mt.fast, val, fast); got != kinOK {
						disagree = append(disagree, fmt.Sprintf("%s %s %s, %s: compiled on a tape %v, kin %v", op.method, op.path, op.code, what, got, kinOK))
					}
				}
				compare("as generated", decode(t, body))
				var n []func(func(any) (any, bool)) bool
				sites(decode(t, body), &n)
				for range min(sitesPerOp, len(n)) {
					i := rng.IntN(len(n))
					for _, m := range mutations {
						val := decode(t, body)
						var s []func(func(any) (any, bool)) bool
						sites(val, &s)
						if s[i](m.to) {
							compare("site "+strconv.Itoa(i)+" "+m.name, val)
						}
					}
				}
			}
			if compared < 1000 || rejected == 0 {
				t.Errorf("compared %d bodies, %d rejected: the test did not exercise both outcomes", compared, rejected)
			}
			sort.Strings(disagree)
			if len(disagree) > 0 {
				t.Errorf("%d of %d bodies judged differently, e.g.:\n%s", len(disagree), compared, strings.Join(disagree[:min(20, len(disagree))], "\n"))
			}
			t.Logf("%d bodies compared, %d rejected by both", compared, rejected)
		})
	}
}

// TestCompiledTestdata runs the same comparison on the package's own 3.0
// spec, whose schemas use nullable, allOf, oneOf, enums and formats.
func TestCompiledTestdata(t *testing.T) {
	spec, err := LoadSpec(filepath.Join("testdata", "pets30.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	fast := New(spec, ModeEnforce, 0, 0).fast
	bodies := []string{`{}`, `[]`, `null`, `1`, `"x"`, `{"id":1,"name":"rex"}`, `[{"id":1,"name":"rex"}]`,
		`{"id":"1","name":"rex"}`, `{"id":1,"name":null}`, `{"id":1.5,"name":"rex"}`, `{"id":1,"name":"rex","tag":null}`,
		`{"id":1,"name":"rex","zz":1}`, `[{"id":1}]`, `[null]`, `{"code":1,"message":"m"}`}
	compared := 0
	for _, sp := range spec.paths {
		for _, p := range sp {
			for _, code := range p.op.responses.Keys() {
				for _, m := range p.op.responses.Value(code).Value.Content {
					mt := spec.mediaFor(m)
					if mt == nil || mt.fast == nil {
						continue
					}
					for _, b := range bodies {
						val := decode(t, []byte(b))
						kinOK := mt.schema.VisitJSON(val, fast...) == nil
						if got := mt.fast.ok(val, fast); got != kinOK {
							t.Errorf("%s %s %s, %s: compiled %v, kin %v", p.op.method, p.path, code, b, got, kinOK)
						}
						if got := tapeOK(t, mt.fast, val, fast); got != kinOK {
							t.Errorf("%s %s %s, %s: compiled on a tape %v, kin %v", p.op.method, p.path, code, b, got, kinOK)
						}
						compared++
					}
				}
			}
		}
	}
	if compared == 0 {
		t.Fatal("nothing compared")
	}
}

// tapeOK is the compiled tree's verdict on val read from its JSON text
// through a tape.
func tapeOK(t *testing.T, n *cnode, val any, fast []openapi3.SchemaValidationOption) bool {
	t.Helper()
	b, err := json.Marshal(val)
	if err != nil {
		t.Fatal(err)
	}
	tp := getTape()
	defer tp.release()
	if !tp.parse(b, DefaultMaxDepth) {
		t.Fatalf("%s does not parse onto a tape", b)
	}
	return n.okTape(tp, 0, fast)
}

func decode(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func mediaOf(t *testing.T, s *Spec, op rawOp) *mediaType {
	t.Helper()
	o := s.lookup(strings.ToUpper(op.method), op.path)
	if o == nil || o.responses == nil {
		return nil
	}
	status, _ := strconv.Atoi(op.code)
	rr := o.responses.Status(status)
	if rr == nil || rr.Value == nil {
		return nil
	}
	var m *openapi3.MediaType
	if m = rr.Value.Content.Get("application/json"); m == nil {
		return nil
	}
	return s.mediaFor(m)
}
