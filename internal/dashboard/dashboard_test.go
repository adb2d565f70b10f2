package dashboard

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/portcullis-dev/portcullis/internal/secret"
)

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

func TestLogin(t *testing.T) {
	r := newRig(t, rigOptions{secure: true})
	tests := []struct {
		name       string
		token      string
		hdr        map[string]string
		wantStatus int
		wantCookie bool
	}{
		{name: "right-token", token: canaryAdmin, wantStatus: http.StatusSeeOther, wantCookie: true},
		{name: "wrong-token", token: "pa_wrong", wantStatus: http.StatusUnauthorized},
		{name: "empty-token", token: "", wantStatus: http.StatusUnauthorized},
		{name: "token-prefix", token: canaryAdmin[:10], wantStatus: http.StatusUnauthorized},
		{name: "cross-site-form", token: canaryAdmin, hdr: map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
			wantStatus: http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := r.newClient(t)
			hdr := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
			for k, v := range tt.hdr {
				hdr[k] = v
			}
			resp, body := c.do(http.MethodPost, "/ui/login", strings.NewReader("token="+tt.token), hdr)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			var got *http.Cookie
			for _, ck := range resp.Cookies() {
				if ck.Name == CookieName {
					got = ck
				}
			}
			if (got != nil) != tt.wantCookie {
				t.Fatalf("session cookie set = %v, want %v", got != nil, tt.wantCookie)
			}
			if got != nil {
				attrs := []any{got.HttpOnly, got.Secure, got.SameSite, got.Path}
				if d := cmp.Diff([]any{true, true, http.SameSiteStrictMode, "/ui/"}, attrs); d != "" {
					t.Errorf("cookie attributes (HttpOnly, Secure, SameSite, Path) (-want +got):\n%s", d)
				}
				if strings.Contains(got.Value, canaryAdmin) {
					t.Error("the session cookie holds the admin token")
				}
			}
			if strings.Contains(body, canaryAdmin) {
				t.Error("the login answer echoes the admin token")
			}
		})
	}
	if strings.Contains(r.logs.String(), canaryAdmin) {
		t.Error("the admin token reached the log")
	}
}

func TestLoginFailuresAreRateLimited(t *testing.T) {
	r := newRig(t, rigOptions{})
	c := r.newClient(t)
	limited := 0
	for range loginFailBurst + 5 {
		if resp := c.login("pa_guess"); resp.StatusCode == http.StatusTooManyRequests {
			limited++
		}
	}
	if limited == 0 {
		t.Fatalf("%d wrong tokens in a row were never answered 429", loginFailBurst+5)
	}
	// While limited, even the right token waits: the limit is not an oracle.
	if resp := c.login(canaryAdmin); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("right token during the lock-out: %d, want 429", resp.StatusCode)
	}
}

// TestProtectedRoutes is the issue's "a request without the cookie or with
// a bad CSRF token is refused", for every route.
func TestProtectedRoutes(t *testing.T) {
	r := newRig(t, rigOptions{})
	good := r.newClient(t)
	if resp := good.login(canaryAdmin); resp.StatusCode != http.StatusSeeOther || good.csrf == "" {
		t.Fatalf("login: %d, csrf %q", resp.StatusCode, good.csrf)
	}
	other := r.newClient(t)
	other.login(canaryAdmin) // a second session: its CSRF token must not work for the first
	anon := r.newClient(t)
	csrf := func(c *client) map[string]string { return map[string]string{CSRFHeader: c.csrf} }
	tests := []struct {
		name   string
		c      *client
		method string
		path   string
		hdr    map[string]string
		want   int
	}{
		{"state-no-cookie", anon, "GET", "/ui/api/state", nil, 401},
		{"session-no-cookie", anon, "GET", "/ui/api/session", nil, 401},
		{"index-no-cookie-redirects", anon, "GET", "/ui/", nil, 303},
		{"disable-no-cookie", anon, "POST", "/ui/api/integrations/payments/disable", csrf(good), 401},
		{"disable-no-csrf", good, "POST", "/ui/api/integrations/payments/disable", nil, 403},
		{"disable-wrong-csrf", good, "POST", "/ui/api/integrations/payments/disable", map[string]string{CSRFHeader: "x"}, 403},
		{"disable-other-sessions-csrf", good, "POST", "/ui/api/integrations/payments/disable", csrf(other), 403},
		{"disable-cross-site", good, "POST", "/ui/api/integrations/payments/disable",
			map[string]string{CSRFHeader: good.csrf, "Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}, 403},
		{"disable-foreign-origin", good, "POST", "/ui/api/integrations/payments/disable",
			map[string]string{CSRFHeader: good.csrf, "Sec-Fetch-Site": "", "Origin": "https://evil.example"}, 403},
		{"chaos-no-csrf", good, "POST", "/ui/api/chaos/start", nil, 403},
		{"logout-no-csrf", good, "POST", "/ui/logout", nil, 403},
		{"unknown-action", good, "POST", "/ui/api/integrations/payments/delete", csrf(good), 404},
		{"unknown-integration", good, "POST", "/ui/api/integrations/nope/disable", csrf(good), 404},
		{"state-with-session", good, "GET", "/ui/api/state", nil, 200},
		{"index-with-session", good, "GET", "/ui/", nil, 200},
		{"login-page-public", anon, "GET", "/ui/login", nil, 200},
		{"asset-public", anon, "GET", "/ui/static/app.js", nil, 200},
		{"asset-missing", anon, "GET", "/ui/static/nope.js", nil, 404},
		{"unknown-page", good, "GET", "/ui/nope", nil, 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, _ := tt.c.do(tt.method, tt.path, nil, tt.hdr)
			if resp.StatusCode != tt.want {
				t.Errorf("%s %s: %d, want %d", tt.method, tt.path, resp.StatusCode, tt.want)
			}
			// Every /ui/ answer carries the strict headers, refusals too.
			if got := resp.Header.Get("Content-Security-Policy"); got != contentSecurityPolicy {
				t.Errorf("CSP = %q", got)
			}
			if got := resp.Header.Get("X-Frame-Options"); got != "DENY" {
				t.Errorf("X-Frame-Options = %q", got)
			}
		})
	}
	if r.gw.Config() == nil || disabled(t, good, "payments") {
		t.Error("a refused request flipped the kill switch")
	}
	// The same request with the right token and origin goes through: the
	// refusals above were for the reasons tested, not a broken route.
	resp, body := good.do("POST", "/ui/api/integrations/payments/disable", nil, csrf(good))
	if resp.StatusCode != 200 || !disabled(t, good, "payments") {
		t.Fatalf("disable with session + CSRF: %d %s", resp.StatusCode, body)
	}
}

func disabled(t *testing.T, c *client, name string) bool {
	t.Helper()
	_, body := c.do("GET", "/ui/api/state", nil, nil)
	var st StateView
	if err := jsonUnmarshal(body, &st); err != nil {
		t.Fatalf("state: %v: %s", err, body)
	}
	for _, in := range st.Integrations {
		if in.Name == name {
			return in.Disabled
		}
	}
	t.Fatalf("no integration %s in state", name)
	return false
}

func TestLogoutEndsTheSession(t *testing.T) {
	r := newRig(t, rigOptions{})
	c := r.newClient(t)
	c.login(canaryAdmin)
	if resp, _ := c.do("POST", "/ui/logout", nil, map[string]string{CSRFHeader: c.csrf}); resp.StatusCode != 200 {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	if resp, _ := c.do("GET", "/ui/api/state", nil, nil); resp.StatusCode != 401 {
		t.Errorf("state after logout: %d, want 401", resp.StatusCode)
	}
}

func TestTokenRotationEndsSessions(t *testing.T) {
	r := newRig(t, rigOptions{})
	c := r.newClient(t)
	c.login(canaryAdmin)
	rotated := "pa_rotated_token_0123456789"
	r.adminToken.Store(&rotated)
	if resp, _ := c.do("GET", "/ui/api/state", nil, nil); resp.StatusCode != 401 {
		t.Errorf("state after the admin token rotated: %d, want 401", resp.StatusCode)
	}
}

func TestSessionExpiry(t *testing.T) {
	now := time.Date(2026, 7, 1, 2, 0, 0, 0, time.UTC)
	ss := newSessions(func() time.Time { return now })
	tok := func() (secret.Value, bool) { return secret.New(canaryAdmin), true }
	id, _ := ss.create(secret.New(canaryAdmin))
	req := func() *http.Request {
		r, _ := http.NewRequest("GET", "/ui/api/state", nil)
		r.AddCookie(&http.Cookie{Name: CookieName, Value: id})
		return r
	}
	tests := []struct {
		name    string
		advance time.Duration
		wantOK  bool
	}{
		{"fresh", 0, true},
		{"used-within-idle", SessionIdle - time.Minute, true},
		{"used-again-within-idle", SessionIdle - time.Minute, true},
		{"idle-too-long", SessionIdle + time.Second, false},
	}
	for _, tt := range tests {
		now = now.Add(tt.advance)
		_, err := ss.lookup(req(), tok)
		if (err == nil) != tt.wantOK {
			t.Errorf("%s: lookup err = %v, want ok=%v", tt.name, err, tt.wantOK)
		}
	}
	// Absolute lifetime: a session kept busy still ends after SessionMax.
	created := now
	id, _ = ss.create(secret.New(canaryAdmin))
	var endedAfter time.Duration
	for endedAfter == 0 && now.Sub(created) < 2*SessionMax {
		now = now.Add(20 * time.Minute)
		if _, err := ss.lookup(req(), tok); err != nil {
			endedAfter = now.Sub(created)
		}
	}
	if endedAfter <= SessionMax-20*time.Minute || endedAfter > SessionMax+20*time.Minute {
		t.Errorf("a busy session ended after %v, want just after SessionMax (%v)", endedAfter, SessionMax)
	}
}

func TestStaticAssets(t *testing.T) {
	r := newRig(t, rigOptions{})
	c := r.newClient(t)
	for _, tt := range []struct{ path, ctype string }{
		{"/ui/static/app.js", "text/javascript"},
		{"/ui/static/app.css", "text/css"},
	} {
		resp, body := c.do("GET", tt.path, nil, nil)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), tt.ctype) || len(body) < 100 {
			t.Errorf("%s: %d %q (%d bytes)", tt.path, resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
		}
		if strings.Contains(body, "innerHTML") || strings.Contains(body, "http://") && tt.ctype == "text/css" {
			t.Errorf("%s: uses innerHTML or an outside URL", tt.path)
		}
	}
	// No inline script or style anywhere in the pages (the CSP would block it).
	for _, p := range []string{"assets/index.html", "assets/login.html"} {
		b, _ := assets.ReadFile(p)
		s := string(b)
		if strings.Contains(s, "<style") || strings.Contains(s, " style=") || strings.Contains(s, "onclick") ||
			strings.Count(s, "<script") != strings.Count(s, "<script src=") {
			t.Errorf("%s has inline script or style", p)
		}
	}
}
