package main

// Issue 13 item 8, end to end through the real binary: every connection the
// gateway opens on its own (OAuth2 token endpoint, webhook forward_to,
// alert sinks, OTLP, Vault) goes through an egress policy, ignores the
// environment's proxy and follows no redirect.

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/internal/identity"
	"github.com/portcullis-dev/portcullis/internal/secret"
	"github.com/portcullis-dev/portcullis/internal/webhook"
)

// hitCounter is a loopback server that counts what reaches it and answers
// with h (nil: 200 and an OAuth2 token, so a proxy that gets a token
// request makes the old behaviour succeed).
func hitCounter(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if h != nil {
			h(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"access_token":"at_from_wrong_place","token_type":"Bearer","expires_in":3600}`)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func runWithEnv(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, string(out)
}

// TestEgressCheckNamesMissingEntries: a token_url off its integration's
// egress.allow and internal targets off internal_egress.allow are config
// errors naming the key, the line and the entry to add; serve refuses the
// file too.
func TestEgressCheckNamesMissingEntries(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "p.yaml")
	os.WriteFile(cfg, []byte(`version: 1
server: {admin_token: env:E2E_ADMIN, webhook_listen: 127.0.0.1:0}
callers: {billing: {tokens: ["sha256:9f2c6a1b0d7e4c3f8a5b2e1d0c9f8e7d6c5b4a39281706f5e4d3c2b1a0f9e8d7"]}}
integrations:
  crm:
    upstream: https://api.crm.example
    egress: {allow: ["api.crm.example:443"]}
    credential:
      type: oauth2_client_credentials
      token_url: https://login.crm.example/oauth2/token
      client_id: c1
      client_secret: env:E2E_CRM_SECRET
      scopes: [api]
      max_age: 90d
    timeouts: {connect: 1s, request: 5s}
    routes: [{method: GET, path: /x, callers: [billing]}]
webhooks:
  events:
    path: /webhooks/events
    scheme: standard
    secrets: [env:E2E_WHSEC]
    forward_to: http://127.0.0.1:7000/hooks
    forward_secret: env:E2E_INTERNAL_WHSEC
alerts:
  sinks: [{type: webhook, url: "http://10.0.0.8:9000/alerts"}]
internal_egress:
  allow: ["otel.corp.example:4318"]
`), 0o600)
	code, out := runCLI(t, "check", "--config", cfg)
	if code != 1 {
		t.Errorf("check: exit %d, want 1", code)
	}
	for _, want := range []string{
		`p.yaml:10: error: integrations.crm.credential.token_url: host login.crm.example:443 is not on integrations.crm.egress.allow (line 7)`,
		`add "login.crm.example:443" to integrations.crm.egress.allow`, "[PC028]",
		`p.yaml:22: error: webhooks.events.forward_to: host 127.0.0.1:7000 is not on internal_egress.allow (line 27)`,
		`add "127.0.0.1:7000" to internal_egress.allow [PC029]`,
		`p.yaml:25: error: alerts.sinks[0].url: host 10.0.0.8:9000 is not on internal_egress.allow (line 27)`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	code, out = runWithEnv(t, nil, "serve", "--config", cfg)
	if code == 0 || !strings.Contains(out, "webhooks.events.forward_to") {
		t.Errorf("serve: exit %d, want a refusal naming the key:\n%s", code, out)
	}
}

const oauthE2EConfig = `version: 1
server: {listen: "{{CALLER}}", admin_listen: "{{ADMIN}}", shutdown_grace: 2s}
state: {data_dir: "{{DATA}}"}
callers:
  billing: {tokens: ["%[1]s"]}
integrations:
  crm:
    upstream: %[2]s
    egress: {allow: [%[3]s], allow_private: true}
    credential:
      type: oauth2_client_credentials
      token_url: %[4]s
      client_id: c1
      client_secret: env:E2E_CRM_SECRET
      scopes: [api]
    timeouts: {connect: 1s, request: 5s}
    routes: [{method: GET, path: /v1/accounts, callers: [billing]}]
`

// TestOAuthTokenEndpointRedirectEndToEnd: a token endpoint that redirects
// to a loopback canary (standing in for a metadata or admin endpoint) gets
// the call refused with credential_unavailable; the canary sees nothing.
// A token URL whose name resolves to loopback without allow_private is
// refused before any request.
func TestOAuthTokenEndpointRedirectEndToEnd(t *testing.T) {
	const clientSecret = "cs_CANARY_oauth_e2e_7731"
	vendor, vendorHits := hitCounter(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"ok":true}`) })
	canary, canaryHits := hitCounter(t, nil)
	idp, idpHits := hitCounter(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, canary.URL+"/latest/meta-data/iam/security-credentials/", http.StatusFound)
	})
	tok, hash, _ := identity.NewToken()
	host := func(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }

	t.Run("redirect-to-internal-address", func(t *testing.T) {
		// The canary is not on the allowlist; everything else is.
		allow := fmt.Sprintf("%q, %q", host(vendor), host(idp))
		p := startServe(t, fmt.Sprintf(oauthE2EConfig, hash, vendor.URL, allow, idp.URL+"/oauth2/token"), "E2E_CRM_SECRET="+clientSecret)
		code, body, hdr := p.get(t, "GET", "/crm/v1/accounts", tok)
		if code != 503 || hdr.Get("X-Portcullis-Error") != "credential_unavailable" {
			t.Errorf("call: %d %s %s, want 503 credential_unavailable", code, hdr.Get("X-Portcullis-Error"), body)
		}
		if idpHits.Load() == 0 {
			t.Error("the token endpoint was never asked: the test proves nothing")
		}
		if n := canaryHits.Load(); n != 0 {
			t.Errorf("the redirect target received %d requests, want 0", n)
		}
		if vendorHits.Load() != 0 {
			t.Errorf("the vendor was called %d times without a token", vendorHits.Load())
		}
		if strings.Contains(p.out.String(), clientSecret) || strings.Contains(body, clientSecret) {
			t.Error("the client secret leaked into the logs or the answer")
		}
	})

	t.Run("name-resolving-to-loopback", func(t *testing.T) {
		idp2, idp2Hits := hitCounter(t, nil)
		_, iport, _ := net.SplitHostPort(host(idp2))
		_, vport, _ := net.SplitHostPort(host(vendor))
		// Both names are on egress.allow, but they resolve to loopback and
		// the integration has neither allow_private nor allow_cidrs.
		cfg := fmt.Sprintf(oauthE2EConfig, hash, "http://localhost:"+vport, fmt.Sprintf("%q, %q", "localhost:"+vport, "localhost:"+iport),
			"http://localhost:"+iport+"/oauth2/token")
		cfg = strings.Replace(cfg, "allow_private: true", "allow_private: false", 1)
		p := startServe(t, cfg, "E2E_CRM_SECRET="+clientSecret)
		code, _, hdr := p.get(t, "GET", "/crm/v1/accounts", tok)
		if code != 503 || hdr.Get("X-Portcullis-Error") != "credential_unavailable" {
			t.Errorf("call: %d %s, want 503 credential_unavailable", code, hdr.Get("X-Portcullis-Error"))
		}
		if n := idp2Hits.Load(); n != 0 {
			t.Errorf("the token endpoint behind a loopback name received %d requests, want 0", n)
		}
		waitFor(t, func() bool { return strings.Contains(p.out.String(), "resolved to 127.0.0.1 (loopback)") },
			"a log line saying the token request was refused as loopback")
	})
}

// TestGatewayConnectionsIgnoreProxyEnvironment: with HTTP(S)_PROXY set to
// a server that would answer everything, the token request, webhook
// forwarding, alert webhook, OTLP export and Vault reads never reach it.
func TestGatewayConnectionsIgnoreProxyEnvironment(t *testing.T) {
	proxy, proxied := hitCounter(t, nil)
	proxyEnv := []string{"HTTP_PROXY=" + proxy.URL, "HTTPS_PROXY=" + proxy.URL, "http_proxy=" + proxy.URL,
		"https_proxy=" + proxy.URL, "ALL_PROXY=" + proxy.URL, "NO_PROXY=", "no_proxy=",
		"VAULT_HTTP_PROXY=" + proxy.URL, "VAULT_PROXY_ADDR=" + proxy.URL}
	const vendorSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	const internalSecret = "whsec_aW50ZXJuYWwtc2VjcmV0LWZvci10ZXN0cw=="
	whAddr := freeAddr(t)
	tok, hash, _ := identity.NewToken()
	// Names under .invalid never resolve (RFC 6761): only a proxy could
	// reach them, so any request the proxy sees is a bypass.
	cfgText := fmt.Sprintf(`version: 1
server: {listen: "{{CALLER}}", admin_listen: "{{ADMIN}}", webhook_listen: %q, shutdown_grace: 2s}
state: {data_dir: "{{DATA}}"}
callers:
  billing: {tokens: [%q]}
integrations:
  crm:
    upstream: http://api.portcullis.invalid
    egress: {allow: ["api.portcullis.invalid:80", "idp.portcullis.invalid:80"]}
    credential: {type: oauth2_client_credentials, token_url: "http://idp.portcullis.invalid/oauth2/token", client_id: c1, client_secret: env:E2E_CRM_SECRET, scopes: [api]}
    timeouts: {connect: 1s, request: 5s}
    routes: [{method: GET, path: /v1/accounts, callers: [billing]}]
webhooks:
  events:
    path: /webhooks/events
    scheme: standard
    secrets: [env:E2E_WHSEC]
    forward_to: http://hooks.portcullis.invalid:7000/hooks
    forward_secret: env:E2E_INTERNAL_WHSEC
alerts:
  sinks: [{type: webhook, url: "http://alerts.portcullis.invalid/alerts"}]
tracing: {otlp_endpoint: "http://otel.portcullis.invalid:4318"}
internal_egress:
  allow: ["hooks.portcullis.invalid:7000", "alerts.portcullis.invalid:80", "otel.portcullis.invalid:4318", "vault.portcullis.invalid:8200"]
`, whAddr, hash)
	env := append([]string{"E2E_CRM_SECRET=cs_e2e", "E2E_WHSEC=" + vendorSecret, "E2E_INTERNAL_WHSEC=" + internalSecret}, proxyEnv...)
	p := startServe(t, cfgText, env...)

	// 1. The token request.
	if code, _, hdr := p.get(t, "GET", "/crm/v1/accounts", tok); code != 503 || hdr.Get("X-Portcullis-Error") != "credential_unavailable" {
		t.Errorf("call: %d %s, want 503 credential_unavailable (the token host does not resolve)", code, hdr.Get("X-Portcullis-Error"))
	}
	// 2. A webhook to forward, and a burst of bad signatures: an alert.
	v, err := webhook.NewVerifier(&config.Webhook{Scheme: "standard"})
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"type":"ping"}`)
	hdr, err := v.Sign(body, []secret.Value{secret.New(vendorSecret)}, webhook.SignParams{ID: "msg_proxy_1", Timestamp: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	post := func(h http.Header, id string) int {
		req, _ := http.NewRequest("POST", "http://"+whAddr+"/webhooks/events", bytes.NewReader(body))
		for k, vs := range h {
			req.Header[k] = vs
		}
		if id != "" {
			req.Header.Set("webhook-id", id)
			req.Header.Set("webhook-signature", "v1,AAAA")
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(hdr, ""); code != 200 {
		t.Fatalf("signed webhook: %d", code)
	}
	for i := range 25 {
		post(hdr, fmt.Sprintf("msg_bad_%d", i))
	}
	waitFor(t, func() bool {
		out := p.out.String()
		return strings.Contains(out, "alert webhook delivery failed") && strings.Contains(out, "webhook forward failed")
	}, "a failed alert delivery and a failed forward in the log")
	// 3. OTLP: the batch is flushed on shutdown.
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	_ = p.cmd.Wait()
	if !strings.Contains(p.out.String(), "otel.portcullis.invalid:4318/v1/traces") {
		t.Errorf("no OTLP export was attempted: the test proves nothing for OTLP:\n%s", p.out)
	}

	// 4. Vault, through check --resolve-secrets (the same client as serve).
	vcfg := filepath.Join(t.TempDir(), "v.yaml")
	os.WriteFile(vcfg, []byte(`version: 1
server: {admin_token: "vault:secret/data/portcullis#admin"}
internal_egress: {allow: ["vault.portcullis.invalid:8200"]}
`), 0o600)
	venv := append([]string{"VAULT_ADDR=http://vault.portcullis.invalid:8200", "VAULT_TOKEN=hvs.e2e", "VAULT_AGENT_ADDR=" + proxy.URL}, proxyEnv...)
	if code, out := runWithEnv(t, venv, "check", "--config", vcfg, "--resolve-secrets"); code != 1 || !strings.Contains(out, "server.admin_token (line 2)") {
		t.Errorf("check --resolve-secrets with an unresolvable Vault: exit %d, want 1 naming server.admin_token:\n%s", code, out)
	}

	if n := proxied.Load(); n != 0 {
		t.Errorf("the environment's proxy received %d requests from the gateway, want 0", n)
	}

}

// TestVaultAddrNotOnInternalEgress: a vault: reference with VAULT_ADDR's
// host missing from internal_egress.allow stops serve before it reads any
// secret, naming the entry to add.
func TestVaultAddrNotOnInternalEgress(t *testing.T) {
	vault, hits := hitCounter(t, nil)
	cfg := filepath.Join(t.TempDir(), "v.yaml")
	os.WriteFile(cfg, []byte(`version: 1
server: {admin_token: "vault:secret/data/portcullis#admin", listen: 127.0.0.1:0, admin_listen: 127.0.0.1:0}
internal_egress:
  allow: ["vault.corp.example:8200"]
`), 0o600)
	hp := strings.TrimPrefix(vault.URL, "http://")
	code, out := runWithEnv(t, []string{"VAULT_ADDR=" + vault.URL, "VAULT_TOKEN=hvs.e2e"}, "serve", "--config", cfg)
	want := fmt.Sprintf("%s, is not on internal_egress.allow (line 4): add %q to internal_egress.allow", hp, hp)
	if code == 0 || !strings.Contains(out, want) {
		t.Errorf("serve: exit %d, want a refusal containing %q:\n%s", code, want, out)
	}
	if hits.Load() != 0 {
		t.Errorf("Vault received %d requests, want 0", hits.Load())
	}
}
