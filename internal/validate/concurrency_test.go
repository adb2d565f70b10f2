package validate

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// TestCheckConcurrent runs every fixture case from several goroutines at
// once on one Validator and expects the same answers as a sequential run
// (run with -race).
func TestCheckConcurrent(t *testing.T) {
	for _, file := range []string{"testdata/pets30.yaml", "testdata/pets31.yaml"} {
		t.Run(strings.TrimPrefix(file, "testdata/"), func(t *testing.T) {
			spec := mustLoad(t, file)
			var log eventLog
			v := New(spec, ModeEnforce, 8, 1<<20).With(Observers{Drift: NewDrift(spec, 2, log.emit)})
			cases := checkCases()
			want := make([]string, len(cases))
			for i, tc := range cases {
				want[i] = describe(v, tc)
			}
			var wg sync.WaitGroup
			errs := make(chan string, 8*len(cases))
			for g := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range cases {
						tc := cases[(i+g)%len(cases)]
						if got := describe(v, tc); got != want[(i+g)%len(cases)] {
							errs <- fmt.Sprintf("%s: got %q, want %q", tc.name, got, want[(i+g)%len(cases)])
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for e := range errs {
				t.Error(e)
			}
		})
	}
}

func describe(v *Validator, tc checkCase) string {
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
	if tc.maxDepth != 0 || tc.maxBytes != 0 {
		return "skipped: needs its own limits"
	}
	if viol := v.Check(method, route, status, h, []byte(tc.body)); viol != nil {
		return viol.Detail()
	}
	return "valid"
}

// TestOpenAPI31SchemasCompiledAtLoad: every 3.1 media type with a schema has
// its compiled form after LoadSpec, so Check never compiles.
func TestOpenAPI31SchemasCompiledAtLoad(t *testing.T) {
	spec := mustLoad(t, "testdata/pets31.yaml")
	n := 0
	for _, m := range spec.mtIndex {
		if m.schema == nil {
			continue
		}
		n++
		if m.js == nil {
			t.Error("a 3.1 response schema was not compiled at load")
		}
	}
	if n < 6 {
		t.Errorf("found %d schemas in the fixture, want at least 6", n)
	}
}

// FuzzRouteTemplate: matching any template never panics, and normalising is
// idempotent.
func FuzzRouteTemplate(f *testing.F) {
	spec := mustLoad(f, "testdata/pets30.yaml")
	for _, r := range []string{"/v1/pets/{id}", "/api/v1/pets", "/v1/files/{x}", "/{a}/{b}}", "/a/{b/c}", "{", "/v1/pets/{id}/photo"} {
		f.Add("GET", r)
	}
	f.Fuzz(func(t *testing.T, method, template string) {
		n := normalizeTemplate(template)
		if normalizeTemplate(n) != n {
			t.Fatalf("normalizeTemplate not idempotent: %q -> %q -> %q", template, n, normalizeTemplate(n))
		}
		_ = spec.Missing([]RouteKey{{method, template}})
	})
}
