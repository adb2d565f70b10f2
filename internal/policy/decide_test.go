package policy_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/portcullis-dev/portcullis/internal/policy"
)

func mustCompile(t testing.TB, routes []policy.Route) *policy.Table {
	t.Helper()
	table, err := policy.Compile(routes)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return table
}

func decideRoutes() []policy.Route {
	return []policy.Route{
		{Method: "GET", Path: "/", Callers: []string{"support"}},
		{Method: "POST", Path: "/v1/charges", Callers: []string{"billing"}},
		{Method: "GET", Path: "/v1/charges/{id}", Callers: []string{"billing", "support"}},
		{Method: "GET", Path: "/v1/charges/search", Callers: []string{"billing"}},
		{Method: "POST", Path: "/v1/charges/{id}/refunds", Callers: []string{"billing"}},
		{Method: "POST", Path: "/v1/payouts", Callers: []string{"treasury"}},
		{Method: "GET", Path: "/v2/items/", Callers: []string{"billing"}},
		{Method: "GET", Path: "/v3/{a}/x", Callers: []string{"billing"}},
		{Method: "GET", Path: "/v3/b/z", Callers: []string{"billing"}},
		{Method: "GET", Path: "/v4/admin/list", Callers: []string{"ops"}},
		{Method: "GET", Path: "/v4/{kind}/list", Callers: []string{"billing"}},
	}
}

func TestDecide(t *testing.T) {
	table := mustCompile(t, decideRoutes())
	tests := []struct {
		name       string
		method     string
		path       string
		caller     string
		want       policy.Decision
		wantParams map[string]string
	}{
		{name: "allowed-static", method: "POST", path: "/v1/charges", caller: "billing",
			want: policy.Decision{Allowed: true, Route: "/v1/charges"}},
		{name: "allowed-param", method: "GET", path: "/v1/charges/ch_1", caller: "support",
			want:       policy.Decision{Allowed: true, Route: "/v1/charges/{id}"},
			wantParams: map[string]string{"id": "ch_1"}},
		{name: "param-value-decoded", method: "POST", path: "/v1/charges/a%20b/refunds", caller: "billing",
			want:       policy.Decision{Allowed: true, Route: "/v1/charges/{id}/refunds"},
			wantParams: map[string]string{"id": "a b"}},
		{name: "root-route", method: "GET", path: "/", caller: "support",
			want: policy.Decision{Allowed: true, Route: "/"}},
		{name: "caller-not-listed", method: "POST", path: "/v1/payouts", caller: "billing",
			want: policy.Decision{Route: "/v1/payouts", Reason: "caller billing may not POST /v1/payouts"}},
		{name: "reason-uses-template-not-path", method: "POST", path: "/v1/charges/ch_1/refunds", caller: "support",
			want: policy.Decision{Route: "/v1/charges/{id}/refunds", Reason: "caller support may not POST /v1/charges/{id}/refunds"}},
		{name: "anonymous-caller", method: "POST", path: "/v1/charges", caller: "",
			want: policy.Decision{Route: "/v1/charges", Reason: "anonymous caller may not POST /v1/charges"}},
		{name: "no-route", method: "DELETE", path: "/v1/charges/ch_1", caller: "billing",
			want: policy.Decision{Reason: "no route for DELETE /v1/charges/ch_1"}},
		{name: "unknown-path", method: "GET", path: "/v1/customers", caller: "billing",
			want: policy.Decision{Reason: "no route for GET /v1/customers"}},
		{name: "head-not-implied-by-get", method: "HEAD", path: "/v1/charges/ch_1", caller: "billing",
			want: policy.Decision{Reason: "no route for HEAD /v1/charges/ch_1"}},
		{name: "method-lower-case", method: "post", path: "/v1/charges", caller: "billing",
			want: policy.Decision{Reason: "no route for post /v1/charges"}},
		{name: "method-mixed-case", method: "Post", path: "/v1/charges", caller: "billing",
			want: policy.Decision{Reason: "no route for Post /v1/charges"}},
		{name: "path-case-sensitive", method: "POST", path: "/V1/Charges", caller: "billing",
			want: policy.Decision{Reason: "no route for POST /V1/Charges"}},
		{name: "trailing-slash-not-same-route", method: "POST", path: "/v1/charges/", caller: "billing",
			want: policy.Decision{Reason: "no route for POST /v1/charges/"}},
		{name: "param-does-not-match-empty-trailing", method: "GET", path: "/v1/charges/", caller: "billing",
			want: policy.Decision{Reason: "no route for GET /v1/charges/"}},
		{name: "trailing-slash-template-matches", method: "GET", path: "/v2/items/", caller: "billing",
			want: policy.Decision{Allowed: true, Route: "/v2/items/"}},
		{name: "trailing-slash-template-needs-slash", method: "GET", path: "/v2/items", caller: "billing",
			want: policy.Decision{Reason: "no route for GET /v2/items"}},
		{name: "extra-segment", method: "POST", path: "/v1/charges/x/y/z", caller: "billing",
			want: policy.Decision{Reason: "no route for POST /v1/charges/x/y/z"}},
		{name: "static-beats-param", method: "GET", path: "/v1/charges/search", caller: "billing",
			want: policy.Decision{Allowed: true, Route: "/v1/charges/search"}},
		{name: "static-beats-param-no-fallback-to-wider-route", method: "GET", path: "/v1/charges/search", caller: "support",
			want: policy.Decision{Route: "/v1/charges/search", Reason: "caller support may not GET /v1/charges/search"}},
		{name: "backtracks-to-param-when-static-branch-dead-ends", method: "GET", path: "/v3/b/x", caller: "billing",
			want:       policy.Decision{Allowed: true, Route: "/v3/{a}/x"},
			wantParams: map[string]string{"a": "b"}},
		{name: "case-variant-of-sibling-literal-not-a-param", method: "GET", path: "/v4/Admin/list", caller: "billing",
			want: policy.Decision{Reason: "no route for GET /v4/Admin/list"}},
		{name: "upper-case-variant-of-sibling-literal", method: "GET", path: "/v4/ADMIN/list", caller: "billing",
			want: policy.Decision{Reason: "no route for GET /v4/ADMIN/list"}},
		{name: "other-param-value-still-matches", method: "GET", path: "/v4/public/list", caller: "billing",
			want:       policy.Decision{Allowed: true, Route: "/v4/{kind}/list"},
			wantParams: map[string]string{"kind": "public"}},
		{name: "reason-escapes-unprintable", method: "GET", path: "/v1/a%20b%C3%A9%22/x", caller: "billing",
			want: policy.Decision{Reason: "no route for GET /v1/a%20b%C3%A9%22/x"}},
		{name: "reason-path-truncated", method: "GET", path: "/" + strings.Repeat("a", 300), caller: "billing",
			want: policy.Decision{Reason: "no route for GET /" + strings.Repeat("a", 124) + "..."}},
		{name: "reason-caller-sanitised", method: "POST", path: "/v1/payouts", caller: "x\ny",
			want: policy.Decision{Route: "/v1/payouts", Reason: "caller x%0Ay may not POST /v1/payouts"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			segs, err := policy.CheckPath(tt.path)
			if err != nil {
				t.Fatalf("CheckPath(%q): %v", tt.path, err)
			}
			got := table.Decide(policy.Args{Method: tt.method, Segments: segs, Caller: tt.caller})
			if diff := cmp.Diff(tt.want, got, cmpopts.IgnoreUnexported(policy.Decision{})); diff != "" {
				t.Errorf("Decide (-want +got):\n%s", diff)
			}
			for name, want := range tt.wantParams {
				if v, ok := got.Param(name); !ok || v != want {
					t.Errorf("Param(%q) = %q, %v; want %q", name, v, ok, want)
				}
			}
			if _, ok := got.Param("nope"); ok {
				t.Error(`Param("nope") found a parameter that is not in the template`)
			}
		})
	}
}

func TestNilTableDeniesAll(t *testing.T) {
	var table *policy.Table
	got := table.Decide(policy.Args{Method: "GET", Segments: []string{"v1"}, Caller: "billing"})
	want := policy.Decision{Reason: "no route for GET /v1"}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreUnexported(policy.Decision{})); diff != "" {
		t.Errorf("nil table Decide (-want +got):\n%s", diff)
	}
}

func TestDecideAllowedDoesNotAllocate(t *testing.T) {
	table := mustCompile(t, decideRoutes())
	segs, err := policy.CheckPath("/v1/charges/ch_1/refunds")
	if err != nil {
		t.Fatal(err)
	}
	a := policy.Args{Method: "POST", Segments: segs, Caller: "billing"}
	var d policy.Decision
	allocs := testing.AllocsPerRun(100, func() { d = table.Decide(a) })
	if !d.Allowed {
		t.Fatalf("Decide = %+v, want allowed", d)
	}
	if allocs != 0 {
		t.Errorf("Decide allocated %v times per allowed call, want 0", allocs)
	}
	buf := make([]string, 0, 8)
	allocs = testing.AllocsPerRun(100, func() { buf, _ = policy.AppendCheckPath(buf[:0], "/v1/charges/ch_1/refunds") })
	if allocs != 0 {
		t.Errorf("AppendCheckPath allocated %v times for an unescaped path into a reused buffer, want 0", allocs)
	}
}

func TestDecideConcurrent(t *testing.T) {
	table := mustCompile(t, decideRoutes())
	segs, err := policy.CheckPath("/v1/charges/ch_1")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				if d := table.Decide(policy.Args{Method: "GET", Segments: segs, Caller: "support"}); !d.Allowed {
					t.Errorf("concurrent Decide = %+v", d)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestStripOverrides(t *testing.T) {
	h := http.Header{
		"X-Http-Method-Override": {"DELETE"},
		"X-Http-Method":          {"DELETE"},
		"X-Method-Override":      {"DELETE"},
		"x-http-method-override": {"PUT"}, // set through the map, not canonicalised
		"X-Original-Url":         {"/admin"},
		"x-rewrite-url":          {"/admin"},
		"Content-Type":           {"application/json"},
		"Idempotency-Key":        {"k1"},
	}
	policy.StripMethodOverride(h)
	policy.StripPathOverride(h)
	want := http.Header{
		"Content-Type":    {"application/json"},
		"Idempotency-Key": {"k1"},
	}
	if diff := cmp.Diff(want, h); diff != "" {
		t.Errorf("headers after strip (-want +got):\n%s", diff)
	}
}
