package credential

// Tests against a real OAuth 2.0 authorization server: ORY Hydra v2.3.0,
// started on loopback by scripts/start-hydra.sh (scripts/test.sh runs it and
// exports PORTCULLIS_HYDRA_PUBLIC and PORTCULLIS_HYDRA_ADMIN). Without them
// the tests skip, unless PORTCULLIS_REQUIRE_SERVERS=1, when they fail.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/portcullis-dev/portcullis/internal/conf"
	"github.com/portcullis-dev/portcullis/internal/egress"
)

type hydra struct{ public, admin string }

func hydraServer(t *testing.T) hydra {
	t.Helper()
	h := hydra{os.Getenv("PORTCULLIS_HYDRA_PUBLIC"), os.Getenv("PORTCULLIS_HYDRA_ADMIN")}
	if h.public == "" || h.admin == "" {
		if os.Getenv("PORTCULLIS_REQUIRE_SERVERS") == "1" {
			t.Fatal("PORTCULLIS_HYDRA_PUBLIC/PORTCULLIS_HYDRA_ADMIN not set but PORTCULLIS_REQUIRE_SERVERS=1")
		}
		t.Skip("PORTCULLIS_HYDRA_PUBLIC/PORTCULLIS_HYDRA_ADMIN not set: run scripts/start-hydra.sh, or scripts/test.sh")
	}
	return h
}

func (h hydra) tokenURL() string { return h.public + "/oauth2/token" }

// client registers an OAuth2 client through the admin API and deletes it
// at the end of the test. It returns the client id.
func (h hydra) client(t *testing.T, spec map[string]any) string {
	t.Helper()
	id := fmt.Sprintf("pcs-test-%08x", rand.Uint32())
	spec["client_id"] = id
	spec["grant_types"] = []string{"client_credentials"}
	b, _ := json.Marshal(spec)
	resp, err := http.Post(h.admin+"/admin/clients", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		var e map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&e)
		t.Fatalf("creating Hydra client: %d %v", resp.StatusCode, e)
	}
	t.Cleanup(func() { h.deleteClient(id) })
	return id
}

func (h hydra) deleteClient(id string) {
	req, _ := http.NewRequest(http.MethodDelete, h.admin+"/admin/clients/"+id, nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
}

// introspect asks Hydra whether a token is active and with which scope.
func (h hydra) introspect(t *testing.T, token string) (bool, string) {
	t.Helper()
	resp, err := http.PostForm(h.admin+"/admin/oauth2/introspect", url.Values{"token": {token}})
	if err != nil {
		t.Error(err)
		return false, ""
	}
	defer resp.Body.Close()
	var out struct {
		Active bool   `json:"active"`
		Scope  string `json:"scope"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return out.Active, out.Scope
}

func (h hydra) revoke(t *testing.T, clientID, clientSecret, token string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.public+"/oauth2/revoke", strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, clientSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("revoking token: %v %v", resp, err)
	}
	resp.Body.Close()
}

// introspectingVendor accepts only Bearer tokens Hydra says are active.
func introspectingVendor(t *testing.T, h hydra) (*httptest.Server, *atomic.Int64, func() string) {
	var calls atomic.Int64
	var mu sync.Mutex
	var last string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		mu.Lock()
		last = tok
		mu.Unlock()
		if active, _ := h.introspect(t, tok); !active {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			http.Error(w, "inactive token", http.StatusUnauthorized)
			return
		}
		_, _ = w.Write([]byte("ok"))
	}))
	t.Cleanup(srv.Close)
	return srv, &calls, func() string { mu.Lock(); defer mu.Unlock(); return last }
}

func TestHydraClientCredentials(t *testing.T) {
	h := hydraServer(t)
	ctx := context.Background()
	const secret = "hydra-client-secret-" + canary

	cred := func(id string, scopes ...string) *Spec {
		return &Spec{Type: "oauth2_client_credentials", TokenURL: h.tokenURL(), ClientID: id,
			ClientSecret: conf.MustRef("env:PCS_TEST_HYDRA_SECRET"), Scopes: scopes, AuthMethod: "basic",
			TTL: conf.Dur(5 * time.Minute), MaxStale: conf.Dur(time.Hour)}
	}
	basicClient := func(t *testing.T, extra map[string]any) string {
		spec := map[string]any{"client_secret": secret, "scope": "charges:read charges:write admin",
			"token_endpoint_auth_method": "client_secret_basic"}
		for k, v := range extra {
			spec[k] = v
		}
		return h.client(t, spec)
	}

	t.Run("least-privilege-scope-request", func(t *testing.T) {
		t.Setenv("PCS_TEST_HYDRA_SECRET", secret)
		id := basicClient(t, nil)
		in, logs := newTestInjector(t, cred(id, "charges:read"), nil)
		info, req, err := apply(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"charges:read"}, info.Scopes); diff != "" {
			t.Errorf("granted scopes (-want +got):\n%s", diff)
		}
		tok, _ := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
		if active, scope := h.introspect(t, tok); !active || scope != "charges:read" {
			t.Errorf("Hydra says active=%v scope=%q; want an active token for charges:read only", active, scope)
		}
		b, _ := json.Marshal(in.Status())
		assertNoCanary(t, canary, logs.String(), string(b))
		assertNoCanary(t, tok, logs.String(), string(b))
	})

	t.Run("post-auth-method", func(t *testing.T) {
		t.Setenv("PCS_TEST_HYDRA_SECRET", secret)
		id := basicClient(t, map[string]any{"token_endpoint_auth_method": "client_secret_post"})
		c := cred(id, "charges:write")
		c.AuthMethod = "post"
		in, _ := newTestInjector(t, c, nil)
		if info, _, err := apply(ctx, in); err != nil || info.Scopes[0] != "charges:write" {
			t.Fatalf("%v %v", info, err)
		}
	})

	t.Run("token-expiry-and-refresh", func(t *testing.T) {
		t.Setenv("PCS_TEST_HYDRA_SECRET", secret)
		id := basicClient(t, map[string]any{"client_credentials_grant_access_token_lifespan": "4s"})
		in, _ := newTestInjector(t, cred(id, "charges:read"), nil)
		seen := map[string]bool{}
		deadline := time.Now().Add(7 * time.Second)
		for time.Now().Before(deadline) {
			_, req, err := apply(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			tok, _ := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
			if !seen[tok] {
				seen[tok] = true
				if active, _ := h.introspect(t, tok); !active {
					t.Fatalf("injected a token Hydra says is not active")
				}
			}
			if st := in.Status(); time.Until(st.Expires) <= 0 {
				t.Fatalf("serving a token past its expiry %s", st.Expires)
			}
			time.Sleep(250 * time.Millisecond)
		}
		if len(seen) < 2 {
			t.Errorf("%d distinct tokens over 7 s of a 4 s lifespan, want at least 2", len(seen))
		}
	})

	t.Run("wrong-secret", func(t *testing.T) {
		t.Setenv("PCS_TEST_HYDRA_SECRET", "wrong-"+canary)
		id := basicClient(t, nil)
		in, logs := newTestInjector(t, cred(id, "charges:read"), nil)
		_, _, err := apply(ctx, in)
		var te *TokenEndpointError
		if !errors.As(err, &te) || te.Status != 401 || te.Code != "invalid_client" || !errors.Is(err, ErrUnavailable) {
			t.Fatalf("err = %v, want 401 invalid_client", err)
		}
		assertNoCanary(t, canary, err.Error(), logs.String())
	})

	t.Run("scope-not-allowed", func(t *testing.T) {
		t.Setenv("PCS_TEST_HYDRA_SECRET", secret)
		id := basicClient(t, map[string]any{"scope": "charges:read"})
		in, _ := newTestInjector(t, cred(id, "admin"), nil)
		_, _, err := apply(ctx, in)
		var te *TokenEndpointError
		if !errors.As(err, &te) || te.Code != "invalid_scope" {
			t.Fatalf("err = %v, want invalid_scope", err)
		}
	})

	t.Run("revoked-token-is-refreshed-once", func(t *testing.T) {
		t.Setenv("PCS_TEST_HYDRA_SECRET", secret)
		id := basicClient(t, nil)
		in, _ := newTestInjector(t, cred(id, "charges:read"), nil)
		vendor, calls, last := introspectingVendor(t, h)
		tr := &Transport{Base: testBase(), Injector: in, Integration: "payments"}
		if resp, err := post(t, ctx, tr, vendor.URL, "x"); err != nil || resp.StatusCode != 200 {
			t.Fatalf("first call: %v %v", resp, err)
		}
		h.revoke(t, id, secret, last())
		if resp, err := post(t, ctx, tr, vendor.URL, "x"); err != nil || resp.StatusCode != 200 {
			t.Fatalf("after revocation: %v %v", resp, err)
		}
		if calls.Load() != 3 || in.Status().Version != "token-2" {
			t.Errorf("vendor calls %d (want 3: ok, 401, retry ok), version %s (want token-2)", calls.Load(), in.Status().Version)
		}
	})

	t.Run("client-deleted", func(t *testing.T) {
		t.Setenv("PCS_TEST_HYDRA_SECRET", secret)
		id := basicClient(t, nil)
		in, _ := newTestInjector(t, cred(id, "charges:read"), nil)
		vendor, calls, last := introspectingVendor(t, h)
		tr := &Transport{Base: testBase(), Injector: in, Integration: "payments"}
		if resp, err := post(t, ctx, tr, vendor.URL, "x"); err != nil || resp.StatusCode != 200 {
			t.Fatalf("first call: %v %v", resp, err)
		}
		h.revoke(t, id, secret, last())
		h.deleteClient(id)
		// The caller gets the vendor's own 401 (issue 13); the refresh
		// failure is the operator's to see, in the status and the log.
		resp, err := post(t, ctx, tr, vendor.URL, "x")
		if err != nil || resp.StatusCode != 401 {
			t.Fatalf("got %v %v, want the vendor's 401", resp, err)
		}
		if st := in.Status(); !strings.Contains(st.LastError, "answered 401") || st.Revoked {
			t.Errorf("status last_error %q (want the token endpoint's 401), revoked %v", st.LastError, st.Revoked)
		}
		if calls.Load() != 2 {
			t.Errorf("vendor calls %d, want 2 (no retry without a new token)", calls.Load())
		}
	})

	t.Run("private-key-jwt", func(t *testing.T) {
		key := testKeys()["ec"].(*ecdsa.PrivateKey)
		pub, err := key.PublicKey.ECDH()
		if err != nil {
			t.Fatal(err)
		}
		raw := pub.Bytes() // 0x04 || X || Y
		b64 := base64.RawURLEncoding.EncodeToString
		jwk := map[string]any{"kty": "EC", "crv": "P-256", "x": b64(raw[1:33]), "y": b64(raw[33:]), "kid": "k1", "alg": "ES256", "use": "sig"}
		id := h.client(t, map[string]any{"scope": "charges:read", "token_endpoint_auth_method": "private_key_jwt",
			"token_endpoint_auth_signing_alg": "ES256", "jwks": map[string]any{"keys": []any{jwk}}})
		ref := writeKeyFile(t, t.TempDir(), pemOf(t, "EC PRIVATE KEY", key))
		c := &Spec{Type: "oauth2_client_credentials", TokenURL: h.tokenURL(), ClientID: id,
			AuthMethod: "private_key_jwt", PrivateKey: ref, Algorithm: "ES256", KeyID: "k1", Scopes: []string{"charges:read"}}
		in, _ := newTestInjector(t, c, nil)
		for range 2 { // two assertions: Hydra rejects a reused jti
			if err := in.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
		}
		info, req, err := apply(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		tok, _ := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
		if active, scope := h.introspect(t, tok); !active || scope != "charges:read" || info.Version != "token-2" {
			t.Errorf("active=%v scope=%q version=%s", active, scope, info.Version)
		}
	})

	// As the gateway wires it: the token request goes through the
	// integration's egress policy, which must list Hydra's host:port and,
	// Hydra being on loopback here, re-allow loopback (allow_cidrs).
	t.Run("through-the-integration-egress-policy", func(t *testing.T) {
		t.Setenv("PCS_TEST_HYDRA_SECRET", secret)
		id := basicClient(t, nil)
		u, err := url.Parse(h.tokenURL())
		if err != nil {
			t.Fatal(err)
		}
		byName := "localhost:" + u.Port() // Hydra by a name that resolves to loopback
		for _, tt := range []struct {
			name     string
			tokenURL string
			eg       egress.Config
			ok       bool
		}{
			{"listed-and-loopback-re-allowed", h.tokenURL(), egress.Config{Allow: []string{u.Host}, AllowCIDRs: []string{"127.0.0.0/8", "::1/128"}}, true},
			{"listed-but-loopback-denied", "http://" + byName + "/oauth2/token", egress.Config{Allow: []string{byName}}, false},
			{"not-listed", h.tokenURL(), egress.Config{Allow: []string{"api.vendor.example:443"}, AllowPrivate: true}, false},
		} {
			t.Run(tt.name, func(t *testing.T) {
				pol, err := egress.NewPolicy(tt.eg)
				if err != nil {
					t.Fatal(err)
				}
				o, _ := testOptions(nil)
				o.HTTPClient = pol.Client(5 * time.Second)
				r := NewResolver(o)
				t.Cleanup(r.Close)
				c := cred(id, "charges:read")
				c.TokenURL = tt.tokenURL
				in, err := NewInjector("payments", c, r, o)
				if err != nil {
					t.Fatal(err)
				}
				_, req, err := apply(ctx, in)
				if !tt.ok {
					if !errors.Is(err, egress.ErrDenied) || !errors.Is(err, ErrUnavailable) {
						t.Fatalf("err = %v, want credential unavailable from an egress denial", err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				tok, _ := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
				if active, _ := h.introspect(t, tok); !active {
					t.Error("Hydra says the token fetched through the egress policy is not active")
				}
			})
		}
	})

	t.Run("server-down", func(t *testing.T) {
		t.Setenv("PCS_TEST_HYDRA_SECRET", secret)
		c := cred("any", "charges:read")
		c.TokenURL = "http://" + closedAddr(t) + "/oauth2/token"
		in, _ := newTestInjector(t, c, nil)
		if _, _, err := apply(ctx, in); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "unreachable") {
			t.Fatalf("err = %v", err)
		}
	})
}
