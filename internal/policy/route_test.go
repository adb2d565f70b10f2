package policy_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/portcullis-dev/portcullis/internal/policy"
)

func TestCompileErrors(t *testing.T) {
	ok := []string{"billing"}
	tests := []struct {
		name   string
		routes []policy.Route
		want   []string // one line per problem
	}{
		{
			name:   "path-not-starting-with-slash",
			routes: []policy.Route{{Method: "GET", Path: "v1/charges", Callers: ok}},
			want:   []string{`routes[0] "GET" "v1/charges": bad route: path must start with "/"`},
		},
		{
			name:   "empty-path",
			routes: []policy.Route{{Method: "GET", Path: "", Callers: ok}},
			want:   []string{`routes[0] "GET" "": bad route: path must start with "/"`},
		},
		{
			name:   "empty-param-name",
			routes: []policy.Route{{Method: "GET", Path: "/v1/charges/{}", Callers: ok}},
			want:   []string{`routes[0] "GET" "/v1/charges/{}": bad route: empty parameter name`},
		},
		{
			name:   "duplicate-param-name",
			routes: []policy.Route{{Method: "GET", Path: "/v1/{id}/refunds/{id}", Callers: ok}},
			want:   []string{`routes[0] "GET" "/v1/{id}/refunds/{id}": bad route: parameter name "id" repeated`},
		},
		{
			name:   "param-not-whole-segment-prefix",
			routes: []policy.Route{{Method: "GET", Path: "/v1/ch_{id}", Callers: ok}},
			want:   []string{`routes[0] "GET" "/v1/ch_{id}": bad route: parameter "ch_{id}" must be a whole segment`},
		},
		{
			name:   "param-not-whole-segment-suffix",
			routes: []policy.Route{{Method: "GET", Path: "/v1/{id}.json", Callers: ok}},
			want:   []string{`routes[0] "GET" "/v1/{id}.json": bad route: parameter "{id}.json" must be a whole segment`},
		},
		{
			name:   "param-unclosed",
			routes: []policy.Route{{Method: "GET", Path: "/v1/{id", Callers: ok}},
			want:   []string{`routes[0] "GET" "/v1/{id": bad route: parameter "{id" must be a whole segment`},
		},
		{
			name:   "param-nested-braces",
			routes: []policy.Route{{Method: "GET", Path: "/v1/{{id}}", Callers: ok}},
			want:   []string{`routes[0] "GET" "/v1/{{id}}": bad route: parameter "{{id}}" must be a whole segment`},
		},
		{
			name:   "param-bad-name",
			routes: []policy.Route{{Method: "GET", Path: "/v1/{1id}", Callers: ok}},
			want:   []string{`routes[0] "GET" "/v1/{1id}": bad route: parameter name "1id" must match [A-Za-z_][A-Za-z0-9_]*`},
		},
		{
			name:   "template-dot-dot",
			routes: []policy.Route{{Method: "GET", Path: "/v1/../admin", Callers: ok}},
			want:   []string{`routes[0] "GET" "/v1/../admin": bad route: literal segment: dot segment`},
		},
		{
			name:   "template-double-slash",
			routes: []policy.Route{{Method: "GET", Path: "/v1//admin", Callers: ok}},
			want:   []string{`routes[0] "GET" "/v1//admin": bad route: empty segment`},
		},
		{
			name:   "template-encoded-slash",
			routes: []policy.Route{{Method: "GET", Path: "/v1/a%2Fb", Callers: ok}},
			want:   []string{`routes[0] "GET" "/v1/a%2Fb": bad route: literal segment: encoded slash`},
		},
		{
			name:   "lower-case-method",
			routes: []policy.Route{{Method: "get", Path: "/v1/charges", Callers: ok}},
			want:   []string{`routes[0] "get" "/v1/charges": bad route: unknown method (methods are case-sensitive: write "GET")`},
		},
		{
			name:   "unknown-method",
			routes: []policy.Route{{Method: "FETCH", Path: "/v1/charges", Callers: ok}},
			want:   []string{`routes[0] "FETCH" "/v1/charges": bad route: unknown method`},
		},
		{
			name:   "trace-not-routable",
			routes: []policy.Route{{Method: "TRACE", Path: "/v1/charges", Callers: ok}},
			want:   []string{`routes[0] "TRACE" "/v1/charges": bad route: unknown method`},
		},
		{
			name: "duplicate-method-and-path",
			routes: []policy.Route{
				{Method: "GET", Path: "/v1/charges", Callers: ok},
				{Method: "GET", Path: "/v1/charges", Callers: []string{"support"}},
			},
			want: []string{`routes[1] "GET" "/v1/charges": bad route: duplicate of routes[0]`},
		},
		{
			name: "duplicate-shape-different-param-names",
			routes: []policy.Route{
				{Method: "GET", Path: "/v1/charges/{id}", Callers: ok},
				{Method: "GET", Path: "/v1/charges/{charge}", Callers: ok},
			},
			want: []string{`routes[1] "GET" "/v1/charges/{charge}": bad route: duplicate of routes[0]`},
		},
		{
			name: "duplicate-after-decoding",
			routes: []policy.Route{
				{Method: "GET", Path: "/v1/a%20b", Callers: ok},
				{Method: "GET", Path: "/v1/a%20b", Callers: ok},
			},
			want: []string{`routes[1] "GET" "/v1/a%20b": bad route: duplicate of routes[0]`},
		},
		{
			name:   "no-callers",
			routes: []policy.Route{{Method: "GET", Path: "/v1/charges"}},
			want:   []string{`routes[0] "GET" "/v1/charges": bad route: no callers (a route nobody may call is dead config)`},
		},
		{
			name:   "wildcard-caller",
			routes: []policy.Route{{Method: "GET", Path: "/v1/charges", Callers: []string{"*"}}},
			want:   []string{`routes[0] "GET" "/v1/charges": bad route: caller "*" is not a wildcard: list each caller`},
		},
		{
			name:   "empty-caller",
			routes: []policy.Route{{Method: "GET", Path: "/v1/charges", Callers: []string{"billing", ""}}},
			want:   []string{`routes[0] "GET" "/v1/charges": bad route: empty caller name`},
		},
		{
			name: "every-problem-reported",
			routes: []policy.Route{
				{Method: "get", Path: "v1", Callers: nil},
				{Method: "GET", Path: "/ok", Callers: ok},
				{Method: "POST", Path: "/v1/{}", Callers: ok},
			},
			want: []string{
				`routes[0] "get" "v1": bad route: unknown method (methods are case-sensitive: write "GET")`,
				`routes[0] "get" "v1": bad route: path must start with "/"`,
				`routes[0] "get" "v1": bad route: no callers (a route nobody may call is dead config)`,
				`routes[2] "POST" "/v1/{}": bad route: empty parameter name`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			table, err := policy.Compile(tt.routes)
			if err == nil {
				t.Fatal("Compile accepted bad routes")
			}
			if table != nil {
				t.Error("Compile returned a table with an error")
			}
			if !errors.Is(err, policy.ErrBadRoute) {
				t.Errorf("error %v does not wrap ErrBadRoute", err)
			}
			if diff := cmp.Diff(tt.want, strings.Split(err.Error(), "\n")); diff != "" {
				t.Errorf("Compile errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCompileAccepts(t *testing.T) {
	routes := []policy.Route{
		{Method: "GET", Path: "/", Callers: []string{"a"}},
		{Method: "GET", Path: "/v1/charges", Callers: []string{"a", "a"}},
		{Method: "POST", Path: "/v1/charges", Callers: []string{"a"}},
		{Method: "GET", Path: "/v1/charges/", Callers: []string{"a"}},
		{Method: "GET", Path: "/v1/charges/{id}", Callers: []string{"a"}},
		{Method: "GET", Path: "/v1/charges/search", Callers: []string{"a"}},
		{Method: "GET", Path: "/v1/{_kind}/{id2}/x", Callers: []string{"a"}},
		{Method: "OPTIONS", Path: "/v1/files/a%20b", Callers: []string{"a"}},
	}
	if _, err := policy.Compile(routes); err != nil {
		t.Fatalf("Compile: %v", err)
	}
	if _, err := policy.Compile(nil); err != nil {
		t.Fatalf("Compile(nil): %v", err)
	}
}

// FuzzCompile checks the template parser: it never panics, and a template it
// accepts is matched by the request path written from it, which therefore
// passes CheckPath (template literals obey the same hygiene as requests).
func FuzzCompile(f *testing.F) {
	for _, s := range []string{"/", "/v1/charges", "/v1/charges/{id}", "/v1/{a}/{b}/", "/v1/ch_{id}", "/{}", "/a%20b", "/../x", "/{x}/{x}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tmpl string) {
		table, err := policy.Compile([]policy.Route{{Method: "GET", Path: tmpl, Callers: []string{"c"}}})
		if err != nil {
			if !errors.Is(err, policy.ErrBadRoute) {
				t.Fatalf("Compile(%q) error %v does not wrap ErrBadRoute", tmpl, err)
			}
			return
		}
		parts := strings.Split(tmpl, "/")
		for i, p := range parts {
			if strings.HasPrefix(p, "{") {
				parts[i] = "x"
			}
		}
		req := strings.Join(parts, "/")
		segs, err := policy.CheckPath(req)
		if err != nil {
			t.Fatalf("template %q accepted but its request %q rejected: %v", tmpl, req, err)
		}
		d := table.Decide(policy.Args{Method: "GET", Segments: segs, Caller: "c"})
		if !d.Allowed || d.Route != tmpl {
			t.Fatalf("template %q: request %q got %+v", tmpl, req, d)
		}
	})
}
