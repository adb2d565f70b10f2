package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const okHash = "sha256:9f2c6a1b0d7e4c3f8a5b2e1d0c9f8e7d6c5b4a39281706f5e4d3c2b1a0f9e8d7"

// base is a valid config; tests append or replace parts of it.
const base = `version: 1
callers:
  billing: {tokens: ["` + okHash + `"]}
integrations:
  payments:
    upstream: https://api.payments.example
    egress: {allow: ["api.payments.example:443"]}
    credential: {type: bearer, secret: env:PAY_KEY}
    timeouts: {connect: 2s, request: 10s}
    routes:
      - {method: GET, path: "/v1/charges/{id}", callers: [billing]}
`

func TestExampleConfigIsValid(t *testing.T) {
	cfg, warnings, err := Load(filepath.Join("..", "..", "examples", "portcullis.yaml"))
	if err != nil {
		t.Fatalf("examples/portcullis.yaml: %v", err)
	}
	if len(cfg.Integrations) < 5 {
		t.Errorf("example has %d integrations, want a realistic set", len(cfg.Integrations))
	}
	for _, w := range warnings {
		t.Logf("warning: %s", w)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		wantMsg string // substring of one error
		line    int
	}{
		{"unknown-key", strings.Replace(base, "    upstream:", "    upstrem: x\n    upstream:", 1), `unknown key "upstrem"`, 6},
		{"wrong-type", strings.Replace(base, "version: 1", "version: one", 1), "wrong type: got a string, want an integer", 1},
		{"bad-duration", strings.Replace(base, "connect: 2s", "connect: 2 seconds", 1), `integrations.payments.timeouts.connect: bad duration "2 seconds"`, 9},
		{"bad-size", base + "    limits: {max_response_bytes: 5 MB please}\n", `integrations.payments.limits.max_response_bytes: bad size`, 12},
		{"bad-rate", base + "    rate_limit: {rate: 100 per second}\n", `integrations.payments.rate_limit.rate: bad rate`, 12},
		{"duplicate-integration", base + "  payments:\n    upstream: https://x.example\n", `mapping key "payments" already defined`, 12},
		{"duplicate-caller", strings.Replace(base, "callers:\n", "callers:\n  billing: {}\n", 1), `mapping key "billing" already defined`, 0},
		{"unknown-caller", strings.Replace(base, "callers: [billing]", "callers: [billing, ghost]", 1), `routes[0].callers[1]: unknown caller "ghost"`, 11},
		{"plain-secret", strings.Replace(base, "secret: env:PAY_KEY", "secret: sk_live_abcdef123456", 1), "plain secret written into the config", 8},
		{"plain-secret-with-colon", strings.Replace(base, "secret: env:PAY_KEY", "secret: user:hunter2hunter2", 1), "plain secret written into the config", 8},
		{"raw-caller-token", strings.Replace(base, okHash, "pcs_rawtoken_should_be_hashed", 1), `not a raw token`, 3},
		{"upstream-not-on-allowlist", strings.Replace(base, `allow: ["api.payments.example:443"]`, `allow: ["api.other.example:443"]`, 1), "not on egress.allow", 6},
		{"upstream-port-not-on-allowlist", strings.Replace(base, `api.payments.example:443"]`, `api.payments.example:8443"]`, 1), "api.payments.example:443 is not on egress.allow", 6},
		{"empty-egress", strings.Replace(base, `egress: {allow: ["api.payments.example:443"]}`, `egress: {allow: []}`, 1), "egress.allow: empty", 0},
		{"bad-method", strings.Replace(base, "method: GET", "method: get", 1), "upper-case HTTP method", 11},
		{"bad-template", strings.Replace(base, `"/v1/charges/{id}"`, `"/v1/charges/x{id}"`, 1), "parameters must be whole segments", 11},
		{"duplicate-route", base + "      - {method: GET, path: \"/v1/charges/{id}\", callers: [billing]}\n", "duplicate of routes[0]", 12},
		{"forward-authorization", base + "    request_headers: [Authorization]\n", "Authorization can never be forwarded", 12},
		{"unknown-credential-type", strings.Replace(base, "type: bearer", "type: magic", 1), `unknown credential type "magic"`, 8},
		{"shared-token", strings.Replace(base, "callers:\n", "callers:\n  support: {tokens: [\""+okHash+"\"]}\n", 1), `also given to caller`, 0},
		{"bad-version", strings.Replace(base, "version: 1", "version: 2", 1), "must be 1", 1},
		{"bad-upstream", strings.Replace(base, "https://api.payments.example", "ftp://api.payments.example", 1), "absolute http(s) URL", 6},
		{"upstream-userinfo", strings.Replace(base, "https://api.payments.example", "https://u:p@api.payments.example", 1), "must not carry user:password", 6},
		{"retry-attempts", base + "    retry: {attempts: 50}\n", "retry.attempts: must be 1..10", 12},
		{"redis-without-url", base + "state: {backend: redis}\n", "state.redis_url: required", 0},
		{"redis-timeout-zero", base + "state:\n  backend: redis\n  redis_url: redis://127.0.0.1:6379/0\n  redis_timeout: 0s\n", "state.redis_timeout: must be between 1ms and 10s (got 0s)", 15},
		{"redis-timeout-too-long", base + "state:\n  redis_timeout: 1m\n", "state.redis_timeout: must be between 1ms and 10s (got 1m0s)", 13},
		{"redis-timeout-bad-duration", base + "state:\n  redis_timeout: soon\n", `state.redis_timeout: bad duration "soon"`, 13},
		{"reserved-integration-name", strings.Replace(base, "  payments:\n", "  jobs:\n", 1), `"jobs" is reserved`, 5},
		{"token-url-not-on-egress", strings.Replace(base, "credential: {type: bearer, secret: env:PAY_KEY}", "credential: {type: oauth2_client_credentials, token_url: \"https://login.payments.example/oauth2/token\", client_id: c, client_secret: env:S}", 1),
			`host login.payments.example:443 is not on integrations.payments.egress.allow (line 7), so the token request would be refused: add "login.payments.example:443" to integrations.payments.egress.allow`, 8},
		{"forward-to-without-internal-egress", base + "server: {webhook_listen: 127.0.0.1:8443}\nwebhooks:\n  w:\n    path: /w\n    scheme: standard\n    secrets: [env:W]\n    forward_to: http://127.0.0.1:7000/hooks\n    forward_secret: env:F\n",
			"webhooks.w.forward_to: host 127.0.0.1:7000 is not on internal_egress.allow, so the gateway would refuse to connect: add `internal_egress: {allow: [\"127.0.0.1:7000\"]}` at the top level of the file", 18},
		{"forward-to-not-on-internal-egress", base + "internal_egress:\n  allow: [\"127.0.0.1:7001\"]\nserver: {webhook_listen: 127.0.0.1:8443}\nwebhooks:\n  w:\n    path: /w\n    scheme: standard\n    secrets: [env:W]\n    forward_to: http://127.0.0.1:7000/hooks\n    forward_secret: env:F\n",
			`webhooks.w.forward_to: host 127.0.0.1:7000 is not on internal_egress.allow (line 13), so the gateway would refuse to connect: add "127.0.0.1:7000" to internal_egress.allow`, 20},
		{"alert-sink-not-on-internal-egress", base + "alerts: {sinks: [{type: webhook, url: \"https://alerts.corp.example/hook\"}]}\n",
			"alerts.sinks[0].url: host alerts.corp.example:443 is not on internal_egress.allow", 12},
		{"otlp-not-on-internal-egress", base + "tracing: {otlp_endpoint: \"http://[::1]:4318\"}\n",
			`tracing.otlp_endpoint: host [::1]:4318 is not on internal_egress.allow, so the gateway would refuse to connect: add ` + "`" + `internal_egress: {allow: ["[::1]:4318"]}` + "`", 12},
		{"internal-egress-wildcard", base + "internal_egress: {allow: [\"*.corp.example:443\"]}\n", `internal egress entry "*.corp.example:443": wildcards are not allowed`, 12},
		{"internal-egress-no-port", base + "internal_egress: {allow: [\"vault.corp.example\"]}\n", `internal egress entry "vault.corp.example": must be host:port`, 12},
		{"revoke-on-403-not-bool", strings.Replace(base, "credential: {type: bearer, secret: env:PAY_KEY}", "credential:\n      type: bearer\n      secret: env:PAY_KEY\n      revoke_on_403: sometimes", 1), "credential.revoke_on_403: wrong type: got a string, want true or false", 11},
		{"vault-ref-not-kv2", strings.Replace(base, "secret: env:PAY_KEY", "secret: vault:secret/payments#k", 1), "KV v2", 8},
		{"inspect-without-ca", base + "    proxy: {mode: enforce, inspect: true}\n", "integrations.payments.proxy.inspect: needs server.inspect_ca", 12},
		{"inspect-report-mode", base + "    proxy: {mode: report, inspect: true}\nserver:\n  inspect_ca: {cert: ca.pem, key: env:CA_KEY}\n", "integrations.payments.proxy.inspect: needs mode enforce (got report)", 12},
		{"inspect-ca-without-key", base + "server:\n  inspect_ca: {cert: ca.pem}\n", "server.inspect_ca.key: required", 13},
		{"inspect-ca-without-cert", base + "server:\n  inspect_ca:\n    key: env:CA_KEY\n", "server.inspect_ca.cert: required", 13},
		{"inspect-ca-plain-key", base + "server:\n  inspect_ca:\n    cert: ca.pem\n    key: \"-----BEGIN PRIVATE KEY-----\"\n", "server.inspect_ca.key: looks like a plain secret", 15},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Parse("t.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatalf("no error; want %q", tt.wantMsg)
			}
			ps := err.(*Problems)
			for _, p := range ps.List {
				if p.Severity == Error && strings.Contains(p.String(), tt.wantMsg) {
					if tt.line != 0 && p.Line != tt.line {
						t.Errorf("line = %d, want %d (%s)", p.Line, tt.line, p)
					}
					return
				}
			}
			t.Errorf("no error contains %q; got:\n%v", tt.wantMsg, err)
		})
	}
}

// credential.revoke_on_403 is off unless set (issue 13: a 403 is the
// vendor's answer about one resource, not a dead key).
func TestRevokeOn403(t *testing.T) {
	for _, tc := range []struct {
		set  string
		want bool
	}{{"", false}, {", revoke_on_403: true", true}, {", revoke_on_403: false", false}} {
		cfg, _, err := Parse("t.yaml", []byte(strings.Replace(base, "secret: env:PAY_KEY}", "secret: env:PAY_KEY"+tc.set+"}", 1)))
		if err != nil {
			t.Fatalf("%q: %v", tc.set, err)
		}
		if got := cfg.Integrations["payments"].Credential.RevokeOn403; got != tc.want {
			t.Errorf("%q: RevokeOn403 = %v, want %v", tc.set, got, tc.want)
		}
	}
}

func TestErrorsNeverEchoSecrets(t *testing.T) {
	const canary = "sk_live_CANARY_4242424242"
	for _, y := range []string{
		strings.Replace(base, "secret: env:PAY_KEY", "secret: "+canary, 1),
		strings.Replace(base, "secret: env:PAY_KEY", "secret: \"vault:"+canary+"\"", 1),
		strings.Replace(base, okHash, canary, 1),
		strings.Replace(base, "secret: env:PAY_KEY", "secret: env:PAY_KEY\n    sekret: "+canary, 1),
	} {
		_, _, err := Parse("t.yaml", []byte(y))
		if err == nil {
			t.Fatal("expected an error")
		}
		if strings.Contains(err.Error(), canary) {
			t.Errorf("error echoes the secret:\n%v", err)
		}
	}
}

// TestBadRedisTimeoutIsOneError: an unparsable redis_timeout is reported
// once, as what it is, not also as out of range.
func TestBadRedisTimeoutIsOneError(t *testing.T) {
	_, _, err := Parse("t.yaml", []byte(base+"state:\n  redis_timeout: soon\n"))
	if err == nil || strings.Count(err.Error(), "redis_timeout") != 1 {
		t.Errorf("want one problem with state.redis_timeout, got:\n%v", err)
	}
}

func TestEveryErrorIsReported(t *testing.T) {
	y := strings.Replace(base, "connect: 2s", "connect: nope", 1)
	y = strings.Replace(y, "secret: env:PAY_KEY", "secret: plaintext-value", 1)
	y = strings.Replace(y, "callers: [billing]", "callers: [ghost]", 1)
	_, _, err := Parse("t.yaml", []byte(y))
	if n := strings.Count(err.Error(), "\n"); n < 3 {
		t.Errorf("want 3 errors reported at once, got:\n%v", err)
	}
}

func TestWarnings(t *testing.T) {
	y := strings.Replace(base, "https://api.payments.example", "http://api.payments.example", 1)
	y = strings.Replace(y, `allow: ["api.payments.example:443"]`, `allow: ["api.payments.example:80", "*.cdn.example:443"], allow_private: true`, 1)
	y = strings.Replace(y, "    timeouts: {connect: 2s, request: 10s}\n", "", 1)
	_, warnings, err := Parse("t.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range warnings {
		got = append(got, w.Path)
	}
	want := []string{
		"server.admin_token",
		"integrations.payments.upstream",
		"integrations.payments.egress.allow_private",
		"integrations.payments.egress.allow[1]",
		"integrations.payments.timeouts",
	}
	for _, w := range want {
		if !strings.Contains(strings.Join(got, " "), w) {
			t.Errorf("no warning for %s; got %v", w, got)
		}
	}
}

func TestDefaults(t *testing.T) {
	cfg, _, err := Parse("t.yaml", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	in := cfg.Integrations["payments"]
	got := []any{cfg.Server.Listen, cfg.Server.AdminListen, cfg.State.Backend, in.Timeouts.Connect.D, in.Timeouts.Headers.D,
		in.Limits.MaxRequestBytes.N, in.Limits.MaxResponseBytes.N, in.Credential.TTL.D, cfg.State.RedisTimeout.D}
	want := []any{"127.0.0.1:8080", "127.0.0.1:9090", "memory", 2 * time.Second, 30 * time.Second, int64(1 << 20), int64(5 << 20), 5 * time.Minute, 250 * time.Millisecond}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("defaults (-want +got):\n%s", d)
	}
}

// A partial retry block gets the documented defaults for the fields it
// leaves out (attempts: 3), as an absent block does, instead of failing
// "attempts must be 1..10".
func TestPartialRetryBlock(t *testing.T) {
	cfg, _, err := Parse("t.yaml", []byte(base+"    retry: {backoff: 50ms}\n"))
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Integrations["payments"].Retry
	got := []any{r.Attempts, r.Backoff.D, r.MaxBackoff.D, r.Budget, r.MaxRetryAfter.D}
	want := []any{3, 50 * time.Millisecond, 2 * time.Second, 0.2, 10 * time.Second}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("retry defaults (-want +got):\n%s", d)
	}
}

func TestScalars(t *testing.T) {
	tests := []struct {
		in   string
		dur  time.Duration
		size int64
		rate float64
	}{
		{"90d", 90 * 24 * time.Hour, -1, -1},
		{"250ms", 250 * time.Millisecond, -1, -1},
		{"1MiB", -1, 1 << 20, -1},
		{"5MB", -1, 5_000_000, -1},
		{"100/s", -1, -1, 100},
		{"60/m", -1, -1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if tt.dur >= 0 {
				if d, err := ParseDuration(tt.in); err != nil || d != tt.dur {
					t.Errorf("ParseDuration = %v, %v", d, err)
				}
			}
			if tt.size >= 0 {
				if n, err := ParseSize(tt.in); err != nil || n != tt.size {
					t.Errorf("ParseSize = %v, %v", n, err)
				}
			}
			if tt.rate >= 0 {
				if r, err := ParseRate(tt.in); err != nil || r != tt.rate {
					t.Errorf("ParseRate = %v, %v", r, err)
				}
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(base))
	if b, err := os.ReadFile(filepath.Join("..", "..", "examples", "portcullis.yaml")); err == nil {
		f.Add(b)
	}
	f.Add([]byte("version: 1\nintegrations: {a: {routes: [{path: '{'}]}}"))
	f.Add([]byte("- - - ["))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, ps, err := Parse("fuzz.yaml", data)
		if err == nil && cfg == nil {
			t.Fatal("nil config without error")
		}
		for _, p := range ps {
			_ = p.String()
		}
	})
}

func FuzzScalars(f *testing.F) {
	for _, s := range []string{"90d", "1MiB", "100/s", "2s", "-1d", "9999999999999d", "1e9/s", "/s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if d, err := ParseDuration(s); err == nil && d < 0 {
			t.Errorf("negative duration %v from %q", d, s)
		}
		if n, err := ParseSize(s); err == nil && n < 0 {
			t.Errorf("negative size %d from %q", n, s)
		}
		if r, err := ParseRate(s); err == nil && r <= 0 {
			t.Errorf("non-positive rate %v from %q", r, s)
		}
		if _, _, err := ParseSecretRef(s); err != nil && len(s) > 6 && strings.Contains(err.Error(), s) {
			t.Errorf("secret ref error echoes input")
		}
	})
}

func TestInspect(t *testing.T) {
	y := base + "    proxy: {inspect: true}\nserver:\n  inspect_ca: {cert: ca.pem, key: vault:secret/data/portcullis/inspect-ca#key}\n"
	cfg, _, err := Parse("t.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	ca := cfg.Server.InspectCA
	if got := []string{ca.Cert, ca.Key.Ref()}; !cmp.Equal(got, []string{"ca.pem", "vault:secret/data/portcullis/inspect-ca#key"}) {
		t.Errorf("inspect_ca = %v", got)
	}
	px := cfg.ForwardIntegrations()["payments"].Proxy
	if !px.Inspect || px.Mode != "enforce" {
		t.Errorf("proxy = %+v, want inspect in the default mode enforce", px)
	}
}
