package validate

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/portcullis-dev/portcullis/internal/anomaly"
)

type eventLog struct {
	mu     sync.Mutex
	events []anomaly.Event
}

func (l *eventLog) emit(e anomaly.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

func (l *eventLog) messages() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, e := range l.events {
		out = append(out, e.Message)
	}
	return out
}

func TestDriftAgainstSpec(t *testing.T) {
	const route = "GET /v1/pets/{id}"
	pet := func(extra string) string {
		return `{"id":1,"name":"Rex","kind":"dog","weight_kg":12,"born":"2020-01-02","email":"a@b.example"` + extra + `}`
	}
	tests := []struct {
		name   string
		route  string
		bodies []string
		want   []string
	}{
		{name: "steady-traffic-fires-none", bodies: repeat(pet(""), 50)},
		{name: "new-field-once", bodies: []string{pet(""), pet(`,"color":"red"`), pet(`,"color":"blue"`)},
			want: []string{"new field /color (string) in 200 responses of " + route}},
		{name: "type-change", bodies: []string{pet(""), strings.Replace(pet(""), `"weight_kg":12`, `"weight_kg":"12"`, 1)},
			want: []string{"type of /weight_kg changed from number to string in 200 responses of " + route}},
		{name: "integer-for-number-is-no-change", bodies: []string{pet(""), strings.Replace(pet(""), `"weight_kg":12`, `"weight_kg":12.5`, 1)}},
		{name: "null-is-no-change", bodies: []string{pet(`,"tag":"ab-123"`), pet(`,"tag":null`)}},
		{name: "declared-map-keys-are-not-fields", bodies: []string{pet(`,"metadata":{"a":"1"}`), pet(`,"metadata":{"b":"2","c":"3"}`)}},
		{name: "undeclared-key-not-echoed", bodies: []string{pet(`,"jane@example.com":1`)},
			want: []string{"new field /* (integer) in 200 responses of " + route}},
		{name: "field-missing-after-baseline", bodies: append(repeat(pet(""), 3), strings.Replace(pet(""), `,"email":"a@b.example"`, "", 1)),
			want: []string{"field /email missing from 200 responses of " + route + " (present in every baseline response)"}},
		{name: "nested-array-item-field", route: "/v1/pets", bodies: []string{`{"data":[` + pet(`,"color":"red"`) + `],"has_more":false}`},
			want: []string{"new field /data/[]/color (string) in 200 responses of GET /v1/pets"}},
		{name: "missing-child-of-absent-parent-is-not-reported", bodies: append(repeat(pet(`,"owner":{"name":"A"}`), 3), pet(`,"owner":null`))},
	}
	spec := mustLoad(t, "testdata/pets30.yaml")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var log eventLog
			d := NewDrift(spec, 3, log.emit, WithIntegration("pets"))
			r := tc.route
			if r == "" {
				r = "/v1/pets/{id}"
			}
			for _, b := range tc.bodies {
				d.Observe("GET", r, 200, []byte(b))
			}
			if diff := cmp.Diff(tc.want, log.messages()); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDriftBaselineWithoutSpec(t *testing.T) {
	base := `{"id":"ch_1","amount":100,"paid":true,"card":{"last4":"4242"}}`
	tests := []struct {
		name   string
		bodies []string
		want   []string
	}{
		{name: "steady-traffic-fires-none", bodies: repeat(base, 40)},
		{name: "learning-phase-is-silent", bodies: []string{base, `{"id":"ch_1","amount":"100","extra":1}`}},
		{name: "new-field-after-baseline", bodies: append(repeat(base, 5), `{"id":"ch_1","amount":100,"paid":true,"card":{"last4":"4242","brand":"visa"}}`),
			want: []string{"new field /card/brand (string) in 200 responses of GET /v1/charges/{id}"}},
		{name: "type-change-after-baseline", bodies: append(repeat(base, 5), `{"id":"ch_1","amount":"100","paid":true,"card":{"last4":"4242"}}`),
			want: []string{"type of /amount changed from number to string in 200 responses of GET /v1/charges/{id}"}},
		{name: "field-missing-after-baseline", bodies: append(repeat(base, 5), `{"id":"ch_1","amount":100,"card":{"last4":"4242"}}`),
			want: []string{"field /paid missing from 200 responses of GET /v1/charges/{id} (present in every baseline response)"}},
		{name: "each-change-once", bodies: append(repeat(base, 5), repeat(`{"id":"ch_1","amount":100,"paid":true,"card":{"last4":"4242"},"x":1}`, 10)...),
			want: []string{"new field /x (integer) in 200 responses of GET /v1/charges/{id}"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var log eventLog
			d := NewDrift(nil, 5, log.emit)
			for _, b := range tc.bodies {
				d.Observe("GET", "/v1/charges/{id}", 200, []byte(b))
			}
			if diff := cmp.Diff(tc.want, log.messages()); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDriftMapKeysAreBounded(t *testing.T) {
	tests := []struct {
		name string
		spec *Spec
		body string // %d: a different key each time
	}{
		{"without-spec", nil, `{"users":{"u%d":{"name":"x"}}}`},
		{"undeclared-keys-in-a-spec-object", mustLoad(t, "testdata/pets30.yaml"), `{"id":1,"u%d":{"name":"x"}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var log eventLog
			d := NewDrift(tc.spec, 1, log.emit)
			for i := range 500 {
				d.Observe("GET", "/v1/pets/{id}", 200, []byte(fmt.Sprintf(tc.body, i)))
			}
			if n := len(log.messages()); n > driftMaxEvents+1 {
				t.Errorf("%d events for an object keyed by ids, want at most %d", n, driftMaxEvents+1)
			}
			for _, m := range log.messages() {
				if strings.Contains(m, "u499") {
					t.Errorf("keys past the fold must not be reported: %q", m)
				}
			}
			for _, r := range d.routes {
				if n := countNodes(r.root); n > 3*driftMaxKeys {
					t.Errorf("drift tracks %d paths, want a bounded number", n)
				}
			}
		})
	}
}

func countNodes(n *node) int {
	c := 1
	for _, ch := range n.children {
		c += countNodes(ch)
	}
	return c
}

func TestDriftEventFields(t *testing.T) {
	var log eventLog
	d := NewDrift(mustLoad(t, "testdata/pets30.yaml"), 1, log.emit, WithIntegration("pets"))
	d.Observe("GET", "/v1/pets/{id}", 200, []byte(`{"id":1,"secret_note":"do not print me"}`))
	want := []anomaly.Event{{
		Kind:        anomaly.KindSchemaDrift,
		Integration: "pets",
		Route:       "GET /v1/pets/{id}",
		Message:     "new field /secret_note (string) in 200 responses of GET /v1/pets/{id}",
		Key:         "schema_drift|pets|GET /v1/pets/{id}|200|new_field|/secret_note",
	}}
	if diff := cmp.Diff(want, log.events); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestValidatorFeedsDrift(t *testing.T) {
	var log eventLog
	spec := mustLoad(t, "testdata/pets30.yaml")
	d := NewDrift(spec, 1, log.emit)
	v := New(spec, ModeReport, 0, 0).With(Observers{Drift: d})
	v.Check("GET", "/v1/pets/{id}", 200, jsonHeader(), []byte(`{"id":1,"name":"Rex","kind":"dog","weight_kg":1,"born":"2020-01-02","color":"red"}`))
	want := []string{"new field /color (string) in 200 responses of GET /v1/pets/{id}"}
	if diff := cmp.Diff(want, log.messages()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}
