package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckResolveSecrets: `check --resolve-secrets` names each unreadable
// reference with its config path and line, and never prints a value.
func TestCheckResolveSecrets(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "p.yaml")
	os.WriteFile(cfg, []byte(`version: 1
server: {admin_token: env:E2E_RS_ADMIN}
callers: {billing: {tokens: ["sha256:9f2c6a1b0d7e4c3f8a5b2e1d0c9f8e7d6c5b4a39281706f5e4d3c2b1a0f9e8d7"]}}
integrations:
  pay:
    upstream: https://api.pay.example
    egress: {allow: ["api.pay.example:443"]}
    credential: {type: bearer, secret: "file:`+filepath.Join(dir, "missing_key")+`", max_age: 90d}
    timeouts: {connect: 1s, request: 5s}
    routes: [{method: GET, path: /x, callers: [billing]}]
`), 0o600)
	const canary = "adm_CANARY_resolve_123456"
	run := func(args ...string) (int, string) {
		cmd := exec.Command(binPath, args...)
		cmd.Env = append(os.Environ(), "E2E_RS_ADMIN="+canary)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		}
		return 0, string(out)
	}
	if code, out := run("check", "--config", cfg); code != 0 {
		t.Fatalf("without --resolve-secrets: exit %d\n%s", code, out)
	}
	code, out := run("check", "--config", cfg, "--resolve-secrets")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if !strings.Contains(out, "integrations.pay.credential.secret (line 8): file:") {
		t.Errorf("output does not name the unreadable reference:\n%s", out)
	}
	if strings.Contains(out, "server.admin_token") {
		t.Errorf("a readable reference was reported:\n%s", out)
	}
	if strings.Contains(out, canary) {
		t.Errorf("check printed a secret value:\n%s", out)
	}
}
