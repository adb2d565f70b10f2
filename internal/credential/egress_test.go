package credential

// Regression tests for issue 13 item 8: the connections the credential
// layer opens (token endpoints, Vault) go through an egress policy, ignore
// the environment's proxy and never follow redirects, and a missing client
// or base transport is an error rather than http.DefaultTransport.

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/conf"
	"github.com/portcullis-dev/portcullis/internal/egress"
	"github.com/portcullis-dev/portcullis/internal/secret"
)

// countingServer counts the requests it receives and answers with h.
func countingServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if h != nil {
			h(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func tokenJSON(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"access_token":"at-` + canary + `","token_type":"Bearer","expires_in":3600}`))
}

// policyClient is what the gateway passes: a client on an egress policy.
func policyClient(t *testing.T, c egress.Config) *http.Client {
	t.Helper()
	p, err := egress.NewPolicy(c)
	if err != nil {
		t.Fatal(err)
	}
	return p.Client(5 * time.Second)
}

func hostPort(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

func oauthInjectorWith(t *testing.T, tokenURL string, client *http.Client) (Injector, error) {
	t.Helper()
	t.Setenv("PCS_TEST_EGRESS_SECRET", "client-secret-"+canary)
	o, _ := testOptions(nil)
	o.HTTPClient = client
	r := NewResolver(o)
	t.Cleanup(r.Close)
	c := &Spec{Type: "oauth2_client_credentials", TokenURL: tokenURL, ClientID: "client-1",
		ClientSecret: conf.MustRef("env:PCS_TEST_EGRESS_SECRET"), AuthMethod: "basic",
		TTL: conf.Dur(time.Minute), MaxStale: conf.Dur(time.Hour)}
	return NewInjector("payments", c, r, o)
}

func TestTokenRequestsGoThroughTheEgressPolicy(t *testing.T) {
	ctx := context.Background()

	t.Run("redirect-to-internal-address-is-not-followed", func(t *testing.T) {
		internal, hits := countingServer(t, tokenJSON)
		idp, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, internal.URL+"/latest/meta-data/", http.StatusFound)
		})
		// Both servers are on loopback and the policy would even allow the
		// internal one by address class; only its host:port is missing, as
		// a metadata or admin endpoint would be. The client given follows
		// redirects: the token source must not.
		client := policyClient(t, egress.Config{Allow: []string{hostPort(t, idp.URL)}, AllowCIDRs: []string{"127.0.0.0/8"}})
		client.CheckRedirect = nil
		in, err := oauthInjectorWith(t, idp.URL+"/oauth2/token", client)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = apply(ctx, in)
		var te *TokenEndpointError
		if !errors.Is(err, ErrUnavailable) || !errors.As(err, &te) || te.Status != http.StatusFound {
			t.Fatalf("err = %v, want credential unavailable from the token endpoint's 302", err)
		}
		if n := hits.Load(); n != 0 {
			t.Errorf("the redirect target received %d requests, want 0", n)
		}
	})

	t.Run("name-resolving-to-loopback-is-denied", func(t *testing.T) {
		idp, hits := countingServer(t, tokenJSON)
		_, port, _ := net.SplitHostPort(hostPort(t, idp.URL))
		// localhost:PORT is on the allowlist, but it resolves to loopback
		// and the integration has neither allow_private nor allow_cidrs.
		client := policyClient(t, egress.Config{Allow: []string{"localhost:" + port}})
		in, err := oauthInjectorWith(t, "http://localhost:"+port+"/oauth2/token", client)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = apply(ctx, in)
		var de *egress.DeniedError
		if !errors.Is(err, ErrUnavailable) || !errors.As(err, &de) || de.Reason != egress.ClassLoopback {
			t.Fatalf("err = %v, want credential unavailable wrapping a loopback egress denial", err)
		}
		if n := hits.Load(); n != 0 {
			t.Errorf("the token endpoint received %d requests, want 0", n)
		}
		assertNoCanary(t, canary, err.Error())
	})

	t.Run("token-host-not-on-allowlist-is-denied", func(t *testing.T) {
		idp, hits := countingServer(t, tokenJSON)
		client := policyClient(t, egress.Config{Allow: []string{"api.vendor.example:443"}, AllowPrivate: true})
		in, err := oauthInjectorWith(t, idp.URL+"/oauth2/token", client)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = apply(ctx, in)
		var de *egress.DeniedError
		if !errors.As(err, &de) || de.Reason != egress.ReasonNotAllowlisted {
			t.Fatalf("err = %v, want a not-on-allowlist denial", err)
		}
		if n := hits.Load(); n != 0 {
			t.Errorf("the token endpoint received %d requests, want 0", n)
		}
	})

	t.Run("allow-listed-endpoint-works", func(t *testing.T) {
		idp, hits := countingServer(t, tokenJSON)
		client := policyClient(t, egress.Config{Allow: []string{hostPort(t, idp.URL)}, AllowCIDRs: []string{"127.0.0.1/32"}})
		in, err := oauthInjectorWith(t, idp.URL+"/oauth2/token", client)
		if err != nil {
			t.Fatal(err)
		}
		if _, req, err := apply(ctx, in); err != nil || !strings.HasPrefix(req.Header.Get("Authorization"), "Bearer at-") {
			t.Fatalf("err = %v, Authorization set: %v", err, req.Header.Get("Authorization") != "")
		}
		if hits.Load() != 1 {
			t.Errorf("token endpoint hits %d, want 1", hits.Load())
		}
	})

	t.Run("environment-proxy-is-ignored", func(t *testing.T) {
		proxy, proxied := countingServer(t, tokenJSON)
		t.Setenv("HTTP_PROXY", proxy.URL)
		t.Setenv("HTTPS_PROXY", proxy.URL)
		// A name that does not resolve: only a proxy could reach it.
		client := policyClient(t, egress.Config{Allow: []string{"idp.portcullis.invalid:80"}})
		in, err := oauthInjectorWith(t, "http://idp.portcullis.invalid/oauth2/token", client)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := apply(ctx, in); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("err = %v, want credential unavailable (the name does not resolve)", err)
		}
		if n := proxied.Load(); n != 0 {
			t.Errorf("the environment's proxy received %d token requests, want 0", n)
		}
	})
}

func TestNoHTTPClientIsAnError(t *testing.T) {
	for _, tt := range []struct {
		name   string
		client *http.Client
	}{
		{"nil-client", nil},
		{"nil-transport", &http.Client{}}, // would mean http.DefaultTransport
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := oauthInjectorWith(t, "https://idp.example/oauth2/token", tt.client)
			if !errors.Is(err, ErrNoHTTPClient) || !errors.Is(err, ErrConfig) {
				t.Fatalf("err = %v, want ErrNoHTTPClient", err)
			}
		})
	}
}

func TestTransportNilBaseIsAnError(t *testing.T) {
	vendor, hits := countingServer(t, nil)
	t.Setenv("PCS_TEST_NIL_BASE", "k-"+canary)
	o, _ := testOptions(nil)
	r := NewResolver(o)
	t.Cleanup(r.Close)
	in, err := NewInjector("payments", &Spec{Type: "bearer", Secret: conf.MustRef("env:PCS_TEST_NIL_BASE"),
		TTL: conf.Dur(time.Minute), MaxStale: conf.Dur(time.Hour)}, r, o)
	if err != nil {
		t.Fatal(err)
	}
	tr := &Transport{Injector: in, Integration: "payments"}
	req, _ := http.NewRequest(http.MethodGet, vendor.URL+"/v1/x", nil)
	resp, err := tr.RoundTrip(req)
	if err == nil {
		resp.Body.Close()
		t.Fatal("a Transport without Base sent the request (through http.DefaultTransport)")
	}
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "Base is nil") {
		t.Errorf("err = %v, want a config error naming Base", err)
	}
	if hits.Load() != 0 {
		t.Errorf("vendor received %d requests, want 0", hits.Load())
	}
}

// vaultWith returns a Resolver whose vault: provider talks to addr with
// the given client.
func vaultWith(t *testing.T, addr string, client *http.Client) *Resolver {
	t.Helper()
	o, _ := testOptions(nil)
	o.Vault = VaultOptions{Addr: addr, Token: secret.New("hvs.test-" + canary)}
	o.VaultHTTPClient = client
	r := NewResolver(o)
	t.Cleanup(r.Close)
	return r
}

func TestVaultClientEgress(t *testing.T) {
	ctx := context.Background()
	ref := conf.MustRef("vault:secret/data/payments#api_key")

	// The server at VAULT_ADDR here is not Vault: it plays a compromised
	// load balancer in front of it, which answers every request with a
	// redirect to an internal address. The real-Vault tests are in
	// vault_test.go.
	t.Run("redirect-is-not-followed", func(t *testing.T) {
		internal, hits := countingServer(t, nil)
		lb, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, internal.URL+r.URL.Path, http.StatusTemporaryRedirect)
		})
		// The client given follows redirects and allows both servers: the
		// provider itself must not follow.
		client := &http.Client{Transport: testBase()}
		r := vaultWith(t, lb.URL, client)
		if _, err := r.Resolve(ctx, ref, time.Minute, time.Hour); err == nil {
			t.Fatal("a redirected Vault read succeeded")
		}
		if n := hits.Load(); n != 0 {
			t.Errorf("the redirect target received %d requests (with the Vault token), want 0", n)
		}
	})

	t.Run("environment-proxy-is-ignored", func(t *testing.T) {
		proxy, proxied := countingServer(t, nil)
		for _, v := range []string{"HTTP_PROXY", "HTTPS_PROXY", "VAULT_HTTP_PROXY", "VAULT_PROXY_ADDR"} {
			t.Setenv(v, proxy.URL)
		}
		t.Setenv("VAULT_AGENT_ADDR", proxy.URL)
		client := policyClient(t, egress.Config{Allow: []string{"vault.portcullis.invalid:8200"}})
		r := vaultWith(t, "http://vault.portcullis.invalid:8200", client)
		if _, err := r.Resolve(ctx, ref, time.Minute, time.Hour); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("err = %v, want unavailable (the name does not resolve)", err)
		}
		if n := proxied.Load(); n != 0 {
			t.Errorf("the environment's proxy (or agent address) received %d Vault requests, want 0", n)
		}
	})

	t.Run("host-not-on-internal-allowlist-is-denied", func(t *testing.T) {
		vault, hits := countingServer(t, nil)
		p, err := egress.NewInternalPolicy([]string{"vault.corp.example:8200"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		r := vaultWith(t, vault.URL, p.Client(5*time.Second))
		_, err = r.Resolve(ctx, ref, time.Minute, time.Hour)
		if !errors.Is(err, egress.ErrDenied) {
			t.Fatalf("err = %v, want an egress denial", err)
		}
		if hits.Load() != 0 {
			t.Errorf("Vault received %d requests, want 0", hits.Load())
		}
		assertNoCanary(t, canary, err.Error())
	})

	t.Run("no-client-is-an-error", func(t *testing.T) {
		r := vaultWith(t, "http://127.0.0.1:8200", nil)
		if _, err := r.Resolve(ctx, ref, time.Minute, time.Hour); !errors.Is(err, ErrNoHTTPClient) {
			t.Fatalf("err = %v, want ErrNoHTTPClient", err)
		}
	})
}
