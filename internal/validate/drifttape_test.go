package validate

import (
	"encoding/json"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestDriftTapeMatchesValue: drift detection fed from a tape (what Check
// does for a body the compiled tree accepts) raises the same events as
// when fed the decoded body, with a spec and without one.
func TestDriftTapeMatchesValue(t *testing.T) {
	v := loadVendor(t, "stripe.com.json")
	g := &gen{doc: v.raw, maxDepth: 3}
	var bodies [][]byte
	for _, op := range jsonOperations(g, "200")[:60] {
		body := g.generate(t, op.path, op.method, op.code)
		bodies = append(bodies, body)
	}
	for _, spec := range []*Spec{v.spec, nil} {
		var byValue, byTape eventLog
		dv := NewDrift(spec, 3, byValue.emit)
		dt := NewDrift(spec, 3, byTape.emit)
		feed := func(route string, b []byte) {
			var val any
			if err := json.Unmarshal(b, &val); err != nil {
				t.Fatal(err)
			}
			dv.ObserveValue("GET", route, 200, val)
			tp := getTape()
			if !tp.parse(b, DefaultMaxDepth) {
				t.Fatalf("%s does not parse onto a tape", b)
			}
			dt.observeTape("GET", route, 200, tp)
			tp.release()
		}
		ops := jsonOperations(g, "200")[:60]
		for round := range 6 {
			for i, op := range ops {
				var m any
				if err := json.Unmarshal(bodies[i], &m); err != nil {
					t.Fatal(err)
				}
				if obj, ok := m.(map[string]any); ok && round >= 4 {
					// After the baseline: a new field, a type change, a
					// missing field.
					obj["zz_new_field"] = []any{map[string]any{"a": 1.5}}
					keys := sortedKeys(obj)
					obj[keys[0]] = map[string]any{"was": "changed"}
					delete(obj, keys[len(keys)/2])
				}
				b, _ := json.Marshal(m)
				feed(op.path, b)
			}
		}
		want, got := byValue.messages(), byTape.messages()
		sort.Strings(want)
		sort.Strings(got)
		if len(want) == 0 {
			t.Fatal("no drift events: the test did not exercise drift detection")
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("spec %v: events from a tape differ (-value +tape):\n%s", spec != nil, diff)
		}
		t.Logf("spec %v: %d events, e.g. %s", spec != nil, len(want), strings.Join(want[:min(2, len(want))], "; "))
	}
}

// TestDriftTapeRepeatedShape: observeTape skips a body shaped like one it
// walked after learning; the events stay those of the decoded walk, with
// other shapes in between, and a changed body after repeats is still
// reported.
func TestDriftTapeRepeatedShape(t *testing.T) {
	var byValue, byTape eventLog
	dv := NewDrift(nil, 2, byValue.emit)
	dt := NewDrift(nil, 2, byTape.emit)
	feed := func(b string) {
		var val any
		if err := json.Unmarshal([]byte(b), &val); err != nil {
			t.Fatal(err)
		}
		dv.ObserveValue("GET", "/x", 200, val)
		tp := getTape()
		if !tp.parse([]byte(b), DefaultMaxDepth) {
			t.Fatalf("%s does not parse onto a tape", b)
		}
		dt.observeTape("GET", "/x", 200, tp)
		tp.release()
	}
	same := `{"id":"a","n":1,"m":{"k":{"v":1}},"l":[{"x":true}]}`
	for range 4 {
		feed(same)
	}
	for i := range 3 {
		feed(`{"id":"a","n":1,"m":{"key` + strings.Repeat("q", i) + `":{"w":"s"}},"l":[{"x":true}]}`)
		feed(same)
	}
	for range 3 {
		feed(same)
	}
	feed(`{"id":"a","n":1.5,"m":{"k":{"v":1}},"l":[{"x":true,"y":null}]}`)
	feed(`{"id":"a","n":1,"l":[{"x":true}]}`)
	feed(same)
	want, got := byValue.messages(), byTape.messages()
	sort.Strings(want)
	sort.Strings(got)
	if len(want) < 3 {
		t.Fatalf("only %d drift events: the test did not exercise drift detection: %v", len(want), want)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events from a tape differ (-value +tape):\n%s", diff)
	}
	t.Logf("%d events: %s", len(want), strings.Join(want, "; "))
}

// TestMatchShape: matchShape accepts a body exactly when appendShape gives
// it the same bytes.
func TestMatchShape(t *testing.T) {
	bodies := []string{
		`{"a":1,"b":[1,2,{"c":"x"}],"d":null}`,
		`{"a":1,"b":[1,2,{"c":"y"}],"d":null}`,
		`{"a":1.5,"b":[1,2,{"c":"x"}],"d":null}`,
		`{"a":1,"b":[1,2,{"c":"x"}],"d":true}`,
		`{"a":1,"b":[1,2,{"cc":"x"}],"d":null}`,
		`{"a":1,"b":[1,2,{"c":"x"},3],"d":null}`,
		`{"a":1,"b":[1,2],"d":null}`,
		`{"b":[1,2,{"c":"x"}],"a":1,"d":null}`,
		`{"a":1,"b":[1,2,{"c":"x"}]}`,
		`{"a\u0062":1}`, `{"ab":1}`, `{}`, `[]`, `[{}]`, `"s"`, `1`,
	}
	shape := func(b string) ([]byte, *tape) {
		tp := getTape()
		if !tp.parse([]byte(b), DefaultMaxDepth) {
			t.Fatalf("%s does not parse", b)
		}
		s, ok := appendShape(nil, tp, 0, 0)
		if !ok {
			t.Fatalf("%s: no shape", b)
		}
		return s, tp
	}
	for _, a := range bodies {
		sa, ta := shape(a)
		for _, b := range bodies {
			sb, tb := shape(b)
			end, same := matchShape(sa, 0, tb, 0, 0)
			if got, want := same && end == len(sa), string(sa) == string(sb); got != want {
				t.Errorf("shape of %s matched against %s: %v, want %v", a, b, got, want)
			}
			tb.release()
		}
		ta.release()
	}
}
