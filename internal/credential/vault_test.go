package credential

// The KV v2 suite runs against a real HashiCorp Vault (or OpenBao) dev
// server; see vaultserver_test.go for how it is found and what it writes.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/portcullis-dev/portcullis/internal/conf"
	"github.com/portcullis-dev/portcullis/internal/secret"
)

func TestVaultKV(t *testing.T) {
	k := vaultServer(t)
	ctx := context.Background()

	t.Run("read-with-metadata", func(t *testing.T) {
		ref := k.put(t, "read", map[string]any{"api_key": canary, "other": "x"}, "api_key")
		r, logs := k.resolver(t, nil, nil)
		s, err := r.Resolve(ctx, ref, time.Minute, 0)
		if err != nil {
			t.Fatal(err)
		}
		if s.Value.Reveal() != canary || s.Version != "1" || s.Ref != ref.Ref() {
			t.Errorf("got version %q ref %q; want version 1 and %s", s.Version, s.Ref, ref.Ref())
		}
		if d := time.Since(s.Created); d < -time.Minute || d > time.Minute {
			t.Errorf("created_time %s is not about now", s.Created)
		}
		assertNoCanary(t, canary, logs.String())
	})

	t.Run("rotate-within-ttl-and-on-refresh", func(t *testing.T) {
		clock := newClock()
		ref := k.put(t, "rotate", map[string]any{"api_key": "first-value-123"}, "api_key")
		r, logs := k.resolver(t, clock, nil)
		if s, err := r.Resolve(ctx, ref, time.Minute, 0); err != nil || s.Version != "1" {
			t.Fatalf("got %q, %v", s.Version, err)
		}
		k.put(t, "rotate", map[string]any{"api_key": "second-value-456"}, "api_key")
		clock.Advance(61 * time.Second)
		if s, err := r.Resolve(ctx, ref, time.Minute, 0); err != nil || s.Version != "2" || s.Value.Reveal() != "second-value-456" {
			t.Fatalf("after the TTL got version %q, %v; want 2", s.Version, err)
		}
		k.put(t, "rotate", map[string]any{"api_key": "third-value-789"}, "api_key")
		if s, err := r.Refresh(ctx, ref); err != nil || s.Version != "3" {
			t.Fatalf("Refresh got version %q, %v; want 3", s.Version, err)
		}
		if !strings.Contains(logs.String(), `"old_version":"2","credential_version":"3"`) {
			t.Errorf("rotation not logged: %s", logs)
		}
	})

	t.Run("missing-key", func(t *testing.T) {
		ref := k.put(t, "keys", map[string]any{"api_key": canary}, "no_such_key")
		r, _ := k.resolver(t, nil, nil)
		_, err := r.Resolve(ctx, ref, time.Minute, 0)
		if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `"no_such_key"`) || !strings.Contains(err.Error(), ref.Ref()) {
			t.Fatalf("err = %v, want ErrNotFound naming the key and the reference", err)
		}
		assertNoCanary(t, canary, err.Error())
	})

	t.Run("missing-path", func(t *testing.T) {
		r, _ := k.resolver(t, nil, nil)
		ref := conf.MustRef("vault:" + k.mount + "/data/" + k.prefix + "/nothing-here#k")
		if _, err := r.Resolve(ctx, ref, time.Minute, 0); !errors.Is(err, ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
	})

	t.Run("revoke-by-deleting-the-version", func(t *testing.T) {
		clock := newClock()
		ref := k.put(t, "revoke", map[string]any{"api_key": canary}, "api_key")
		r, logs := k.resolver(t, clock, nil)
		if _, err := r.Resolve(ctx, ref, time.Minute, time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := k.admin.KVv2(k.mount).Delete(ctx, k.prefix+"/revoke"); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Refresh(ctx, ref); !errors.Is(err, ErrRevoked) {
			t.Fatalf("Refresh err = %v, want ErrRevoked", err)
		}
		clock.Advance(2 * time.Minute)
		if _, err := r.Resolve(ctx, ref, time.Minute, time.Hour); !errors.Is(err, ErrRevoked) {
			t.Fatalf("Resolve err = %v, want ErrRevoked (no stale value after a delete)", err)
		}
		assertNoCanary(t, canary, logs.String())
	})

	t.Run("revoke-by-destroying-the-version", func(t *testing.T) {
		ref := k.put(t, "destroy", map[string]any{"api_key": "v1-value-abcdef"}, "api_key")
		k.put(t, "destroy", map[string]any{"api_key": "v2-value-abcdef"}, "api_key")
		r, _ := k.resolver(t, nil, nil)
		if err := k.admin.KVv2(k.mount).Destroy(ctx, k.prefix+"/destroy", []int{2}); err != nil {
			t.Fatal(err)
		}
		_, err := r.Resolve(ctx, ref, time.Minute, 0)
		if !errors.Is(err, ErrRevoked) || !strings.Contains(err.Error(), "destroyed") {
			t.Fatalf("err = %v, want ErrRevoked saying destroyed", err)
		}
	})

	t.Run("wrong-token", func(t *testing.T) {
		ref := k.put(t, "denied", map[string]any{"api_key": canary}, "api_key")
		r, logs := k.resolver(t, nil, func(v *VaultOptions) { v.Token = secret.New("not-a-valid-token-" + canary) })
		_, err := r.Resolve(ctx, ref, time.Minute, 0)
		if !errors.Is(err, ErrPermissionDenied) || !strings.Contains(err.Error(), "403") || !strings.Contains(err.Error(), ref.Ref()) {
			t.Fatalf("err = %v, want ErrPermissionDenied naming 403 and the reference", err)
		}
		assertNoCanary(t, canary, err.Error(), logs.String())
	})

	// Vault community edition ignores X-Vault-Namespace (namespaces are an
	// Enterprise and OpenBao feature), so this checks that the header goes
	// out and that a server without namespaces still answers.
	t.Run("namespace-header-sent", func(t *testing.T) {
		ref := k.put(t, "ns", map[string]any{"api_key": "ns-value-abcdef"}, "api_key")
		proxy := newVaultProxy(t, k)
		r, _ := k.resolver(t, nil, func(v *VaultOptions) { v.Addr, v.Namespace = proxy.URL, "team-a" })
		if _, err := r.Resolve(ctx, ref, time.Minute, 0); err != nil {
			t.Fatalf("with namespace: %v", err)
		}
		if !proxy.sawNamespace("team-a") {
			t.Error("X-Vault-Namespace: team-a was not sent")
		}
	})

	t.Run("unreachable-at-start-up", func(t *testing.T) {
		r, _ := k.resolver(t, nil, func(v *VaultOptions) { v.Addr = "http://" + closedAddr(t) })
		ref := conf.MustRef("vault:" + k.mount + "/data/" + k.prefix + "/x#api_key")
		_, err := r.Resolve(ctx, ref, time.Minute, 0)
		if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "unreachable") {
			t.Fatalf("err = %v, want an unreachable ErrUnavailable", err)
		}
		if !strings.Contains(err.Error(), ref.Ref()) {
			t.Errorf("err %q does not name the reference", err)
		}
	})
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// Cases where the way to Vault breaks or Vault answers with something
// that is not a KV v2 secret. The resolvers go through a vaultProxy, so
// breaking the way affects only them.
func TestVaultKVFaults(t *testing.T) {
	ctx := context.Background()
	k := vaultServer(t)

	t.Run("down-serves-last-good-until-max-stale", func(t *testing.T) {
		clock := newClock()
		ref := k.put(t, "down", map[string]any{"api_key": canary}, "api_key")
		proxy := newVaultProxy(t, k)
		r, logs := k.resolver(t, clock, func(v *VaultOptions) { v.Addr = proxy.URL })
		if _, err := r.Resolve(ctx, ref, time.Minute, 5*time.Minute); err != nil {
			t.Fatal(err)
		}
		proxy.Close()
		clock.Advance(2 * time.Minute)
		if s, err := r.Resolve(ctx, ref, time.Minute, 5*time.Minute); err != nil || s.Version != "1" || s.Value.Reveal() != canary {
			t.Fatalf("while Vault is down got version %q, %v; want the last good value", s.Version, err)
		}
		clock.Advance(5 * time.Minute)
		_, err := r.Resolve(ctx, ref, time.Minute, 5*time.Minute)
		if !errors.Is(err, ErrStale) || !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "unreachable") {
			t.Fatalf("err = %v, want ErrStale with the unreachable cause", err)
		}
		assertNoCanary(t, canary, err.Error(), logs.String())
	})

	t.Run("malformed-kv-v1-mount", func(t *testing.T) {
		mount := randomName("portcullis-kv1")
		if err := k.admin.Sys().Mount(mount, &vault.MountInput{Type: "kv", Options: map[string]string{"version": "1"}}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = k.admin.Sys().Unmount(mount) })
		// On a KV version 1 mount, MOUNT/data/PATH is a plain key.
		k.write(t, mount+"/data/payments", map[string]any{"api_key": canary})
		r, logs := k.resolver(t, nil, nil)
		_, err := r.Resolve(ctx, conf.MustRef("vault:"+mount+"/data/payments#api_key"), time.Minute, 0)
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "KV version 1") {
			t.Fatalf("err = %v, want ErrMalformed naming KV version 1", err)
		}
		assertNoCanary(t, canary, err.Error(), logs.String())
	})

	t.Run("malformed-value-not-a-string", func(t *testing.T) {
		ref := k.put(t, "number", map[string]any{"api_key": 4242424242, "other": canary}, "api_key")
		r, logs := k.resolver(t, nil, nil)
		_, err := r.Resolve(ctx, ref, time.Minute, 0)
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "not a string") || strings.Contains(err.Error(), "4242424242") {
			t.Fatalf("err = %v, want ErrMalformed saying not a string, without the value", err)
		}
		assertNoCanary(t, canary, err.Error(), logs.String())
	})

	balancer := []struct {
		name  string
		fault proxyFault
		want  error
		text  string
	}{
		{name: "not-json", fault: proxyHTMLPage, want: ErrMalformed, text: "not JSON"},
		{name: "bad-gateway", fault: proxyBadGate, want: ErrUnavailable, text: "502"},
	}
	for _, tt := range balancer {
		t.Run("balancer-"+tt.name, func(t *testing.T) {
			ref := k.put(t, "balancer-"+tt.name, map[string]any{"api_key": canary}, "api_key")
			proxy := newVaultProxy(t, k)
			r, logs := k.resolver(t, nil, func(v *VaultOptions) { v.Addr = proxy.URL })
			proxy.setFault(tt.fault)
			_, err := r.Resolve(ctx, ref, time.Minute, 0)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.text) {
				t.Fatalf("err = %v, want %v mentioning %q", err, tt.want, tt.text)
			}
			assertNoCanary(t, canary, err.Error(), logs.String())
		})
	}
}

func TestVaultAppRole(t *testing.T) {
	ctx := context.Background()
	k := vaultServer(t)

	t.Run("login-and-relogin", func(t *testing.T) {
		clock := newClock()
		ref := k.put(t, "approle", map[string]any{"api_key": "approle-value-1"}, "api_key")
		mount, roleID, secretID := k.appRole(t)
		t.Setenv("PCS_TEST_ROLE_ID", roleID)
		t.Setenv("PCS_TEST_SECRET_ID", secretID)
		proxy := newVaultProxy(t, k)
		r, logs := k.resolver(t, clock, func(v *VaultOptions) {
			*v = VaultOptions{Addr: proxy.URL, RoleID: "env:PCS_TEST_ROLE_ID", SecretID: "env:PCS_TEST_SECRET_ID", AppRoleMount: mount}
		})
		if s, err := r.Resolve(ctx, ref, time.Minute, 0); err != nil || s.Value.Reveal() != "approle-value-1" {
			t.Fatalf("got %v", err)
		}
		if got := proxy.logins.Load(); got != 1 {
			t.Fatalf("logins = %d, want 1", got)
		}
		// Every token of the mount revoked (as when tokens expire or an
		// operator revokes them): one 403, one new login, the read succeeds.
		k.write(t, "sys/leases/revoke-prefix/auth/"+mount+"/", nil)
		if _, err := r.Refresh(ctx, ref); err != nil {
			t.Fatalf("after token revocation: %v", err)
		}
		if got := proxy.logins.Load(); got != 2 {
			t.Errorf("logins = %d, want 2", got)
		}
		// 80% into the token's one-hour lease the provider logs in again.
		clock.Advance(50 * time.Minute)
		if _, err := r.Refresh(ctx, ref); err != nil {
			t.Fatal(err)
		}
		if got := proxy.logins.Load(); got != 3 {
			t.Errorf("logins = %d after the lease ran 80%%, want 3", got)
		}
		assertNoCanary(t, secretID, logs.String())
	})

	t.Run("policy-limits-what-the-role-reads", func(t *testing.T) {
		mount, roleID, secretID := k.appRole(t)
		t.Setenv("PCS_TEST_ROLE_ID", roleID)
		t.Setenv("PCS_TEST_SECRET_ID", secretID)
		r, _ := k.resolver(t, nil, func(v *VaultOptions) {
			*v = VaultOptions{Addr: k.addr, RoleID: "env:PCS_TEST_ROLE_ID", SecretID: "env:PCS_TEST_SECRET_ID", AppRoleMount: mount}
		})
		other := randomName("portcullis-test")
		full := other + "/elsewhere"
		if _, err := k.admin.KVv2(k.mount).Put(ctx, full, map[string]any{"api_key": canary}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = k.admin.KVv2(k.mount).DeleteMetadata(context.Background(), full) })
		_, err := r.Resolve(ctx, conf.MustRef("vault:"+k.mount+"/data/"+full+"#api_key"), time.Minute, 0)
		if !errors.Is(err, ErrPermissionDenied) || !strings.Contains(err.Error(), "403") {
			t.Fatalf("err = %v, want ErrPermissionDenied (403) outside the policy", err)
		}
		assertNoCanary(t, canary, err.Error())
	})

	t.Run("wrong-secret-id", func(t *testing.T) {
		ref := k.put(t, "approle-bad", map[string]any{"api_key": "x-value-abcdef"}, "api_key")
		mount, roleID, _ := k.appRole(t)
		t.Setenv("PCS_TEST_ROLE_ID", roleID)
		t.Setenv("PCS_TEST_SECRET_ID", canary)
		r, logs := k.resolver(t, nil, func(v *VaultOptions) {
			*v = VaultOptions{Addr: k.addr, RoleID: "env:PCS_TEST_ROLE_ID", SecretID: "env:PCS_TEST_SECRET_ID", AppRoleMount: mount}
		})
		_, err := r.Resolve(ctx, ref, time.Minute, 0)
		if !errors.Is(err, ErrPermissionDenied) || !strings.Contains(err.Error(), "AppRole login refused") {
			t.Fatalf("err = %v, want an AppRole refusal", err)
		}
		assertNoCanary(t, canary, err.Error(), logs.String())
	})
}

func TestVaultTokenFile(t *testing.T) {
	ctx := context.Background()
	k := vaultServer(t)
	ref := k.put(t, "tokenfile", map[string]any{"api_key": "tf-value-abcdef"}, "api_key")
	policy := k.readPolicy(t, "tokenfile")
	one := k.childToken(t, policy)
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte(one+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r, logs := k.resolver(t, nil, func(v *VaultOptions) { *v = VaultOptions{Addr: k.addr, TokenFile: path} })
	if _, err := r.Resolve(ctx, ref, time.Minute, 0); err != nil {
		t.Fatal(err)
	}
	// Vault Agent renews by writing a new token into the file; the old one
	// is revoked.
	if err := k.admin.Auth().Token().RevokeOrphan(one); err != nil {
		t.Fatal(err)
	}
	two := k.childToken(t, policy)
	if err := os.WriteFile(path, []byte(two+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Refresh(ctx, ref); err != nil {
		t.Fatalf("Vault Agent rewrote the token file; read failed: %v", err)
	}
	assertNoCanary(t, one, logs.String())
	assertNoCanary(t, two, logs.String())
}

func TestVaultOptionsFromEnv(t *testing.T) {
	for _, n := range []string{"VAULT_ADDR", "VAULT_TOKEN", "VAULT_TOKEN_FILE", "VAULT_NAMESPACE", "VAULT_ROLE_ID", "BAO_ADDR", "BAO_TOKEN", "BAO_TOKEN_FILE", "BAO_NAMESPACE", "BAO_ROLE_ID"} {
		t.Setenv(n, "")
	}
	t.Setenv("BAO_ADDR", "http://127.0.0.1:8200")
	t.Setenv("BAO_TOKEN", "bao-token-abcdef")
	t.Setenv("BAO_ROLE_ID", "r")
	o := VaultOptionsFromEnv()
	if o.Addr != "http://127.0.0.1:8200" || o.Token.Reveal() != "bao-token-abcdef" || o.RoleID != "env:BAO_ROLE_ID" || o.SecretID != "env:BAO_SECRET_ID" {
		t.Errorf("BAO_ fallbacks not read: %+v", o)
	}
	t.Setenv("VAULT_ADDR", "https://vault.example:8200")
	if o := VaultOptionsFromEnv(); o.Addr != "https://vault.example:8200" {
		t.Errorf("VAULT_ADDR must win over BAO_ADDR, got %q", o.Addr)
	}
	if s := fmt.Sprintf("%v %+v", o, o); strings.Contains(s, "bao-token-abcdef") {
		t.Errorf("VaultOptions prints its token: %s", s)
	}
}
