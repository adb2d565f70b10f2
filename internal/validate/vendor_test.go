package validate

import (
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestVendorGeneratedResponsesPass generates a response for every operation
// of each real spec with a 200 or 201 JSON schema and checks it. The
// generator works from the raw document, independently of the validator, so
// a rejection is either a validator bug, a generator limit, or a bug in the
// vendor's spec; the known ones are listed and the list must stay exact.
func TestVendorGeneratedResponsesPass(t *testing.T) {
	tests := []struct {
		name      string
		file      string
		minOps    int
		wantRejct []string
	}{
		{name: "stripe", file: "stripe.com.json", minOps: 400},
		{name: "twilio", file: "twilio.com.json", minOps: 150},
		{name: "slack", file: "slack.com.json", minOps: 150},
		{name: "github", file: "api.github.com.json", minOps: 900, wantRejct: []string{
			// Event payloads are a oneOf of loosely typed objects: the
			// generator's first branch also matches others.
			"GET /events 200: /0/payload oneOf: matches more than one schema",
			"GET /networks/{owner}/{repo}/events 200: /0/payload oneOf: matches more than one schema",
			"GET /orgs/{org}/events 200: /0/payload oneOf: matches more than one schema",
			"GET /repos/{owner}/{repo}/events 200: /0/payload oneOf: matches more than one schema",
			"GET /users/{username}/events 200: /0/payload oneOf: matches more than one schema",
			"GET /users/{username}/events/orgs/{org} 200: /0/payload oneOf: matches more than one schema",
			"GET /users/{username}/events/public 200: /0/payload oneOf: matches more than one schema",
			"GET /users/{username}/received_events 200: /0/payload oneOf: matches more than one schema",
			"GET /users/{username}/received_events/public 200: /0/payload oneOf: matches more than one schema",
			"POST /orgs/{org}/projectsV2/{project_number}/drafts 201: /content oneOf: matches more than one schema",
			"POST /orgs/{org}/projectsV2/{project_number}/items 201: /content oneOf: matches more than one schema",
			"POST /user/{user_id}/projectsV2/{project_number}/drafts 201: /content oneOf: matches more than one schema",
			"POST /users/{username}/projectsV2/{project_number}/items 201: /content oneOf: matches more than one schema",
			// A bug in GitHub's spec: "Docker Metadata" declares the property
			// "tag" but requires "tags". Real responses would fail the same way.
			"GET /orgs/{org}/packages/{package_type}/{package_name}/versions/{package_version_id} 200: /metadata/docker/tags required: missing",
			"GET /user/packages/{package_type}/{package_name}/versions/{package_version_id} 200: /metadata/docker/tags required: missing",
			"GET /users/{username}/packages/{package_type}/{package_name}/versions/{package_version_id} 200: /metadata/docker/tags required: missing",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := loadVendor(t, tc.file)
			g := &gen{doc: v.raw, maxDepth: 3}
			val := New(v.spec, ModeEnforce, 0, 0)
			var rejected []string
			checked := 0
			for _, op := range jsonOperations(g, "200", "201") {
				body := g.generate(t, op.path, op.method, op.code)
				status, _ := strconv.Atoi(op.code)
				if viol := val.Check(strings.ToUpper(op.method), op.path, status, jsonHeader(), body); viol != nil {
					rejected = append(rejected, viol.Detail())
				}
				checked++
			}
			if checked < tc.minOps {
				t.Errorf("checked %d operations, want at least %d", checked, tc.minOps)
			}
			got := filterKnown(rejected, tc.wantRejct)
			if diff := cmp.Diff(tc.wantRejct, got); diff != "" {
				t.Errorf("rejected responses (-want +got):\n%s", diff)
			}
		})
	}
}

// filterKnown returns rejected, keeping the known ones in the known list's
// order and the unexpected ones after them, so a diff shows both kinds.
func filterKnown(rejected, known []string) []string {
	seen := map[string]bool{}
	for _, r := range rejected {
		seen[r] = true
	}
	var out []string
	for _, k := range known {
		if seen[k] {
			out = append(out, k)
			delete(seen, k)
		}
	}
	var extra []string
	for r := range seen {
		extra = append(extra, r)
	}
	sort.Strings(extra)
	return append(out, extra...)
}

type rawOp struct{ path, method, code string }

func jsonOperations(g *gen, codes ...string) []rawOp {
	var out []rawOp
	paths, _ := g.doc["paths"].(map[string]any)
	for _, p := range sortedKeys(paths) {
		item, _ := paths[p].(map[string]any)
		for _, m := range sortedKeys(item) {
			for _, code := range codes {
				if m != "parameters" && g.responseSchema(p, m, code, "application/json") != nil {
					out = append(out, rawOp{p, m, code})
				}
			}
		}
	}
	return out
}

// TestVendorBrokenResponses breaks generated responses of real specs in one
// way each and checks that the violation names the field and the rule.
func TestVendorBrokenResponses(t *testing.T) {
	const (
		charge  = "/v1/charges/{charge}"
		pull    = "/repos/{owner}/{repo}/pulls/{pull_number}"
		message = "/2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json"
	)
	tests := []struct {
		name, file, method, path string
		route                    string // gateway template; "" = path
		mutate                   func(map[string]any)
		want                     []FieldProblem
	}{
		{name: "stripe-amount-as-string", file: "stripe.com.json", method: "get", path: charge, route: "/v1/charges/{id}",
			mutate: func(m map[string]any) { m["amount"] = "100" },
			want:   []FieldProblem{{"/amount", "type: want integer, got string"}}},
		{name: "stripe-required-currency-missing", file: "stripe.com.json", method: "get", path: charge,
			mutate: func(m map[string]any) { delete(m, "currency") },
			want:   []FieldProblem{{"/currency", "required: missing"}}},
		{name: "stripe-unknown-status", file: "stripe.com.json", method: "get", path: charge,
			mutate: func(m map[string]any) { m["status"] = "refunded_twice" },
			want:   []FieldProblem{{"/status", "enum: want one of failed, pending, succeeded"}}},
		{name: "stripe-id-too-long", file: "stripe.com.json", method: "get", path: charge,
			mutate: func(m map[string]any) { m["id"] = strings.Repeat("c", 5001) },
			want:   []FieldProblem{{"/id", "maxLength: want at most 5000 characters"}}},
		{name: "github-created-at-not-date-time", file: "api.github.com.json", method: "get", path: pull,
			mutate: func(m map[string]any) { m["created_at"] = "yesterday" },
			want:   []FieldProblem{{"/created_at", "format: want date-time"}}},
		{name: "github-url-not-uri", file: "api.github.com.json", method: "get", path: pull,
			mutate: func(m map[string]any) { m["url"] = "not a uri" },
			want:   []FieldProblem{{"/url", "format: want uri"}}},
		{name: "github-number-null", file: "api.github.com.json", method: "get", path: pull,
			mutate: func(m map[string]any) { m["number"] = nil },
			want:   []FieldProblem{{"/number", "type: want integer, got null"}}},
		{name: "slack-undeclared-field", file: "slack.com.json", method: "post", path: "/chat.postMessage",
			mutate: func(m map[string]any) { m["warning"] = "x" },
			want:   []FieldProblem{{"/warning", "additionalProperties: not allowed"}}},
		{name: "twilio-sid-pattern", file: "twilio.com.json", method: "get", path: message,
			mutate: func(m map[string]any) { m["sid"] = "SM" + strings.Repeat("z", 32) },
			want:   []FieldProblem{{"/sid", "pattern: want a match of ^(SM|MM)[0-9a-fA-F]{32}$"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := loadVendor(t, tc.file)
			g := &gen{doc: v.raw, maxDepth: 4}
			var body map[string]any
			if err := json.Unmarshal(g.generate(t, tc.path, tc.method, "200"), &body); err != nil {
				t.Fatal(err)
			}
			route := tc.route
			if route == "" {
				route = tc.path
			}
			val := New(v.spec, ModeEnforce, 0, 0)
			b, _ := json.Marshal(body)
			if viol := val.Check(strings.ToUpper(tc.method), route, 200, jsonHeader(), b); viol != nil {
				t.Fatalf("generated body rejected before the mutation: %s", viol.Detail())
			}
			tc.mutate(body)
			b, _ = json.Marshal(body)
			viol := val.Check(strings.ToUpper(tc.method), route, 200, jsonHeader(), b)
			if viol == nil {
				t.Fatal("broken body accepted")
			}
			if diff := cmp.Diff(tc.want, viol.Problems); diff != "" {
				t.Errorf("Problems (-want +got):\n%s", diff)
			}
		})
	}
}

func TestVendorMissingRoutes(t *testing.T) {
	spec := loadVendor(t, "stripe.com.json").spec
	routes := []RouteKey{
		{"GET", "/v1/charges/{id}"},
		{"POST", "/v1/charges"},
		{"GET", "/v1/customers/search"},
		{"POST", "/v1/charges/{id}/teleport"},
	}
	want := []RouteKey{{"POST", "/v1/charges/{id}/teleport"}}
	if diff := cmp.Diff(want, spec.Missing(routes)); diff != "" {
		t.Errorf("Missing() (-want +got):\n%s", diff)
	}
}
