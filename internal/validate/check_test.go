package validate

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/portcullis-dev/portcullis/internal/problem"
)

const validPet = `{"id":1,"name":"Rex","kind":"dog","weight_kg":12.5,"born":"2020-01-02"}`

func jsonHeader() http.Header { return http.Header{"Content-Type": {"application/json"}} }

func mustLoad(t testing.TB, path string) *Spec {
	t.Helper()
	s, err := LoadSpec(path)
	if err != nil {
		t.Fatalf("LoadSpec(%s): %v", path, err)
	}
	return s
}

type checkCase struct {
	name     string
	method   string
	route    string
	status   int
	header   http.Header
	body     string
	want     *Violation // nil: valid
	maxDepth int
	maxBytes int64
}

// checkCases run against the OpenAPI 3.0 and the 3.1 fixture, which
// describe the same API; both versions must decide every case the same way.
func checkCases() []checkCase {
	pet := "GET /v1/pets/{id}"
	v := func(route string, status int, r Reason, probs ...FieldProblem) *Violation {
		return &Violation{Route: route, Status: status, Reason: r, Problems: probs}
	}
	p := func(path, rule string) FieldProblem { return FieldProblem{Path: path, Rule: rule} }
	return []checkCase{
		{name: "valid-pet", body: validPet},
		{name: "valid-pet-with-optional-fields", body: `{"id":1,"name":"Rex","kind":"dog","weight_kg":1,"born":"2020-01-02","email":"a@b.example","tag":"ab-123","tags":["a","b"],"owner":null,"metadata":{"a@b.example":"x"}}`},
		{name: "charset-in-content-type", header: http.Header{"Content-Type": {"application/json; charset=utf-8"}}, body: validPet},
		{name: "wrong-type", body: `{"id":"1","name":"Rex","kind":"dog","weight_kg":1,"born":"2020-01-02"}`,
			want: v(pet, 200, ReasonSchema, p("/id", "type: want integer, got string"))},
		{name: "missing-required", body: `{"id":1,"kind":"dog","weight_kg":1,"born":"2020-01-02"}`,
			want: v(pet, 200, ReasonSchema, p("/name", "required: missing"))},
		{name: "string-too-long", body: `{"id":1,"name":"` + strings.Repeat("x", 21) + `","kind":"dog","weight_kg":1,"born":"2020-01-02"}`,
			want: v(pet, 200, ReasonSchema, p("/name", "maxLength: want at most 20 characters"))},
		{name: "string-too-short", body: `{"id":1,"name":"","kind":"dog","weight_kg":1,"born":"2020-01-02"}`,
			want: v(pet, 200, ReasonSchema, p("/name", "minLength: want at least 1 characters"))},
		{name: "bad-date-format", body: `{"id":1,"name":"Rex","kind":"dog","weight_kg":1,"born":"2020-13-45"}`,
			want: v(pet, 200, ReasonSchema, p("/born", "format: want date"))},
		{name: "bad-email-format", body: `{"id":1,"name":"Rex","kind":"dog","weight_kg":1,"born":"2020-01-02","email":"not an email"}`,
			want: v(pet, 200, ReasonSchema, p("/email", "format: want email"))},
		{name: "pattern", body: `{"id":1,"name":"Rex","kind":"dog","weight_kg":1,"born":"2020-01-02","tag":"AB-1"}`,
			want: v(pet, 200, ReasonSchema, p("/tag", "pattern: want a match of ^[a-z]{2}-[0-9]{3}$"))},
		{name: "enum", body: `{"id":1,"name":"Rex","kind":"cow","weight_kg":1,"born":"2020-01-02"}`,
			want: v(pet, 200, ReasonSchema, p("/kind", "enum: want one of cat, dog, fish"))},
		{name: "minimum", body: `{"id":0,"name":"Rex","kind":"dog","weight_kg":1,"born":"2020-01-02"}`,
			want: v(pet, 200, ReasonSchema, p("/id", "minimum: want >= 1"))},
		{name: "exclusive-minimum", body: `{"id":1,"name":"Rex","kind":"dog","weight_kg":0,"born":"2020-01-02"}`,
			want: v(pet, 200, ReasonSchema, p("/weight_kg", "exclusiveMinimum: want > 0"))},
		{name: "maximum", body: `{"id":1,"name":"Rex","kind":"dog","weight_kg":201,"born":"2020-01-02"}`,
			want: v(pet, 200, ReasonSchema, p("/weight_kg", "maximum: want <= 200"))},
		{name: "integer-not-whole", body: `{"id":1.5,"name":"Rex","kind":"dog","weight_kg":1,"born":"2020-01-02"}`,
			want: v(pet, 200, ReasonSchema, p("/id", "type: want integer, got number"))},
		{name: "array-too-short", body: `{"id":1,"name":"Rex","kind":"dog","weight_kg":1,"born":"2020-01-02","tags":[]}`,
			want: v(pet, 200, ReasonSchema, p("/tags", "minItems: want at least 1 items"))},
		{name: "array-not-unique", body: `{"id":1,"name":"Rex","kind":"dog","weight_kg":1,"born":"2020-01-02","tags":["a","a"]}`,
			want: v(pet, 200, ReasonSchema, p("/tags", "uniqueItems: duplicate items"))},
		{name: "array-too-long", route: "/v1/pets", body: `{"data":[` + strings.Repeat(validPet+",", 3) + validPet + `],"has_more":false}`,
			want: v("GET /v1/pets", 200, ReasonSchema, p("/data", "maxItems: want at most 3 items"))},
		{name: "additional-property-forbidden", body: `{"id":1,"name":"Rex","kind":"dog","weight_kg":1,"born":"2020-01-02","owner":{"name":"A","ssn":"1"}}`,
			want: v(pet, 200, ReasonSchema, p("/owner/ssn", "additionalProperties: not allowed"))},
		{name: "additional-property-key-not-echoed", route: "/v1/pets", body: `{"data":[],"has_more":false,"jane@example.com":1}`,
			want: v("GET /v1/pets", 200, ReasonSchema, p("/*", "additionalProperties: not allowed"))},
		{name: "nested-array-path", route: "/v1/pets", body: `{"data":[` + validPet + `,{"id":2,"name":"Tom","kind":"cat","weight_kg":"3","born":"2020-01-02"}],"has_more":true}`,
			want: v("GET /v1/pets", 200, ReasonSchema, p("/data/1/weight_kg", "type: want number, got string"))},
		{name: "null-body-not-nullable", body: `null`,
			want: v(pet, 200, ReasonSchema, p("", "type: want object, got null"))},
		{name: "nullable-field-null", body: `{"id":1,"name":"Rex","kind":"dog","weight_kg":1,"born":"2020-01-02","tag":null}`},
		{name: "top-level-array", route: "/v1/pets/search", body: `[` + validPet + `]`},
		{name: "top-level-array-empty", route: "/v1/pets/search", body: `[]`,
			want: v("GET /v1/pets/search", 200, ReasonSchema, p("", "minItems: want at least 1 items"))},
		{name: "literal-route-prefers-literal-path", route: "/v1/pets/search", body: validPet,
			want: v("GET /v1/pets/search", 200, ReasonSchema, p("", "type: want array, got object"))},
		{name: "status-range-2xx", route: "/v1/pets", status: 206, body: `{"data":[],"has_more":false}`},
		{name: "default-response", route: "/v1/pets", status: 503, header: http.Header{"Content-Type": {"application/problem+json"}}, body: `{"message":"down"}`},
		{name: "default-response-wrong-shape", route: "/v1/pets", status: 503, header: http.Header{"Content-Type": {"application/problem+json"}}, body: `{"msg":"down"}`,
			want: v("GET /v1/pets", 503, ReasonSchema, p("/message", "required: missing"))},
		{name: "response-ref", status: 404, body: `{"message":"no such pet"}`},
		{name: "undocumented-status", status: 500, body: `{"message":"boom"}`,
			want: v(pet, 500, ReasonStatus, p("", "status: 500 is not documented"))},
		{name: "no-content-documented-empty-body", method: "DELETE", status: 204, body: ``},
		{name: "no-content-documented-but-body", method: "DELETE", status: 204, body: `{"deleted":true}`,
			want: v("DELETE /v1/pets/{id}", 204, ReasonBody, p("", "body: none documented for 204"))},
		{name: "empty-body-where-content-documented", body: ``,
			want: v(pet, 200, ReasonBody, p("", "body: empty, want application/json"))},
		{name: "wrong-content-type", header: http.Header{"Content-Type": {"text/html"}}, body: `<html>`,
			want: v(pet, 200, ReasonContentType, p("", "content-type: got text/html, want application/json"))},
		{name: "missing-content-type", header: http.Header{}, body: validPet,
			want: v(pet, 200, ReasonContentType, p("", "content-type: got none, want application/json"))},
		{name: "content-type-not-echoed", header: http.Header{"Content-Type": {"text/html; secret=\"x\" garbage"}}, body: validPet,
			want: v(pet, 200, ReasonContentType, p("", "content-type: got unparseable, want application/json"))},
		{name: "compressed-body", header: http.Header{"Content-Type": {"application/json"}, "Content-Encoding": {"gzip"}}, body: "\x1f\x8b",
			want: v(pet, 200, ReasonContentType, p("", "content-encoding: want identity (decode before validating)"))},
		{name: "non-json-media-type", route: "/v1/pets/{id}/photo", header: http.Header{"Content-Type": {"image/png"}}, body: "\x89PNG"},
		{name: "media-type-without-schema", route: "/v1/pets/{id}/notes", body: `{"anything":[1,"two"]}`},
		{name: "media-type-without-schema-still-json", route: "/v1/pets/{id}/notes", body: `{"anything":`,
			want: v("GET /v1/pets/{id}/notes", 200, ReasonMalformed, p("", "body: not valid JSON"))},
		{name: "malformed-json", body: `{"id":1,`,
			want: v(pet, 200, ReasonMalformed, p("", "body: not valid JSON"))},
		{name: "invalid-utf8", body: "{\"id\":1,\"name\":\"R\xffx\",\"kind\":\"dog\",\"weight_kg\":1,\"born\":\"2020-01-02\"}",
			want: v(pet, 200, ReasonMalformed, p("", "encoding: not valid UTF-8"))},
		{name: "duplicate-key", body: `{"id":1,"id":"1","name":"Rex","kind":"dog","weight_kg":1,"born":"2020-01-02"}`,
			want: v(pet, 200, ReasonMalformed, p("/id", "duplicate key"))},
		{name: "duplicate-key-escaped", body: `{"id":1,"\u0069d":2,"name":"Rex","kind":"dog","weight_kg":1,"born":"2020-01-02"}`,
			want: v(pet, 200, ReasonMalformed, p("/id", "duplicate key"))},
		{name: "too-deep", route: "/v1/pets/{id}/notes", maxDepth: 4, body: `{"a":{"b":{"c":{"d":{}}}}}`,
			want: v("GET /v1/pets/{id}/notes", 200, ReasonTooDeep, p("/a/b/c/d", "depth: nested deeper than 4 levels"))},
		{name: "depth-at-limit", route: "/v1/pets/{id}/notes", maxDepth: 4, body: `{"a":{"b":{"c":{}}}}`},
		{name: "too-large", maxBytes: 10, body: validPet,
			want: v(pet, 200, ReasonTooLarge, p("", "size: over 10 bytes"))},
		{name: "no-operation", route: "/v1/owners", body: `{}`,
			want: v("GET /v1/owners", 200, ReasonNoOperation, p("", "operation: GET /v1/owners is not in the spec"))},
		{name: "head-checks-status-only", method: "HEAD", body: ``},
		{name: "not-modified-empty", status: 304, body: ``},
		{name: "not-modified-with-body", status: 304, body: validPet,
			want: v(pet, 304, ReasonBody, p("", "body: must be empty for 304"))},
		{name: "server-base-path-stripped", route: "/api/v1/pets/{id}", body: validPet},
		{name: "param-inside-segment", route: "/v1/files/{file}", body: `{}`},
	}
}

func TestCheck(t *testing.T) {
	for _, file := range []string{"testdata/pets30.yaml", "testdata/pets31.yaml"} {
		spec := mustLoad(t, file)
		for _, tc := range checkCases() {
			t.Run(strings.TrimPrefix(file, "testdata/")+"/"+tc.name, func(t *testing.T) {
				method, route, status, h := tc.method, tc.route, tc.status, tc.header
				if method == "" {
					method = "GET"
				}
				if route == "" {
					route = "/v1/pets/{id}"
				}
				if status == 0 {
					status = 200
				}
				if h == nil {
					h = jsonHeader()
				}
				v := New(spec, ModeEnforce, tc.maxDepth, tc.maxBytes)
				got := v.Check(method, route, status, h, []byte(tc.body))
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("Check() mismatch (-want +got):\n%s", diff)
				}
			})
		}
	}
}

func TestCheckCollectsEveryProblem(t *testing.T) {
	for _, file := range []string{"testdata/pets30.yaml", "testdata/pets31.yaml"} {
		t.Run(strings.TrimPrefix(file, "testdata/"), func(t *testing.T) {
			v := New(mustLoad(t, file), ModeEnforce, 0, 0)
			body := `{"id":"1","name":"","kind":"cow","weight_kg":0,"born":"2020-13-02","email":"nope","tag":"x","owner":{"name":"a","ssn":"123"}}`
			got := v.Check("GET", "/v1/pets/{id}", 200, jsonHeader(), []byte(body))
			want := []FieldProblem{
				{"/born", "format: want date"},
				{"/email", "format: want email"},
				{"/id", "type: want integer, got string"},
				{"/kind", "enum: want one of cat, dog, fish"},
				{"/name", "minLength: want at least 1 characters"},
				{"/owner/ssn", "additionalProperties: not allowed"},
				{"/tag", "pattern: want a match of ^[a-z]{2}-[0-9]{3}$"},
				{"/weight_kg", "exclusiveMinimum: want > 0"},
			}
			if got == nil {
				t.Fatal("Check() = nil, want a violation")
			}
			if diff := cmp.Diff(want, got.Problems); diff != "" {
				t.Errorf("Problems mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestModes(t *testing.T) {
	spec := mustLoad(t, "testdata/pets30.yaml")
	bad := []byte(`{"id":"x"}`)
	tests := []struct {
		name      string
		mode      Mode
		wantViol  bool
		enforcing bool
	}{
		{"enforce-returns-violation", ModeEnforce, true, true},
		{"report-returns-violation", ModeReport, true, false},
		{"off-checks-nothing", ModeOff, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := New(spec, tc.mode, 0, 0)
			got := v.Check("GET", "/v1/pets/{id}", 200, jsonHeader(), bad)
			if (got != nil) != tc.wantViol || v.Enforcing() != tc.enforcing {
				t.Errorf("Check() = %v, Enforcing() = %v; want violation %v, enforcing %v", got, v.Enforcing(), tc.wantViol, tc.enforcing)
			}
		})
	}
}

func TestNilSpecFailsClosed(t *testing.T) {
	got := New(nil, ModeEnforce, 0, 0).Check("GET", "/x", 200, jsonHeader(), []byte(`{}`))
	if got == nil || got.Reason != ReasonNoOperation {
		t.Fatalf("Check() with no spec = %v, want a no_operation violation", got)
	}
}

func TestViolationProblem(t *testing.T) {
	tests := []struct {
		name   string
		reason Reason
		code   problem.Code
		status int
	}{
		{"schema-is-invalid-upstream-response", ReasonSchema, problem.InvalidUpstreamResponse, 502},
		{"too-large-is-response-too-large", ReasonTooLarge, problem.ResponseTooLarge, 502},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := &Violation{Route: "GET /x", Status: 200, Reason: tc.reason, Problems: []FieldProblem{{"/a", "required: missing"}}}
			pe := v.Problem()
			if pe.Code != tc.code || pe.Status() != tc.status {
				t.Errorf("Problem() = %s %d, want %s %d", pe.Code, pe.Status(), tc.code, tc.status)
			}
			if want := "GET /x 200: /a required: missing"; !strings.Contains(pe.Detail, want) {
				t.Errorf("Problem().Detail = %q, want it to contain %q", pe.Detail, want)
			}
		})
	}
}

func TestDetailListsFiveProblems(t *testing.T) {
	v := &Violation{Route: "GET /x", Status: 200}
	for i := range 7 {
		v.add("/f"+string(rune('a'+i)), "required: missing")
	}
	want := "GET /x 200: /fa required: missing; /fb required: missing; /fc required: missing; /fd required: missing; /fe required: missing (and 2 more)"
	if got := v.Detail(); got != want {
		t.Errorf("Detail() = %q, want %q", got, want)
	}
}
