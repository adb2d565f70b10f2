package credential

// The KV v2 suite below runs against the kvtest server in CI, and also
// against a real HashiCorp Vault or OpenBao whenever VAULT_ADDR and
// VAULT_TOKEN (or BAO_ADDR and BAO_TOKEN) are set, e.g. after
// `bao server -dev` (see README-section.md). On a real server it writes
// under MOUNT/data/portcullis-test-<random>/ (MOUNT from
// PORTCULLIS_VAULT_MOUNT, default "secret") and deletes what it wrote.
//
// What the kvtest run does not cover is listed in kvtest's package doc:
// policies, leases, token TTL renewal, KV v1, namespaces beyond the header,
// seal/HA behaviour and exact error wording. Cases that need to break the
// server on purpose (sealed, malformed answers, AppRole, revoking every
// token) run against kvtest only.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/internal/credential/kvtest"
	"github.com/portcullis-dev/portcullis/internal/secret"
)

type kvTarget struct {
	name   string
	addr   string
	token  string
	mount  string
	prefix string
	admin  *vault.Client
	srv    *kvtest.Server // nil for a real server
}

func kvTargets(t *testing.T) []kvTarget {
	t.Helper()
	srv := kvtest.New()
	t.Cleanup(srv.Close)
	targets := []kvTarget{{name: "kvtest", addr: srv.URL, token: srv.RootToken, mount: "secret", prefix: "app", srv: srv}}
	addr, tok := os.Getenv("VAULT_ADDR"), os.Getenv("VAULT_TOKEN")
	if addr == "" || tok == "" {
		addr, tok = os.Getenv("BAO_ADDR"), os.Getenv("BAO_TOKEN")
	}
	if addr != "" && tok != "" {
		mount := os.Getenv("PORTCULLIS_VAULT_MOUNT")
		if mount == "" {
			mount = "secret"
		}
		targets = append(targets, kvTarget{name: "real-server", addr: addr, token: tok, mount: mount,
			prefix: fmt.Sprintf("portcullis-test-%08x", rand.Uint32())})
	} else {
		t.Log("VAULT_ADDR/VAULT_TOKEN not set: KV suite runs against the kvtest server only")
	}
	for i := range targets {
		cfg := vault.DefaultConfig()
		cfg.Address = targets[i].addr
		c, err := vault.NewClient(cfg)
		if err != nil {
			t.Fatal(err)
		}
		c.SetToken(targets[i].token)
		targets[i].admin = c
	}
	return targets
}

// put writes data at path (relative to the target's prefix) and returns the
// vault: reference text for key.
func (k kvTarget) put(t *testing.T, path string, data map[string]any, key string) config.SecretRef {
	t.Helper()
	full := k.prefix + "/" + path
	if _, err := k.admin.KVv2(k.mount).Put(context.Background(), full, data); err != nil {
		t.Fatalf("writing test secret: %v", err)
	}
	t.Cleanup(func() { _ = k.admin.KVv2(k.mount).DeleteMetadata(context.Background(), full) })
	return config.MustRef("vault:" + k.mount + "/data/" + full + "#" + key)
}

func (k kvTarget) resolver(t *testing.T, clock *fakeClock, mod func(*VaultOptions)) (*Resolver, *syncBuffer) {
	t.Helper()
	o, logs := testOptions(clock)
	o.Vault = VaultOptions{Addr: k.addr, Token: secret.New(k.token)}
	if mod != nil {
		mod(&o.Vault)
	}
	r := NewResolver(o)
	t.Cleanup(r.Close)
	return r, logs
}

func TestVaultKV(t *testing.T) {
	for _, k := range kvTargets(t) {
		t.Run(k.name, func(t *testing.T) { runKVSuite(t, k) })
	}
}

func runKVSuite(t *testing.T, k kvTarget) {
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
		ref := config.MustRef("vault:" + k.mount + "/data/" + k.prefix + "/nothing-here#k")
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

	t.Run("unreachable-at-start-up", func(t *testing.T) {
		r, _ := k.resolver(t, nil, func(v *VaultOptions) { v.Addr = "http://" + closedAddr(t) })
		ref := config.MustRef("vault:" + k.mount + "/data/" + k.prefix + "/x#api_key")
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

// Cases that break the server on purpose: kvtest only.
func TestVaultKVFaults(t *testing.T) {
	ctx := context.Background()
	k := kvTargets(t)[0]

	t.Run("down-serves-stale-then-fails", func(t *testing.T) {
		clock := newClock()
		ref := k.put(t, "down", map[string]any{"api_key": canary}, "api_key")
		r, logs := k.resolver(t, clock, nil)
		if _, err := r.Resolve(ctx, ref, time.Minute, 5*time.Minute); err != nil {
			t.Fatal(err)
		}
		k.srv.SetDown(true)
		defer k.srv.SetDown(false)
		clock.Advance(2 * time.Minute)
		if s, err := r.Resolve(ctx, ref, time.Minute, 5*time.Minute); err != nil || s.Version != "1" {
			t.Fatalf("while sealed got %q, %v; want the stale value", s.Version, err)
		}
		clock.Advance(5 * time.Minute)
		_, err := r.Resolve(ctx, ref, time.Minute, 5*time.Minute)
		if !errors.Is(err, ErrStale) || !strings.Contains(err.Error(), "503") {
			t.Fatalf("err = %v, want ErrStale with the 503 cause", err)
		}
		assertNoCanary(t, canary, err.Error(), logs.String())
	})

	malformed := []struct {
		name  string
		fault kvtest.Fault
		want  error
		text  string
	}{
		{name: "not-json", fault: kvtest.FaultNotJSON, want: ErrMalformed, text: "not JSON"},
		{name: "kv-v1-shape", fault: kvtest.FaultNoEnvelope, want: ErrMalformed, text: "KV version 1"},
		{name: "value-not-a-string", fault: kvtest.FaultWrongType, want: ErrMalformed, text: "not a string"},
		{name: "server-error", fault: kvtest.FaultServerError, want: ErrUnavailable, text: "500"},
	}
	for _, tt := range malformed {
		t.Run("malformed-"+tt.name, func(t *testing.T) {
			ref := k.put(t, "malformed-"+tt.name, map[string]any{"api_key": canary}, "api_key")
			r, logs := k.resolver(t, nil, nil)
			k.srv.SetFault(tt.fault)
			defer k.srv.SetFault(kvtest.NoFault)
			_, err := r.Resolve(ctx, ref, time.Minute, 0)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.text) {
				t.Fatalf("err = %v, want %v mentioning %q", err, tt.want, tt.text)
			}
			assertNoCanary(t, canary, err.Error(), logs.String())
		})
	}

	t.Run("approle-login-and-relogin", func(t *testing.T) {
		clock := newClock()
		ref := k.put(t, "approle", map[string]any{"api_key": "approle-value-1"}, "api_key")
		k.srv.AddAppRole("role-1", canary, time.Hour)
		t.Setenv("PCS_TEST_ROLE_ID", "role-1")
		t.Setenv("PCS_TEST_SECRET_ID", canary)
		r, logs := k.resolver(t, clock, func(v *VaultOptions) {
			*v = VaultOptions{Addr: k.addr, RoleID: "env:PCS_TEST_ROLE_ID", SecretID: "env:PCS_TEST_SECRET_ID"}
		})
		if _, err := r.Resolve(ctx, ref, time.Minute, 0); err != nil {
			t.Fatal(err)
		}
		logins := k.srv.Logins()
		// Every token revoked (as when a token expires server-side): one
		// 403, one new login, the read succeeds.
		k.srv.RevokeAll()
		defer k.srv.AddToken(k.srv.RootToken, 0)
		if _, err := r.Refresh(ctx, ref); err != nil {
			t.Fatalf("after token revocation: %v", err)
		}
		if got := k.srv.Logins(); got != logins+1 {
			t.Errorf("logins = %d, want %d", got, logins+1)
		}
		// 80% into the token's one-hour lease the provider logs in again.
		clock.Advance(50 * time.Minute)
		if _, err := r.Refresh(ctx, ref); err != nil {
			t.Fatal(err)
		}
		if got := k.srv.Logins(); got != logins+2 {
			t.Errorf("logins = %d after the lease ran 80%%, want %d", got, logins+2)
		}
		assertNoCanary(t, canary, logs.String())
	})

	t.Run("approle-wrong-secret-id", func(t *testing.T) {
		ref := k.put(t, "approle-bad", map[string]any{"api_key": "x-value-abcdef"}, "api_key")
		k.srv.AddAppRole("role-2", "right-secret-id", time.Hour)
		t.Setenv("PCS_TEST_ROLE_ID", "role-2")
		t.Setenv("PCS_TEST_SECRET_ID", canary)
		r, logs := k.resolver(t, nil, func(v *VaultOptions) {
			*v = VaultOptions{Addr: k.addr, RoleID: "env:PCS_TEST_ROLE_ID", SecretID: "env:PCS_TEST_SECRET_ID"}
		})
		_, err := r.Resolve(ctx, ref, time.Minute, 0)
		if !errors.Is(err, ErrPermissionDenied) || !strings.Contains(err.Error(), "AppRole login refused") {
			t.Fatalf("err = %v, want an AppRole refusal", err)
		}
		assertNoCanary(t, canary, err.Error(), logs.String())
	})

	t.Run("token-file-reread-on-403", func(t *testing.T) {
		ref := k.put(t, "tokenfile", map[string]any{"api_key": "tf-value-abcdef"}, "api_key")
		path := filepath.Join(t.TempDir(), "token")
		k.srv.AddToken("file-token-one", 0)
		if err := os.WriteFile(path, []byte("file-token-one\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		r, _ := k.resolver(t, nil, func(v *VaultOptions) { *v = VaultOptions{Addr: k.addr, TokenFile: path} })
		if _, err := r.Resolve(ctx, ref, time.Minute, 0); err != nil {
			t.Fatal(err)
		}
		k.srv.RevokeToken("file-token-one")
		k.srv.AddToken("file-token-two", 0)
		if err := os.WriteFile(path, []byte("file-token-two\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Refresh(ctx, ref); err != nil {
			t.Fatalf("Vault Agent rewrote the token file; read failed: %v", err)
		}
	})

	t.Run("namespace-header-sent", func(t *testing.T) {
		ref := k.put(t, "ns", map[string]any{"api_key": "ns-value-abcdef"}, "api_key")
		k.srv.Namespace = "team-a"
		defer func() { k.srv.Namespace = "" }()
		r, _ := k.resolver(t, nil, func(v *VaultOptions) { v.Namespace = "team-a" })
		if _, err := r.Resolve(ctx, ref, time.Minute, 0); err != nil {
			t.Fatalf("with namespace: %v", err)
		}
	})
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
