package validate

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func writeSpec(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const minimal30 = `openapi: 3.0.3
info: {title: t, version: "1"}
paths:
  /x:
    get:
      responses:
        "200":
          description: ok
          content:
            application/json:
              schema: %s
`

func TestLoadSpecErrors(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string // extra files next to spec.yaml
		spec    string
		wantErr []string // substrings
	}{
		{name: "swagger-2", spec: "swagger: \"2.0\"\ninfo: {title: t, version: \"1\"}\npaths: {}\n",
			wantErr: []string{"spec.yaml", "only OpenAPI 3.0 and 3.1"}},
		{name: "openapi-3-2", spec: "openapi: 3.2.0\ninfo: {title: t, version: \"1\"}\npaths: {}\n",
			wantErr: []string{"spec.yaml", `"3.2.0": only 3.0.x and 3.1.x`}},
		{name: "not-yaml", spec: "openapi: [3.0\n", wantErr: []string{"spec.yaml"}},
		{name: "dangling-ref", spec: strings.Replace(minimal30, "%s", `{$ref: "#/components/schemas/Nope"}`, 1),
			wantErr: []string{"spec.yaml", "Nope"}},
		{name: "bad-schema-type", spec: strings.Replace(minimal30, "%s", `{type: strin}`, 1),
			wantErr: []string{"spec.yaml", "strin"}},
		{name: "remote-ref-not-fetched", spec: strings.Replace(minimal30, "%s", `{$ref: "http://127.0.0.1:1/s.yaml#/S"}`, 1),
			wantErr: []string{"spec.yaml", "remote references are not loaded"}},
		{name: "ref-outside-directory", spec: strings.Replace(minimal30, "%s", `{$ref: "../outside.yaml#/S"}`, 1),
			wantErr: []string{"spec.yaml", "outside the spec's directory"}},
		{name: "same-method-on-paths-differing-only-in-param-names", spec: `openapi: 3.0.3
info: {title: t, version: "1"}
paths:
  /x/{a}:
    parameters: [{name: a, in: path, required: true, schema: {type: string}}]
    get: {responses: {"200": {description: ok}}}
  /x/{b}:
    parameters: [{name: b, in: path, required: true, schema: {type: string}}]
    get: {responses: {"200": {description: ok}}}
`, wantErr: []string{"spec.yaml", `"/x/{a}" and "/x/{b}" both define GET`}},
		{name: "openapi-31-schema-does-not-compile", spec: `openapi: 3.1.0
info: {title: t, version: "1"}
paths:
  /x:
    get:
      responses:
        "200":
          description: ok
          content:
            application/json:
              schema: {$schema: "https://json-schema.example/unknown-dialect", type: object}
`, wantErr: []string{"spec.yaml", "GET /x response 200 application/json: schema does not compile"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := writeSpec(t, dir, "spec.yaml", tc.spec)
			_, err := LoadSpec(p)
			if err == nil {
				t.Fatal("LoadSpec() = nil error, want one")
			}
			if !errors.Is(err, ErrSpec) {
				t.Errorf("LoadSpec() error %v does not wrap ErrSpec", err)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("LoadSpec() error = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestLoadSpecMissingFile(t *testing.T) {
	_, err := LoadSpec(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "nope.yaml") {
		t.Errorf("LoadSpec(missing) = %v, want a not-exist error naming the file", err)
	}
}

func TestLoadSpecLocalRefs(t *testing.T) {
	for _, version := range []string{"3.0.3", "3.1.0"} {
		t.Run(version, func(t *testing.T) {
			dir := t.TempDir()
			writeSpec(t, dir, "schemas/pet.yaml", "Pet:\n  type: object\n  required: [id]\n  properties: {id: {type: integer}}\n")
			p := writeSpec(t, dir, "spec.yaml", strings.Replace(strings.Replace(minimal30, "3.0.3", version, 1), "%s", `{$ref: "schemas/pet.yaml#/Pet"}`, 1))
			v := New(mustLoad(t, p), ModeEnforce, 0, 0)
			if got := v.Check("GET", "/x", 200, jsonHeader(), []byte(`{"id":1}`)); got != nil {
				t.Errorf("valid body: Check() = %v", got)
			}
			got := v.Check("GET", "/x", 200, jsonHeader(), []byte(`{"id":"1"}`))
			want := []FieldProblem{{"/id", "type: want integer, got string"}}
			if got == nil {
				t.Fatal("invalid body: Check() = nil")
			}
			if diff := cmp.Diff(want, got.Problems); diff != "" {
				t.Errorf("Problems (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMissing(t *testing.T) {
	spec := mustLoad(t, "testdata/pets30.yaml")
	routes := []RouteKey{
		{"GET", "/v1/pets/{id}"},           // param name differs from the spec's {petId}
		{"GET", "/v1/pets"},                // exact
		{"GET", "/v1/pets/search"},         // literal path
		{"HEAD", "/v1/pets/{id}"},          // HEAD falls back to GET
		{"DELETE", "/v1/pets/{pet}"},       // another method of the same path
		{"GET", "/api/v1/pets"},            // server base path /api
		{"GET", "/v1/files/{f}"},           // spec has /v1/files/{name}.json
		{"POST", "/v1/pets"},               // no POST in the spec
		{"GET", "/v1/owners/{id}"},         // no such path
		{"GET", "/v1/pets/{id}/photo/raw"}, // longer than any spec path
	}
	want := []RouteKey{{"POST", "/v1/pets"}, {"GET", "/v1/owners/{id}"}, {"GET", "/v1/pets/{id}/photo/raw"}}
	if diff := cmp.Diff(want, spec.Missing(routes)); diff != "" {
		t.Errorf("Missing() (-want +got):\n%s", diff)
	}
}

func TestMatchAmbiguousIsMissing(t *testing.T) {
	dir := t.TempDir()
	p := writeSpec(t, dir, "spec.yaml", `openapi: 3.0.3
info: {title: t, version: "1"}
paths:
  /f/{a}.json:
    parameters: [{name: a, in: path, required: true, schema: {type: string}}]
    get: {responses: {"200": {description: ok}}}
  /f/{a}.xml:
    parameters: [{name: a, in: path, required: true, schema: {type: string}}]
    get: {responses: {"200": {description: ok}}}
`)
	spec := mustLoad(t, p)
	got := spec.Missing([]RouteKey{{"GET", "/f/{name}"}})
	if diff := cmp.Diff([]RouteKey{{"GET", "/f/{name}"}}, got); diff != "" {
		t.Errorf("a route matching two spec paths equally well must count as missing (-want +got):\n%s", diff)
	}
}

func TestNormalizeTemplate(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"no-params", "/v1/charges", "/v1/charges"},
		{"whole-segment", "/v1/charges/{id}", "/v1/charges/{}"},
		{"inside-segment", "/Messages/{Sid}.json", "/Messages/{}.json"},
		{"unclosed-brace-kept", "/a/{b", "/a/{b"},
		{"brace-spanning-slash-kept", "/a/{b/c}", "/a/{b/c}"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := normalizeTemplate(tc.in); got != tc.want {
				t.Errorf("normalizeTemplate(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
