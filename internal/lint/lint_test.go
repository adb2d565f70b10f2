package lint

import (
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/portcullis-dev/portcullis/internal/conf"
)

// hardened is a config no rule has anything to say about; each case below
// changes one thing in it.
const hardened = `version: 1
server:
  admin_token: env:PORTCULLIS_ADMIN_TOKEN
callers:
  billing: {tokens: ["sha256:1111111111111111111111111111111111111111111111111111111111111111"], description: billing service}
  support: {tokens: ["sha256:2222222222222222222222222222222222222222222222222222222222222222"], mtls_subjects: ["spiffe://corp.example/support"]}
integrations:
  payments:
    upstream: https://api.pay.example
    egress: {allow: ["api.pay.example:443"]}
    credential: {type: bearer, secret: env:PAY_KEY, max_age: 90d}
    routes:
      - {method: GET, path: "/v1/charges/{id}", callers: [billing]}
      - {method: POST, path: "/v1/charges", callers: [billing]}
    timeouts: {connect: 2s, request: 10s}
    circuit_breaker: {failure_ratio: 0.5, min_requests: 20, window: 30s, open_for: 15s}
    rate_limit: {rate: 10/s, burst: 5}
    validate: {openapi: specs/pay.yaml, mode: enforce}
    vendor: {owner: payments-team, data_classes: [pii, payment]}
    justification: billing creates charges for customers
`

type brief struct {
	ID       conf.Code
	Severity conf.Severity
	Path     string
}

func briefs(r Report) []brief {
	out := make([]brief, 0, len(r.Findings))
	for _, f := range r.Findings {
		out = append(out, brief{f.ID, f.Severity, f.Path})
	}
	return out
}

func TestHardenedConfigIsClean(t *testing.T) {
	r := Check("hardened.yaml", []byte(hardened))
	if len(r.Findings) != 0 {
		t.Errorf("findings on the hardened config: %+v", r.Findings)
	}
}

func TestRules(t *testing.T) {
	tests := []struct {
		name    string
		replace [][2]string // old, new pairs applied to hardened
		want    []brief
	}{
		{name: "plain-secret-in-secret-ref", replace: [][2]string{{"secret: env:PAY_KEY", "secret: sk_live_4eC39HqLyjWDarjtT1zdp7dc"}},
			want: []brief{{conf.PlainSecret, conf.Error, "integrations.payments.credential.secret"}}},
		{name: "plain-secret-in-free-text", replace: [][2]string{{"description: billing service", "description: billing uses sk_live_4eC39HqLyjWDarjtT1zdp7dc"}},
			want: []brief{{conf.PlainSecret, conf.Error, "callers.billing.description"}}},
		{name: "slack-webhook-url-is-a-secret", replace: [][2]string{{"version: 1\n", "version: 1\ninternal_egress: {allow: [\"hooks.slack.com:443\"]}\nalerts: {sinks: [{type: webhook, url: \"https://hooks.slack.com/services/T0001/B0002/abcdefghijklmnopqrstuvwx\"}]}\n"}},
			want: []brief{{conf.PlainSecret, conf.Error, "alerts.sinks[0].url"}}},
		{name: "token-url-not-on-egress", replace: [][2]string{{"credential: {type: bearer, secret: env:PAY_KEY, max_age: 90d}", "credential: {type: oauth2_client_credentials, token_url: \"https://login.pay.example/oauth2/token\", client_id: c1, client_secret: env:PAY_SECRET, scopes: [charges], max_age: 90d}"}},
			want: []brief{{conf.TokenURLOffEgress, conf.Error, "integrations.payments.credential.token_url"}}},
		{name: "token-url-on-egress", replace: [][2]string{{"credential: {type: bearer, secret: env:PAY_KEY, max_age: 90d}", "credential: {type: oauth2_client_credentials, token_url: \"https://login.pay.example/oauth2/token\", client_id: c1, client_secret: env:PAY_SECRET, scopes: [charges], max_age: 90d}"}, {`allow: ["api.pay.example:443"]`, `allow: ["api.pay.example:443", "login.pay.example:443"]`}},
			want: []brief{}},
		{name: "alert-sink-not-on-internal-egress", replace: [][2]string{{"version: 1\n", "version: 1\nalerts: {sinks: [{type: webhook, url: \"http://127.0.0.1:7000/alerts\"}]}\n"}},
			want: []brief{{conf.InternalNotAllowed, conf.Error, "alerts.sinks[0].url"}}},
		{name: "otlp-not-on-internal-egress", replace: [][2]string{{"version: 1\n", "version: 1\ninternal_egress: {allow: [\"127.0.0.1:7000\"]}\ntracing: {otlp_endpoint: \"http://otel.corp.example:4318\"}\n"}},
			want: []brief{{conf.InternalNotAllowed, conf.Error, "tracing.otlp_endpoint"}}},
		{name: "internal-egress-wildcard", replace: [][2]string{{"version: 1\n", "version: 1\ninternal_egress: {allow: [\"*.corp.example:443\"]}\n"}},
			want: []brief{{conf.InternalEgressEntry, conf.Error, "internal_egress.allow[0]"}}},
		{name: "internal-egress-metadata-address", replace: [][2]string{{"version: 1\n", "version: 1\ninternal_egress: {allow: [\"169.254.169.254:80\"]}\n"}},
			want: []brief{{conf.InternalEgressEntry, conf.Error, "internal_egress.allow"}}},
		{name: "private-key-in-policy-link", replace: [][2]string{{"owner: payments-team", "owner: payments-team, policies: {breach_response: \"-----BEGIN PRIVATE KEY-----\"}"}},
			want: []brief{{conf.PlainSecret, conf.Error, "integrations.payments.vendor.policies.breach_response"}}},
		{name: "secret-under-secret-named-key", replace: [][2]string{{"owner: payments-team", "owner: payments-team, policies: {api_key: Zm9vYmFyYmF6cXV4}"}},
			want: []brief{{conf.PlainSecret, conf.Error, "integrations.payments.vendor.policies.api_key"}}},
		{name: "wildcard-egress", replace: [][2]string{{`allow: ["api.pay.example:443"]`, `allow: ["*.pay.example:443"]`}},
			want: []brief{{conf.WildcardEgress, conf.Warning, "integrations.payments.egress.allow[0]"}}},
		{name: "ip-egress", replace: [][2]string{{`allow: ["api.pay.example:443"]`, `allow: ["api.pay.example:443", "93.184.216.34:443"]`}},
			want: []brief{{conf.IPEgress, conf.Warning, "integrations.payments.egress.allow[1]"}}},
		{name: "allow-private", replace: [][2]string{{`allow: ["api.pay.example:443"]`, `allow: ["api.pay.example:443"], allow_private: true`}},
			want: []brief{{conf.PrivateEgress, conf.Warning, "integrations.payments.egress.allow_private"}}},
		{name: "allow-cidrs", replace: [][2]string{{`allow: ["api.pay.example:443"]`, `allow: ["api.pay.example:443"], allow_cidrs: ["10.1.2.0/24"]`}},
			want: []brief{{conf.PrivateEgress, conf.Warning, "integrations.payments.egress.allow_cidrs"}}},
		{name: "open-proxy-with-allow-cidrs", replace: [][2]string{{`allow: ["api.pay.example:443"]`, `allow: ["api.pay.example:443"], allow_cidrs: ["10.1.2.0/24"]`}, {"    justification:", "    proxy: {mode: open}\n    justification:"}},
			want: []brief{{conf.PrivateEgress, conf.Warning, "integrations.payments.egress.allow_cidrs"}, {conf.OpenProxyCIDRs, conf.Warning, "integrations.payments.proxy.mode"}}},
		{name: "report-proxy-with-allow-cidrs", replace: [][2]string{{`allow: ["api.pay.example:443"]`, `allow: ["api.pay.example:443"], allow_cidrs: ["10.1.2.0/24"]`}, {"    justification:", "    proxy: {mode: report}\n    justification:"}},
			want: []brief{{conf.PrivateEgress, conf.Warning, "integrations.payments.egress.allow_cidrs"}, {conf.OpenProxyCIDRs, conf.Warning, "integrations.payments.proxy.mode"}}},
		{name: "enforce-proxy-with-allow-cidrs-is-not-flagged", replace: [][2]string{{`allow: ["api.pay.example:443"]`, `allow: ["api.pay.example:443"], allow_cidrs: ["10.1.2.0/24"]`}, {"    justification:", "    proxy: {mode: enforce}\n    justification:"}},
			want: []brief{{conf.PrivateEgress, conf.Warning, "integrations.payments.egress.allow_cidrs"}}},
		{name: "open-proxy-without-allow-cidrs-is-not-flagged", replace: [][2]string{{"    justification:", "    proxy: {mode: open}\n    justification:"}},
			want: []brief{}},
		{name: "plain-http-upstream", replace: [][2]string{{"upstream: https://api.pay.example", "upstream: http://api.pay.example"}, {"api.pay.example:443", "api.pay.example:80"}},
			want: []brief{{conf.PlainHTTP, conf.Warning, "integrations.payments.upstream"}}},
		{name: "no-timeouts", replace: [][2]string{{"    timeouts: {connect: 2s, request: 10s}\n", ""}},
			want: []brief{{conf.NoTimeouts, conf.Warning, "integrations.payments.timeouts"}}},
		{name: "no-breaker", replace: [][2]string{{"    circuit_breaker: {failure_ratio: 0.5, min_requests: 20, window: 30s, open_for: 15s}\n", ""}},
			want: []brief{{conf.NoBreaker, conf.Warning, "integrations.payments"}}},
		{name: "no-rate-limit", replace: [][2]string{{"    rate_limit: {rate: 10/s, burst: 5}\n", ""}},
			want: []brief{{conf.NoRateLimit, conf.Warning, "integrations.payments"}}},
		{name: "no-validation", replace: [][2]string{{"    validate: {openapi: specs/pay.yaml, mode: enforce}\n", ""}},
			want: []brief{{conf.NoValidation, conf.Info, "integrations.payments"}}},
		{name: "validation-report-only", replace: [][2]string{{"mode: enforce", "mode: report"}},
			want: []brief{{conf.NoValidation, conf.Info, "integrations.payments.validate.mode"}}},
		{name: "route-open-to-every-caller", replace: [][2]string{{`"/v1/charges/{id}", callers: [billing]`, `"/v1/charges/{id}", callers: [billing, support]`}},
			want: []brief{{conf.OpenRoute, conf.Warning, "integrations.payments.routes[0].callers"}}},
		{name: "pii-write-without-justification", replace: [][2]string{{"    justification: billing creates charges for customers\n", ""}},
			want: []brief{{conf.UnjustifiedWrite, conf.Warning, "integrations.payments.routes[1]"}}},
		{name: "token-shared-by-two-callers", replace: [][2]string{{"sha256:2222222222222222222222222222222222222222222222222222222222222222", "sha256:1111111111111111111111111111111111111111111111111111111111111111"}},
			want: []brief{{conf.SharedIdentity, conf.Error, "callers.support.tokens[0]"}}},
		{name: "subject-shared-by-two-callers", replace: [][2]string{{`description: billing service}`, `description: billing service, mtls_subjects: ["spiffe://corp.example/support"]}`}},
			want: []brief{{conf.SharedIdentity, conf.Error, "callers.support.mtls_subjects[0]"}}},
		{name: "credential-without-max-age", replace: [][2]string{{", max_age: 90d", ""}},
			want: []brief{{conf.NoMaxAge, conf.Warning, "integrations.payments.credential"}}},
		{name: "no-admin-token", replace: [][2]string{{"  admin_token: env:PORTCULLIS_ADMIN_TOKEN\n", ""}},
			want: []brief{{conf.NoAdminToken, conf.Warning, "server.admin_token"}}},
		{name: "admin-on-every-interface", replace: [][2]string{{"server:\n", "server:\n  admin_listen: 0.0.0.0:9090\n"}},
			want: []brief{{conf.AdminExposed, conf.Warning, "server.admin_listen"}}},
		{name: "webhook-idle-timeout-off", replace: [][2]string{{"server:\n", "server:\n  limits: {webhook: {idle_timeout: 0s}}\n"}},
			want: []brief{{conf.ListenerUnbounded, conf.Warning, "server.limits.webhook.idle_timeout"}}},
		{name: "chaos-enabled", replace: [][2]string{{"version: 1\n", "version: 1\nchaos: {enabled: true}\n"}},
			want: []brief{{conf.ChaosEnabled, conf.Warning, "chaos.enabled"}}},
		{name: "chaos-fault-while-disabled", replace: [][2]string{{"version: 1\n", "version: 1\nchaos: {faults: [{integration: payments, kind: error}]}\n"}},
			want: []brief{{conf.BadChaosFault, conf.Error, "chaos.faults[0]"}}},
		{name: "chaos-fault-unknown-integration", replace: [][2]string{{"version: 1\n", "version: 1\nchaos: {enabled: true, faults: [{integration: pay, kind: error}]}\n"}},
			want: []brief{{conf.BadChaosFault, conf.Error, "chaos.faults[0].integration"}, {conf.ChaosEnabled, conf.Warning, "chaos.enabled"}}},
		{name: "chaos-fault-unknown-route", replace: [][2]string{{"version: 1\n", "version: 1\nchaos: {enabled: true, faults: [{integration: payments, route: /v2/x, kind: reset}]}\n"}},
			want: []brief{{conf.BadChaosFault, conf.Error, "chaos.faults[0].route"}, {conf.ChaosEnabled, conf.Warning, "chaos.enabled"}}},
		{name: "compile-error-is-pc000", replace: [][2]string{{`allow: ["api.pay.example:443"]`, `allow: ["api.pay.example:443"], pin_spki: ["not-base64!"]`}},
			want: []brief{{conf.ConfigInvalid, conf.Error, "integrations.payments.egress"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := hardened
			for _, r := range tc.replace {
				if !strings.Contains(src, r[0]) {
					t.Fatalf("test setup: %q not in the base config", r[0])
				}
				src = strings.Replace(src, r[0], r[1], 1)
			}
			r := Check("t.yaml", []byte(src))
			if d := cmp.Diff(tc.want, briefs(r)); d != "" {
				t.Errorf("findings (-want +got):\n%s\n%+v", d, r.Findings)
			}
			for _, f := range r.Findings {
				if f.Line == 0 || f.Fix == "" && f.ID != conf.ConfigInvalid {
					t.Errorf("finding without a line or a fix: %+v", f)
				}
				if strings.Contains(f.Message, "sk_live_") || strings.Contains(f.Message, "Zm9vYmFy") || strings.Contains(f.Message, "hooks.slack.com") {
					t.Errorf("finding echoes the secret: %s", f.Message)
				}
			}
		})
	}
}

func TestSecretKind(t *testing.T) {
	tests := []struct {
		name, key, value, want string
	}{
		{"secret-reference-is-fine", "secret", "vault:secret/data/x#k", ""},
		{"url-without-credential", "url", "https://trust.vendor.example/soc2", ""},
		{"url-with-token-query", "url", "https://alerts.example/hook?token=abc", "a URL with a credential in its query (token=)"},
		{"url-with-password", "forward_to", "https://u:p@internal.example/x", "a URL with a password"},
		{"aws-key-id", "description", "key AKIAIOSFODNN7EXAMPLE", "an AWS access key id"},
		{"jwt", "note", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U", "a JSON Web Token"},
		{"token-hash-is-not-a-secret", "tokens", "sha256:9f2c6a1b0d7e4c3f8a5b2e1d0c9f8e7d6c5b4a39281706f5e4d3c2b1a0f9e8d7", ""},
		{"prose-under-secret-key", "password", "kept in the vault", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := secretKind(tc.key, tc.value); got != tc.want {
				t.Errorf("secretKind(%q, %q) = %q, want %q", tc.key, tc.value, got, tc.want)
			}
		})
	}
}

func FuzzCheck(f *testing.F) {
	f.Add([]byte(hardened))
	if b, err := os.ReadFile("testdata/risky.yaml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("version: 1\nintegrations: {x: {upstream: 'http://[::1]:80', egress: {allow: ['[::1]:80']}}}\n"))
	ids := map[conf.Code]bool{}
	for _, r := range Rules() {
		ids[r.ID] = true
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := Check("f.yaml", data)
		for _, fd := range r.Findings {
			if !ids[fd.ID] || fd.Message == "" {
				t.Fatalf("finding with an unknown id or no message: %+v", fd)
			}
		}
	})
}

func TestOpenProxyCIDRsNamesLineAndFix(t *testing.T) {
	src := strings.Replace(hardened, `allow: ["api.pay.example:443"]`, `allow: ["api.pay.example:443"], allow_cidrs: ["10.1.2.0/24"]`, 1)
	src = strings.Replace(src, "    justification:", "    proxy:\n      mode: open\n    justification:", 1)
	wantLine := strings.Count(src[:strings.Index(src, "mode: open")], "\n") + 1
	for _, f := range Check("t.yaml", []byte(src)).Findings {
		if f.ID != conf.OpenProxyCIDRs {
			continue
		}
		if f.Line != wantLine || !strings.Contains(f.Message, "10.1.2.0/24") || !strings.Contains(f.Fix, "proxy.mode: enforce") {
			t.Errorf("finding %+v, want line %d, the range and the enforce fix", f, wantLine)
		}
		return
	}
	t.Fatal("no PC024 finding for proxy.mode: open with allow_cidrs")
}
