package credential

// The Vault tests run against a real HashiCorp Vault (or OpenBao) server:
// scripts/start-vault.sh builds Vault from tools/vault and starts
// `vault server -dev` on loopback, and scripts/test.sh exports VAULT_ADDR and
// VAULT_TOKEN (the root token). Any other dev server works too (BAO_ADDR and
// BAO_TOKEN are read when the VAULT_ names are unset). Without one the tests
// skip, unless PORTCULLIS_REQUIRE_SERVERS=1, when they fail.
//
// Every test writes under its own MOUNT/data/portcullis-test-<random>/
// (MOUNT from PORTCULLIS_VAULT_MOUNT, default "secret") and mounts its own
// auth methods and policies under random names, and removes them when done,
// so the tests can share one server with each other and with a developer.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	vault "github.com/hashicorp/vault/api"

	"github.com/portcullis-dev/portcullis/internal/conf"
	"github.com/portcullis-dev/portcullis/internal/secret"
)

// vaultSrv is the real server and a root client to set it up with.
type vaultSrv struct {
	addr   string
	token  string
	mount  string // KV v2 mount
	prefix string // this test's path under the mount
	admin  *vault.Client
}

func vaultServer(t *testing.T) vaultSrv {
	t.Helper()
	addr, tok := os.Getenv("VAULT_ADDR"), os.Getenv("VAULT_TOKEN")
	if addr == "" || tok == "" {
		addr, tok = os.Getenv("BAO_ADDR"), os.Getenv("BAO_TOKEN")
	}
	if addr == "" || tok == "" {
		if os.Getenv("PORTCULLIS_REQUIRE_SERVERS") == "1" {
			t.Fatal("VAULT_ADDR/VAULT_TOKEN not set but PORTCULLIS_REQUIRE_SERVERS=1 (run scripts/start-vault.sh)")
		}
		t.Skip("VAULT_ADDR/VAULT_TOKEN not set: run scripts/start-vault.sh, or scripts/test.sh")
	}
	mount := os.Getenv("PORTCULLIS_VAULT_MOUNT")
	if mount == "" {
		mount = "secret"
	}
	cfg := vault.DefaultConfig()
	cfg.Address = addr
	c, err := vault.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(tok)
	return vaultSrv{addr: addr, token: tok, mount: mount, prefix: randomName("portcullis-test"), admin: c}
}

func randomName(prefix string) string { return fmt.Sprintf("%s-%08x", prefix, rand.Uint32()) }

// put writes data at path (relative to the test's prefix) as a new KV
// version and returns the vault: reference for key.
func (v vaultSrv) put(t *testing.T, path string, data map[string]any, key string) conf.SecretRef {
	t.Helper()
	full := v.prefix + "/" + path
	if _, err := v.admin.KVv2(v.mount).Put(context.Background(), full, data); err != nil {
		t.Fatalf("writing test secret: %v", err)
	}
	t.Cleanup(func() { _ = v.admin.KVv2(v.mount).DeleteMetadata(context.Background(), full) })
	return v.ref(path, key)
}

func (v vaultSrv) ref(path, key string) conf.SecretRef {
	return conf.MustRef("vault:" + v.mount + "/data/" + v.prefix + "/" + path + "#" + key)
}

// write is a root-token write to any API path; it fails the test on error.
func (v vaultSrv) write(t *testing.T, path string, data map[string]any) *vault.Secret {
	t.Helper()
	s, err := v.admin.Logical().WriteWithContext(context.Background(), path, data)
	if err != nil {
		t.Fatalf("vault write %s: %v", path, err)
	}
	return s
}

// resolver is a Resolver reading from the server with the root token (mod
// may change the options, e.g. to AppRole, or point them at a proxy).
func (v vaultSrv) resolver(t *testing.T, clock *fakeClock, mod func(*VaultOptions)) (*Resolver, *syncBuffer) {
	t.Helper()
	o, logs := testOptions(clock)
	o.Vault = VaultOptions{Addr: v.addr, Token: secret.New(v.token)}
	if mod != nil {
		mod(&o.Vault)
	}
	r := NewResolver(o)
	t.Cleanup(r.Close)
	return r, logs
}

// readPolicy creates a policy that may read the test's prefix (or only
// path under it, when given) and returns its name.
func (v vaultSrv) readPolicy(t *testing.T, path string) string {
	t.Helper()
	name := randomName("portcullis-test")
	p := v.mount + "/data/" + v.prefix + "/*"
	if path != "" {
		p = v.mount + "/data/" + v.prefix + "/" + path
	}
	if err := v.admin.Sys().PutPolicy(name, fmt.Sprintf("path %q { capabilities = [\"read\"] }", p)); err != nil {
		t.Fatalf("writing policy: %v", err)
	}
	t.Cleanup(func() { _ = v.admin.Sys().DeletePolicy(name) })
	return name
}

// childToken creates a token with the given policies only and returns it.
func (v vaultSrv) childToken(t *testing.T, policies ...string) string {
	t.Helper()
	s, err := v.admin.Auth().Token().Create(&vault.TokenCreateRequest{Policies: policies, NoDefaultPolicy: true})
	if err != nil || s.Auth == nil {
		t.Fatalf("creating token: %v", err)
	}
	tok := s.Auth.ClientToken
	t.Cleanup(func() { _ = v.admin.Auth().Token().RevokeOrphan(tok) })
	return tok
}

// appRole enables AppRole at a mount of its own, creates a role whose
// tokens read the test's prefix and live an hour, and returns the mount,
// the role_id and a fresh secret_id.
func (v vaultSrv) appRole(t *testing.T) (mount, roleID, secretID string) {
	t.Helper()
	mount = randomName("portcullis-approle")
	if err := v.admin.Sys().EnableAuthWithOptions(mount, &vault.EnableAuthOptions{Type: "approle"}); err != nil {
		t.Fatalf("enabling AppRole: %v", err)
	}
	t.Cleanup(func() { _ = v.admin.Sys().DisableAuth(mount) })
	policy := v.readPolicy(t, "")
	v.write(t, "auth/"+mount+"/role/gateway", map[string]any{"token_policies": policy, "token_ttl": "1h", "token_max_ttl": "4h"})
	rs, err := v.admin.Logical().Read("auth/" + mount + "/role/gateway/role-id")
	if err != nil || rs == nil {
		t.Fatalf("reading role_id: %v", err)
	}
	ss := v.write(t, "auth/"+mount+"/role/gateway/secret-id", nil)
	return mount, fmt.Sprint(rs.Data["role_id"]), fmt.Sprint(ss.Data["secret_id"])
}

// vaultProxy is a reverse proxy in front of the real server, standing for
// the network and load balancer between gateway and Vault: it counts the
// logins and KV reads that pass, can answer in Vault's place the way a
// broken load balancer does, and Close makes Vault unreachable for the
// resolvers that use it (and only for them).
type vaultProxy struct {
	URL    string
	srv    *httptest.Server
	logins atomic.Int64
	reads  atomic.Int64

	mu         sync.Mutex
	fault      proxyFault
	namespaces []string // X-Vault-Namespace of each request
}

type proxyFault int

const (
	proxyPass     proxyFault = iota
	proxyHTMLPage            // 200 with an HTML page (a captive portal or a misrouted request)
	proxyBadGate             // 502 Bad Gateway (the server behind the balancer is gone)
)

func newVaultProxy(t *testing.T, v vaultSrv) *vaultProxy {
	t.Helper()
	u, err := url.Parse(v.addr)
	if err != nil {
		t.Fatal(err)
	}
	p := &vaultProxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = http.DefaultTransport.(*http.Transport).Clone()
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		fault := p.fault
		p.namespaces = append(p.namespaces, r.Header.Get("X-Vault-Namespace"))
		p.mu.Unlock()
		switch fault {
		case proxyHTMLPage:
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte("<html><body>Please sign in</body></html>"))
			return
		case proxyBadGate:
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadGateway)
			_, _ = w.Write([]byte("<html>502 Bad Gateway</html>"))
			return
		}
		switch {
		case strings.HasPrefix(r.URL.Path, "/v1/auth/") && strings.HasSuffix(r.URL.Path, "/login"):
			p.logins.Add(1)
		case r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/data/"):
			p.reads.Add(1)
		}
		rp.ServeHTTP(w, r)
	}))
	p.URL = p.srv.URL
	t.Cleanup(p.srv.Close)
	return p
}

func (p *vaultProxy) setFault(f proxyFault) { p.mu.Lock(); p.fault = f; p.mu.Unlock() }

func (p *vaultProxy) sawNamespace(ns string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, n := range p.namespaces {
		if n == ns {
			return true
		}
	}
	return false
}

// Close stops the proxy: from then on the address refuses connections, as a
// Vault that is down does.
func (p *vaultProxy) Close() { p.srv.CloseClientConnections(); p.srv.Close() }
