package validate

import (
	"bytes"
	"encoding/json"
	"fmt"
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

// TestTapeShape: the shape the parse builds is the one appendShape (the
// rule written out as a walk of the tape) gives, so two bodies share a
// shape exactly when drift's walk meets the same nodes with the same types.
func TestTapeShape(t *testing.T) {
	deep := strings.Repeat(`{"a":`, driftMaxDepth+3) + `[1]` + strings.Repeat(`}`, driftMaxDepth+3)
	long := `[` + strings.Repeat(`{"k":[1,"x",{}]},`, driftArraySample+4) + `{"k":2.5}]`
	var keys []string
	for i := range 20 {
		keys = append(keys, fmt.Sprintf(`"%s%d":1`, strings.Repeat("k", 1000), i))
	}
	huge := `{` + strings.Join(keys, ",") + `}`
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
		`{"a\u0062":1}`, `{"ab":1}`, `{}`, `[]`, `[{}]`, `"s"`, `1`, `-0`, `1e300`, `false`,
		deep, long, huge,
	}
	for _, b := range bodies {
		tp := getTape()
		if !tp.parse([]byte(b), DefaultMaxDepth) {
			t.Fatalf("%.40s does not parse", b)
		}
		want, ok := appendShape(nil, tp, 0, 0)
		if tp.shapeOK != ok || ok && !bytes.Equal(tp.shape, want) {
			t.Errorf("%.40s: parse's shape (ok %v) %q, appendShape's (ok %v) %q", b, tp.shapeOK, tp.shape, ok, want)
		}
		tp.release()
	}
}

// appendShape appends to b what walkTape's outcome depends on in the value
// at token i: each value's JSON type (integer apart from number), each
// object's keys in order, the first driftArraySample elements of each
// array, down to driftMaxDepth. Two bodies of one shape walk the same nodes
// with the same types. False: longer than maxShape.
func appendShape(b []byte, tp *tape, i, depth int) ([]byte, bool) {
	k := &tp.toks[i]
	c := k.kind
	if c == kNumber && tapeJSONType(k) == "integer" {
		c = 'i'
	}
	b = append(b, c)
	if depth >= driftMaxDepth {
		return b, true
	}
	ok := true
	switch k.kind {
	case kObject:
		for j := i + 1; j < int(k.next) && ok; {
			raw := tp.raw(j)
			if len(b)+len(raw) > maxShape {
				return b, false
			}
			n := len(raw)
			b = append(b, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
			b = append(b, raw...)
			b, ok = appendShape(b, tp, j+1, depth+1)
			j = int(tp.toks[j+1].next)
		}
		b = append(b, '}')
	case kArray:
		for j, e := i+1, 0; j < int(k.next) && e < driftArraySample && ok; j, e = int(tp.toks[j].next), e+1 {
			b, ok = appendShape(b, tp, j, depth+1)
		}
		b = append(b, ']')
	}
	return b, ok && len(b) <= maxShape
}
