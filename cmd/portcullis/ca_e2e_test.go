package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	vault "github.com/hashicorp/vault/api"

	"github.com/portcullis-dev/portcullis/internal/mint"
)

func TestCANew(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key")
	code, out := runCLI(t, "ca", "new", "--out-cert", cert, "--out-key", key, "--name", "Test inspect CA", "--days", "30")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	for _, want := range []string{"cert: " + cert, "key: file:" + key, "NODE_EXTRA_CA_CERTS=" + cert, "keytool -importcert", "REQUESTS_CA_BUNDLE"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	c, _ := os.ReadFile(cert)
	k, _ := os.ReadFile(key)
	if strings.Contains(out, strings.Split(string(k), "\n")[1]) {
		t.Error("the key is printed")
	}
	a, err := mint.New(c, k, mint.Options{})
	if err != nil {
		t.Fatalf("mint.New on what ca new wrote: %v", err)
	}
	if a.Subject() != "CN=Test inspect CA,O=Portcullis" {
		t.Errorf("subject %q", a.Subject())
	}
	for p, want := range map[string]os.FileMode{cert: 0o644, key: 0o600} {
		if st, err := os.Stat(p); err != nil || st.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v (%v)", p, st.Mode().Perm(), want, err)
		}
	}

	code, out = runCLI(t, "ca", "new", "--out-cert", cert, "--out-key", key)
	if code != 1 || !strings.Contains(out, "file exists (pass --force to overwrite)") {
		t.Errorf("second run: exit %d, want 1 and a refusal:\n%s", code, out)
	}
	if k2, _ := os.ReadFile(key); string(k2) != string(k) {
		t.Error("the key was overwritten without --force")
	}
	if code, out = runCLI(t, "ca", "new", "--out-cert", cert, "--out-key", key, "--force"); code != 0 {
		t.Errorf("--force: exit %d:\n%s", code, out)
	}
	if k2, _ := os.ReadFile(key); string(k2) == string(k) {
		t.Error("--force did not replace the key")
	}
	if code, _ := runCLI(t, "ca", "new", "--out-cert", cert); code != 2 {
		t.Errorf("without --out-key: exit %d, want 2", code)
	}
}

// TestCheckInspectCA: check loads server.inspect_ca.cert as a CA, and with
// --resolve-secrets reads the key and matches it to the certificate,
// naming the config line and never printing the key.
func TestCheckInspectCA(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key")
	if code, out := runCLI(t, "ca", "new", "--out-cert", cert, "--out-key", key); code != 0 {
		t.Fatalf("ca new: exit %d:\n%s", code, out)
	}
	otherCert, otherKey := filepath.Join(dir, "other.pem"), filepath.Join(dir, "other.key")
	if code, out := runCLI(t, "ca", "new", "--out-cert", otherCert, "--out-key", otherKey); code != 0 {
		t.Fatalf("ca new: exit %d:\n%s", code, out)
	}
	notCA := filepath.Join(dir, "notca.pem")
	os.WriteFile(notCA, []byte("not a certificate\n"), 0o644)
	write := func(certPath, keyPath string) string {
		p := filepath.Join(t.TempDir(), "portcullis.yaml")
		os.WriteFile(p, []byte(`version: 1
server:
  inspect_ca:
    cert: `+certPath+`
    key: file:`+keyPath+`
callers:
  billing: {tokens: ["sha256:9f2c6a1b0d7e4c3f8a5b2e1d0c9f8e7d6c5b4a39281706f5e4d3c2b1a0f9e8d7"]}
integrations:
  payments:
    upstream: https://api.payments.example
    egress: {allow: ["api.payments.example:443"]}
    credential: {type: bearer, secret: env:PAY_KEY}
    timeouts: {connect: 2s, request: 10s}
    proxy: {inspect: true}
    routes:
      - {method: GET, path: "/v1/charges/{id}", callers: [billing]}
`), 0o600)
		return p
	}
	t.Setenv("PAY_KEY", "sk_test_dummy")
	keyText, _ := os.ReadFile(key)
	keyLine := strings.Split(string(keyText), "\n")[1]

	if code, out := runCLI(t, "check", "--config", write(cert, key), "--resolve-secrets"); code != 0 {
		t.Errorf("good CA: exit %d:\n%s", code, out)
	}
	code, out := runCLI(t, "check", "--config", write(notCA, key))
	if code != 1 || !strings.Contains(out, "portcullis.yaml:4: error: server.inspect_ca.cert: inspect CA: the cert file holds no PEM CERTIFICATE block") {
		t.Errorf("not a CA: exit %d, want 1 naming server.inspect_ca.cert on line 4:\n%s", code, out)
	}
	mismatched := write(cert, otherKey)
	if code, out := runCLI(t, "check", "--config", mismatched); code != 0 {
		t.Errorf("mismatched key without --resolve-secrets: exit %d (the key is not read):\n%s", code, out)
	}
	code, out = runCLI(t, "check", "--config", mismatched, "--resolve-secrets")
	all := out
	if code != 1 || !strings.Contains(out, "server.inspect_ca (line 3)") || !strings.Contains(out, "does not match") {
		t.Errorf("mismatched key: exit %d, want 1 with server.inspect_ca (line 3) ... does not match:\n%s", code, out)
	}
	code, out = runCLI(t, "check", "--config", write(cert, filepath.Join(dir, "missing.key")), "--resolve-secrets")
	all += out
	if code != 1 || !strings.Contains(out, "server.inspect_ca.key (line 5)") {
		t.Errorf("missing key file: exit %d, want 1 naming server.inspect_ca.key (line 5):\n%s", code, out)
	}
	otherText, _ := os.ReadFile(otherKey)
	if strings.Contains(all, "-----BEGIN") || strings.Contains(all, keyLine) || strings.Contains(all, strings.Split(string(otherText), "\n")[1]) {
		t.Error("check prints a key")
	}
}

// TestInspectCAKeyInVault: the CA key kept in Vault, as docs/forward-proxy.md
// advises, is read by check --resolve-secrets and matched to the
// certificate; a key of another CA under the same reference is refused.
func TestInspectCAKeyInVault(t *testing.T) {
	addr, tok := os.Getenv("VAULT_ADDR"), os.Getenv("VAULT_TOKEN")
	if addr == "" || tok == "" {
		if os.Getenv("PORTCULLIS_REQUIRE_SERVERS") == "1" {
			t.Fatal("VAULT_ADDR/VAULT_TOKEN not set but PORTCULLIS_REQUIRE_SERVERS=1")
		}
		t.Skip("VAULT_ADDR/VAULT_TOKEN not set")
	}
	u, err := url.Parse(addr)
	if err != nil {
		t.Fatal(err)
	}
	vc := vault.DefaultConfig()
	vc.Address = addr
	client, err := vault.NewClient(vc)
	if err != nil {
		t.Fatal(err)
	}
	client.SetToken(tok)
	path := fmt.Sprintf("portcullis-test-%08x/inspect-ca", rand.Uint32())
	t.Cleanup(func() { _ = client.KVv2("secret").DeleteMetadata(context.Background(), path) })

	dir := t.TempDir()
	cert, key := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key")
	otherCert, otherKey := filepath.Join(dir, "o.pem"), filepath.Join(dir, "o.key")
	for _, p := range [][2]string{{cert, key}, {otherCert, otherKey}} {
		if code, out := runCLI(t, "ca", "new", "--out-cert", p[0], "--out-key", p[1]); code != 0 {
			t.Fatalf("ca new: %d %s", code, out)
		}
	}
	cfg := filepath.Join(dir, "portcullis.yaml")
	os.WriteFile(cfg, []byte(`version: 1
server:
  inspect_ca:
    cert: `+cert+`
    key: vault:secret/data/`+path+`#key
internal_egress:
  allow: ["`+u.Host+`"]
callers:
  billing: {tokens: ["sha256:9f2c6a1b0d7e4c3f8a5b2e1d0c9f8e7d6c5b4a39281706f5e4d3c2b1a0f9e8d7"]}
integrations:
  payments:
    upstream: https://api.payments.example
    egress: {allow: ["api.payments.example:443"]}
    timeouts: {connect: 2s, request: 10s}
    proxy: {inspect: true}
    routes:
      - {method: GET, path: "/v1/charges/{id}", callers: [billing]}
`), 0o600)
	put := func(keyFile string) string {
		k, _ := os.ReadFile(keyFile)
		if _, err := client.KVv2("secret").Put(context.Background(), path, map[string]any{"key": string(k)}); err != nil {
			t.Fatal(err)
		}
		return strings.Split(string(k), "\n")[1]
	}
	put(key)
	if code, out := runCLI(t, "check", "--config", cfg, "--resolve-secrets"); code != 0 {
		t.Errorf("key in Vault: exit %d:\n%s", code, out)
	}
	line := put(otherKey)
	code, out := runCLI(t, "check", "--config", cfg, "--resolve-secrets")
	if code != 1 || !strings.Contains(out, "does not match") {
		t.Errorf("another CA's key in Vault: exit %d, want 1 and a mismatch:\n%s", code, out)
	}
	if strings.Contains(out, line) || strings.Contains(out, "-----BEGIN") {
		t.Error("check prints the key read from Vault")
	}
}
