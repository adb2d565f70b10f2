package validate

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzScanJSON checks the pre-scan against a reference built on
// encoding/json's tokenizer: for valid JSON, scanJSON must refuse exactly the
// documents that are too deep or repeat a key in one object.
func FuzzScanJSON(f *testing.F) {
	for _, tc := range checkCases() {
		f.Add([]byte(tc.body), 4)
	}
	f.Add([]byte(`{"a":[{"b":1},{"b":1}]}`), 3)
	f.Add([]byte(`{"a":1,"\u0061":2}`), 2)
	f.Add([]byte(`[[[[[[]]]]]]`), 5)
	f.Add([]byte(`{"a\\"":1,"a\"":2}`), 2)
	f.Fuzz(func(t *testing.T, body []byte, maxDepth int) {
		if maxDepth < 1 || maxDepth > 40 {
			return
		}
		got := scanJSON(body, maxDepth)
		if !json.Valid(body) || !utf8.Valid(body) {
			return // the scan may say anything; json.Unmarshal refuses it next
		}
		depth, dup := reference(t, body)
		switch {
		case depth > maxDepth:
			if got == nil || got.reason != ReasonTooDeep {
				t.Fatalf("depth %d > %d: scanJSON = %+v, want too_deep", depth, maxDepth, got)
			}
		case dup:
			if got == nil || got.rule != "duplicate key" {
				t.Fatalf("duplicate key: scanJSON = %+v, want duplicate key", got)
			}
		case got != nil:
			t.Fatalf("valid document (depth %d): scanJSON = %+v, want nil", depth, got)
		}
	})
}

// reference returns a document's maximum nesting depth and whether any
// object repeats a key, using encoding/json's tokenizer. When the document
// is too deep and also repeats a key, depth wins only if the deep part comes
// first, so reference stops at the first finding, like scanJSON does.
func reference(t *testing.T, body []byte) (depth int, dup bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	type level struct {
		object, wantKey bool
		keys            map[string]bool
	}
	var stack []level
	maxDepth := 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return maxDepth, false
		}
		if err != nil {
			t.Fatalf("reference tokenizer: %v", err)
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{', '[':
				if n := len(stack); n > 0 && stack[n-1].object {
					stack[n-1].wantKey = true
				}
				stack = append(stack, level{object: v == '{', wantKey: true, keys: map[string]bool{}})
				if len(stack) > maxDepth {
					maxDepth = len(stack)
				}
			default:
				stack = stack[:len(stack)-1]
				if n := len(stack); n > 0 && stack[n-1].object {
					stack[n-1].wantKey = true
				}
			}
			continue
		case string:
			if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].wantKey {
				if stack[n-1].keys[v] {
					return maxDepth, true
				}
				stack[n-1].keys[v] = true
				stack[n-1].wantKey = false
				continue
			}
		}
		if n := len(stack); n > 0 && stack[n-1].object {
			stack[n-1].wantKey = true
		}
	}
}

// FuzzCheckNeverEchoesValues feeds arbitrary bodies to Check and asserts
// that a violation never repeats a string value from the body that the spec
// does not itself contain: violations are safe to show and log.
func FuzzCheckNeverEchoesValues(f *testing.F) {
	spec := mustLoad(f, "testdata/pets30.yaml")
	v := New(spec, ModeEnforce, 8, 1<<16)
	raw, err := os.ReadFile("testdata/pets30.yaml")
	if err != nil {
		f.Fatal(err)
	}
	specText := string(raw)
	for _, tc := range checkCases() {
		f.Add(tc.body, "/v1/pets/{id}")
	}
	f.Add(`{"id":1,"name":"Rex","kind":"dog","weight_kg":1,"born":"2020-01-02","owner":{"name":"A","jane.doe@example.com":"x"}}`, "/v1/pets/{id}")
	f.Add(`{"data":[{"id":"secretvalue"}],"has_more":"SSN-123-45-6789"}`, "/v1/pets")
	f.Fuzz(func(t *testing.T, body, route string) {
		viol := v.Check("GET", route, 200, jsonHeader(), []byte(body))
		if viol == nil {
			return
		}
		detail := viol.Detail()
		values, keys := stringsIn(body)
		for _, k := range keys {
			// Identifier-like keys may be named in a path; other keys not.
			if !identifierOrIndex(k) {
				values = append(values, k)
			}
		}
		for _, s := range values {
			// Spec text (enum values, patterns, names) may appear; values
			// from the body may not.
			if len(s) < 4 || strings.Contains(specText, s) || strings.Contains(route, s) {
				continue
			}
			if strings.Contains(detail, s) {
				t.Fatalf("violation %q repeats body value %q", detail, s)
			}
		}
	})
}

// stringsIn returns the string values and the keys of a JSON document.
func stringsIn(body string) (values, keys []string) {
	var v any
	if json.Unmarshal([]byte(body), &v) != nil {
		return nil, nil
	}
	var walk func(any)
	walk = func(x any) {
		switch t := x.(type) {
		case string:
			values = append(values, t)
		case []any:
			for _, e := range t {
				walk(e)
			}
		case map[string]any:
			for k, e := range t {
				keys = append(keys, k)
				walk(e)
			}
		}
	}
	walk(v)
	return values, keys
}

// FuzzCompiledAgreesWithKin: for any JSON body, the compiled tree of every
// response schema of the test spec accepts exactly what kin-openapi's walk
// accepts (TestCompiledAgreesWithKin does the same on vendor specs).
func FuzzCompiledAgreesWithKin(f *testing.F) {
	spec := mustLoad(f, "testdata/pets30.yaml")
	fast := New(spec, ModeEnforce, 0, 0).fast
	var mts []*mediaType
	for _, m := range spec.mtIndex {
		if m.fast != nil {
			mts = append(mts, m)
		}
	}
	if len(mts) == 0 {
		f.Fatal("the test spec has no compiled schema")
	}
	for _, tc := range checkCases() {
		f.Add(tc.body)
	}
	f.Add(`{"data":[{"id":1,"name":"Rex","kind":"dog"}],"has_more":false}`)
	f.Fuzz(func(t *testing.T, body string) {
		var v any
		if json.Unmarshal([]byte(body), &v) != nil {
			return
		}
		for _, m := range mts {
			kinOK := m.schema.VisitJSON(v, fast...) == nil
			if got := m.fast.ok(v, fast); got != kinOK {
				t.Fatalf("body %s: compiled %v, kin %v", body, got, kinOK)
			}
			if got := tapeOK(t, m.fast, v, fast); got != kinOK {
				t.Fatalf("body %s: compiled on a tape %v, kin %v", body, got, kinOK)
			}
		}
	})
}

// FuzzTapeMatchesDecode: a body parses onto a tape only if Check's full
// path would accept it as JSON (the pre-scan passes and encoding/json
// decodes it), and the tape holds the values encoding/json decodes.
func FuzzTapeMatchesDecode(f *testing.F) {
	for _, tc := range checkCases() {
		f.Add(tc.body)
	}
	for _, s := range []string{`{"a":"\u00e9\ud800","b":[1,-0,1e5,1.5e-3,123456789012345678]}`, `{"a":1,"\u0061":2}`,
		`[1e400]`, "\"\x01\"", `{"a":[[[[[[[[[[]]]]]]]]]]}`, `-01`, `1.`, `[tru]`, ` {} `, `{"x":null,"y":true,"z":false}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		tp := getTape()
		defer tp.release()
		if !tp.parse([]byte(body), 8) {
			return
		}
		if se := scanJSON([]byte(body), 8); se != nil {
			t.Fatalf("tape parsed %q, the pre-scan refuses it: %s", body, se.rule)
		}
		var want any
		if err := json.Unmarshal([]byte(body), &want); err != nil {
			t.Fatalf("tape parsed %q, encoding/json refuses it: %v", body, err)
		}
		if got := tp.value(0); !reflect.DeepEqual(got, want) {
			t.Fatalf("body %q: tape holds %#v, encoding/json decodes %#v", body, got, want)
		}
	})
}
