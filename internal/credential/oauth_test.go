package credential

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/portcullis-dev/portcullis/internal/conf"
)

// fakeIdP is a token endpoint that records requests. By default it issues
// "tok-N" with expires_in 100 and echoes the requested scope.
type fakeIdP struct {
	srv *httptest.Server

	mu      sync.Mutex
	n       int
	forms   []url.Values
	auths   []string
	delay   time.Duration
	respond func(w http.ResponseWriter, n int, form url.Values) // nil: default answer
}

func newFakeIdP(t *testing.T) *fakeIdP {
	t.Helper()
	idp := &fakeIdP{}
	idp.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		idp.mu.Lock()
		idp.n++
		n, delay, respond := idp.n, idp.delay, idp.respond
		idp.forms = append(idp.forms, r.PostForm)
		idp.auths = append(idp.auths, r.Header.Get("Authorization"))
		idp.mu.Unlock()
		time.Sleep(delay)
		if respond != nil {
			respond(w, n, r.PostForm)
			return
		}
		writeTokenJSON(w, map[string]any{"access_token": fmt.Sprintf("tok-%d", n), "token_type": "bearer", "expires_in": 100, "scope": r.PostForm.Get("scope")})
	}))
	t.Cleanup(idp.srv.Close)
	return idp
}

func (idp *fakeIdP) count() int { idp.mu.Lock(); defer idp.mu.Unlock(); return idp.n }

func (idp *fakeIdP) set(f func(w http.ResponseWriter, n int, form url.Values)) {
	idp.mu.Lock()
	idp.respond = f
	idp.mu.Unlock()
}

func writeTokenJSON(w http.ResponseWriter, v map[string]any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func oauthCred(tokenURL string) *Spec {
	return &Spec{
		Type: "oauth2_client_credentials", TokenURL: tokenURL, ClientID: "client-1",
		ClientSecret: conf.MustRef("env:PCS_TEST_CLIENT_SECRET"), Scopes: []string{"charges:read"},
		AuthMethod: "basic", TTL: conf.Dur(5 * time.Minute), MaxStale: conf.Dur(time.Hour),
	}
}

// newTestInjector builds an injector with its own Resolver.
func newTestInjector(t *testing.T, c *Spec, clock *fakeClock) (Injector, *syncBuffer) {
	t.Helper()
	o, logs := testOptions(clock)
	r := NewResolver(o)
	t.Cleanup(r.Close)
	in, err := NewInjector("payments", c, r, o)
	if err != nil {
		t.Fatal(err)
	}
	return in, logs
}

func apply(ctx context.Context, in Injector) (Info, *http.Request, error) {
	req := httptest.NewRequest(http.MethodGet, "https://api.vendor.example/v1/x?a=1", nil)
	info, err := in.Apply(ctx, req)
	return info, req, err
}

func TestOAuthRequest(t *testing.T) {
	tests := []struct {
		name       string
		mod        func(c *Spec)
		wantForm   url.Values
		wantBasic  bool
		wantScopes []string
	}{
		{
			name:       "basic-auth-only-configured-scopes",
			wantForm:   url.Values{"grant_type": {"client_credentials"}, "scope": {"charges:read"}},
			wantBasic:  true,
			wantScopes: []string{"charges:read"},
		},
		{
			name: "post-auth-with-audience-and-resource",
			mod: func(c *Spec) {
				c.AuthMethod = "post"
				c.Audience = "https://api.vendor.example"
				c.Resource = "urn:vendor:api"
			},
			wantForm:   url.Values{"grant_type": {"client_credentials"}, "scope": {"charges:read"}, "client_id": {"client-1"}, "client_secret": {canary}, "audience": {"https://api.vendor.example"}, "resource": {"urn:vendor:api"}},
			wantScopes: []string{"charges:read"},
		},
		{
			name:       "several-scopes",
			mod:        func(c *Spec) { c.Scopes = []string{"charges:read", "charges:write"} },
			wantForm:   url.Values{"grant_type": {"client_credentials"}, "scope": {"charges:read charges:write"}},
			wantBasic:  true,
			wantScopes: []string{"charges:read", "charges:write"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("PCS_TEST_CLIENT_SECRET", canary)
			idp := newFakeIdP(t)
			c := oauthCred(idp.srv.URL)
			if tt.mod != nil {
				tt.mod(c)
			}
			in, logs := newTestInjector(t, c, nil)
			info, req, err := apply(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			if got := req.Header.Get("Authorization"); got != "Bearer tok-1" {
				t.Errorf("Authorization = %q, want Bearer tok-1", got)
			}
			if diff := cmp.Diff(Info{Version: "token-1", Scopes: tt.wantScopes}, info, cmpopts.IgnoreUnexported(Info{})); diff != "" {
				t.Errorf("Info (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantForm, idp.forms[0]); diff != "" {
				t.Errorf("token request form (-want +got):\n%s", diff)
			}
			if gotBasic := strings.HasPrefix(idp.auths[0], "Basic "); gotBasic != tt.wantBasic {
				t.Errorf("basic auth sent = %v, want %v", gotBasic, tt.wantBasic)
			}
			st := in.Status()
			if st.Version != "token-1" || st.Ref != "env:PCS_TEST_CLIENT_SECRET" || st.SecretVersion != "gen-1" || st.Expires.Sub(st.Created) != 100*time.Second {
				t.Errorf("Status = %+v", st)
			}
			b, _ := json.Marshal(st)
			assertNoCanary(t, canary, logs.String(), string(b))
			assertNoCanary(t, "tok-1", string(b), logs.String())
		})
	}
}

// Early refresh: between 65% and 75% of the lifetime (jitter), in the
// background, while callers keep the cached token without waiting.
func TestOAuthRefreshesEarlyWithJitter(t *testing.T) {
	t.Setenv("PCS_TEST_CLIENT_SECRET", canary)
	idp := newFakeIdP(t)
	clock := newClock()
	in, _ := newTestInjector(t, oauthCred(idp.srv.URL), clock)
	ctx := context.Background()
	for range 10 {
		if _, _, err := apply(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(64 * time.Second)
	if _, req, _ := apply(ctx, in); idp.count() != 1 || req.Header.Get("Authorization") != "Bearer tok-1" {
		t.Fatalf("at 64%% of the lifetime: %d token requests, want 1", idp.count())
	}
	clock.Advance(12 * time.Second) // 76%: past the latest refresh point
	if _, req, _ := apply(ctx, in); req.Header.Get("Authorization") != "Bearer tok-1" {
		t.Fatalf("the caller at the refresh point must get the cached token at once")
	}
	eventually(t, 5*time.Second, "background refresh", func() bool {
		_, req, _ := apply(ctx, in)
		return req.Header.Get("Authorization") == "Bearer tok-2"
	})
	if n := idp.count(); n != 2 {
		t.Errorf("%d token requests, want 2", n)
	}

	// The jitter spreads refresh points over 10% of the lifetime.
	ts := in.(*oauthInjector).ts
	seen := map[time.Time]bool{}
	for range 20 {
		tok, err := ts.forceFetch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		frac := float64(tok.refreshAt.Sub(tok.issued)) / float64(tok.expires.Sub(tok.issued))
		if frac < 0.649 || frac > 0.751 {
			t.Fatalf("refresh at %.3f of the lifetime, want within [0.65, 0.75]", frac)
		}
		seen[tok.refreshAt] = true
	}
	if len(seen) < 5 {
		t.Errorf("only %d distinct refresh points in 20 tokens: no jitter", len(seen))
	}
}

// A token without expires_in is not cached forever: it lives for the
// credential's TTL.
func TestOAuthNoExpiresIn(t *testing.T) {
	t.Setenv("PCS_TEST_CLIENT_SECRET", canary)
	idp := newFakeIdP(t)
	idp.set(func(w http.ResponseWriter, n int, _ url.Values) {
		writeTokenJSON(w, map[string]any{"access_token": fmt.Sprintf("tok-%d", n), "token_type": "Bearer"})
	})
	clock := newClock()
	c := oauthCred(idp.srv.URL)
	c.TTL = conf.Dur(2 * time.Minute)
	in, _ := newTestInjector(t, c, clock)
	if _, _, err := apply(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	if st := in.Status(); st.Expires.Sub(st.Created) != 2*time.Minute {
		t.Fatalf("token without expires_in expires after %s, want the 2m TTL", st.Expires.Sub(st.Created))
	}
	clock.Advance(2 * time.Minute)
	if _, req, err := apply(context.Background(), in); err != nil || req.Header.Get("Authorization") != "Bearer tok-2" {
		t.Fatalf("after the TTL: %v %q, want a new token", err, req.Header.Get("Authorization"))
	}
}

// Envoy once kept sending an expired token while the IdP was down: never.
func TestOAuthNeverInjectsExpiredToken(t *testing.T) {
	t.Setenv("PCS_TEST_CLIENT_SECRET", canary)
	idp := newFakeIdP(t)
	clock := newClock()
	in, _ := newTestInjector(t, oauthCred(idp.srv.URL), clock)
	ctx := context.Background()
	if _, _, err := apply(ctx, in); err != nil {
		t.Fatal(err)
	}
	idp.set(func(w http.ResponseWriter, _ int, _ url.Values) { http.Error(w, "down", http.StatusServiceUnavailable) })
	clock.Advance(85 * time.Second) // past the refresh point, still usable
	if _, req, err := apply(ctx, in); err != nil || req.Header.Get("Authorization") != "Bearer tok-1" {
		t.Fatalf("while still valid: %v; want the cached token", err)
	}
	eventually(t, 5*time.Second, "failed background refresh", func() bool { return idp.count() >= 2 })
	clock.Advance(6 * time.Second) // 91 s: inside the 10 s skew margin of a 100 s token
	_, req, err := apply(ctx, in)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if h := req.Header.Get("Authorization"); h != "" {
		t.Fatalf("an expiring token was injected: %q", h)
	}
	var te *TokenEndpointError
	if !errors.As(err, &te) || te.Status != http.StatusServiceUnavailable {
		t.Errorf("err = %v, want the token endpoint's 503", err)
	}
}

func TestOAuthSingleFlight(t *testing.T) {
	t.Setenv("PCS_TEST_CLIENT_SECRET", canary)
	idp := newFakeIdP(t)
	idp.delay = 200 * time.Millisecond
	in, _ := newTestInjector(t, oauthCred(idp.srv.URL), nil)
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := map[string]int{}
	for range 50 {
		wg.Go(func() {
			_, req, err := apply(context.Background(), in)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			got[req.Header.Get("Authorization")]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if diff := cmp.Diff(map[string]int{"Bearer tok-1": 50}, got); diff != "" || idp.count() != 1 {
		t.Errorf("%d token requests for 50 concurrent callers (want 1); tokens (-want +got):\n%s", idp.count(), diff)
	}
}

// x/oauth2's TokenSource keeps its first context for every refresh; here a
// caller that gives up breaks nothing for the next one.
func TestOAuthCancelledCallerDoesNotPoisonRefresh(t *testing.T) {
	t.Setenv("PCS_TEST_CLIENT_SECRET", canary)
	idp := newFakeIdP(t)
	idp.delay = 100 * time.Millisecond
	in, _ := newTestInjector(t, oauthCred(idp.srv.URL), nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := apply(ctx, in); !errors.Is(err, context.Canceled) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("cancelled caller: err = %v", err)
	}
	if _, req, err := apply(context.Background(), in); err != nil || req.Header.Get("Authorization") != "Bearer tok-1" {
		t.Fatalf("next caller: %v %q", err, req.Header.Get("Authorization"))
	}
}

func TestOAuthTokenEndpointErrors(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("redirect followed to %s", r.URL)
	}))
	defer other.Close()
	tests := []struct {
		name     string
		status   int
		ctype    string
		body     string
		header   map[string]string
		want     error
		wantCode string
		text     string
	}{
		{name: "wrong-secret", status: 401, body: `{"error":"invalid_client","error_description":"Client authentication failed"}`, want: ErrUnavailable, wantCode: "invalid_client", text: "401 invalid_client"},
		{name: "scope-refused", status: 400, body: `{"error":"invalid_scope","error_description":"not allowed to request scope 'admin'"}`, want: ErrUnavailable, wantCode: "invalid_scope", text: "invalid_scope"},
		{name: "server-error-echoing-the-request", status: 500, ctype: "text/html", body: "<pre>client_secret=" + canary + "</pre>", want: ErrUnavailable, text: "answered 500"},
		{name: "not-json", status: 200, ctype: "application/json", body: "<html>hello</html>", want: ErrMalformed, text: "cannot parse"},
		{name: "missing-access-token", status: 200, body: `{"token_type":"bearer","expires_in":60}`, want: ErrMalformed, text: "missing access_token"},
		{name: "negative-expires-in", status: 200, body: `{"access_token":"a","token_type":"bearer","expires_in":-5}`, want: ErrMalformed, text: "expires_in -5"},
		{name: "string-expires-in-zero", status: 200, body: `{"access_token":"a","token_type":"bearer","expires_in":"0"}`, want: ErrMalformed, text: "expires_in 0"},
		{name: "dpop-token", status: 200, body: `{"access_token":"a","token_type":"DPoP","expires_in":60}`, want: ErrMalformed, text: "only Bearer"},
		{name: "error-with-200", status: 200, body: `{"error":"temporarily_unavailable"}`, want: ErrUnavailable, wantCode: "temporarily_unavailable", text: "temporarily_unavailable"},
		{name: "redirect-not-followed", status: 307, header: map[string]string{"Location": other.URL}, want: ErrUnavailable, text: "redirects are not followed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("PCS_TEST_CLIENT_SECRET", canary)
			idp := newFakeIdP(t)
			idp.set(func(w http.ResponseWriter, _ int, _ url.Values) {
				ct := tt.ctype
				if ct == "" {
					ct = "application/json"
				}
				w.Header().Set("Content-Type", ct)
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			})
			in, logs := newTestInjector(t, oauthCred(idp.srv.URL), nil)
			_, _, err := apply(context.Background(), in)
			if !errors.Is(err, tt.want) || !errors.Is(err, ErrUnavailable) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			var te *TokenEndpointError
			if tt.wantCode != "" && (!errors.As(err, &te) || te.Code != tt.wantCode) {
				t.Errorf("err = %#v, want a TokenEndpointError with code %s", err, tt.wantCode)
			}
			for _, s := range []string{tt.text, "payments", idp.srv.URL} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("err %q does not mention %q", err, s)
				}
			}
			b, _ := json.Marshal(in.Status())
			assertNoCanary(t, canary, err.Error(), logs.String(), string(b))
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		t.Setenv("PCS_TEST_CLIENT_SECRET", canary)
		in, _ := newTestInjector(t, oauthCred("http://"+closedAddr(t)+"/oauth2/token"), nil)
		_, _, err := apply(context.Background(), in)
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "unreachable") {
			t.Fatalf("err = %v", err)
		}
	})
}

// A down token endpoint sees one request per back-off step, however many
// callers there are.
func TestOAuthBackoffWhenEndpointDown(t *testing.T) {
	t.Setenv("PCS_TEST_CLIENT_SECRET", canary)
	idp := newFakeIdP(t)
	idp.set(func(w http.ResponseWriter, _ int, _ url.Values) { http.Error(w, "down", http.StatusBadGateway) })
	clock := newClock()
	in, _ := newTestInjector(t, oauthCred(idp.srv.URL), clock)
	for range 20 {
		if _, _, err := apply(context.Background(), in); err == nil {
			t.Fatal("want an error")
		}
	}
	if n := idp.count(); n != 1 {
		t.Fatalf("%d token requests during the first back-off, want 1", n)
	}
	clock.Advance(1100 * time.Millisecond)
	_, _, _ = apply(context.Background(), in)
	if n := idp.count(); n != 2 {
		t.Errorf("%d token requests after 1.1 s, want 2", n)
	}
}

func TestOAuthGrantedScopesBeyondRequestAreLogged(t *testing.T) {
	t.Setenv("PCS_TEST_CLIENT_SECRET", canary)
	idp := newFakeIdP(t)
	idp.set(func(w http.ResponseWriter, n int, _ url.Values) {
		writeTokenJSON(w, map[string]any{"access_token": "tok", "token_type": "bearer", "expires_in": 60, "scope": "charges:read admin"})
	})
	in, logs := newTestInjector(t, oauthCred(idp.srv.URL), nil)
	info, _, err := apply(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"charges:read", "admin"}, info.Scopes); diff != "" {
		t.Errorf("granted scopes (-want +got):\n%s", diff)
	}
	if !strings.Contains(logs.String(), `"credential_scopes":["admin"]`) {
		t.Errorf("over-broad grant not logged: %s", logs)
	}
}
