package dashboard

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/portcullis-dev/portcullis/internal/clock"
	"github.com/portcullis-dev/portcullis/internal/observe"
	"github.com/portcullis-dev/portcullis/internal/sla"
	"github.com/portcullis-dev/portcullis/internal/store"
)

// browser starts headless Chromium (PORTCULLIS_CHROMIUM, default
// /usr/bin/chromium; scripts/install-chromium.sh installs it) with a fresh
// profile and returns a chromedp context for one tab.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := os.Getenv("PORTCULLIS_CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("PORTCULLIS_REQUIRE_SERVERS") == "1" {
			t.Fatalf("chromium not found at %s (run scripts/install-chromium.sh): %v", path, err)
		}
		t.Skipf("chromium not found at %s; run scripts/install-chromium.sh", path)
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1200, 900),
	)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first Run starts the browser; it must not carry a timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// screenshotDir is $PORTCULLIS_SCREENSHOT_DIR or a test temp dir.
func screenshotDir(t *testing.T) string {
	if d := os.Getenv("PORTCULLIS_SCREENSHOT_DIR"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

func shoot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	p := filepath.Join(dir, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s (%d KB)", p, len(png)/1024)
}

// within runs a with a deadline, failing the test with what it was doing.
func within[T any](t *testing.T, ctx context.Context, d time.Duration, what string, a chromedp.Action[T]) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	v, err := chromedp.Run(c, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// seedHistory feeds the series an hour of synthetic traffic ending a
// minute ago, so the sparklines have a shape, and the store a month of
// usage records, so the SLA column has numbers (maps' p99 is over its
// 300 ms SLA). The live traffic the test drives comes after both. clk is
// the series' clock.
func seedHistory(t *testing.T, r *rig, clk *shiftClock) {
	t.Helper()
	base := time.Now()
	for i := Buckets - 1; i >= 2; i-- {
		clk.set(base.Add(-time.Duration(i) * BucketWidth))
		n := 30 + int(12*math.Sin(float64(i)/9))
		for k := range n {
			for _, name := range []string{"payments", "maps"} {
				lat := 60 + 25*math.Sin(float64(i)/14) + float64((k*37)%20)
				rec := &observe.Record{Integration: name, Status: 200, Attempts: 1, UpstreamLatency: time.Duration(lat * float64(time.Millisecond))}
				if k < 2 && (i*7)%23 == 0 {
					rec.Status = 404
				}
				if name == "maps" {
					rec.UpstreamLatency /= 2
				}
				r.series.Observe(rec)
			}
		}
	}
	clk.set(time.Time{})
	var recs []store.UsageRecord
	k := 0
	for at := sla.MonthStart(base, 0); at.Before(base.Add(-5 * time.Minute)); at = at.Add(10 * time.Minute) {
		k++
		recs = append(recs,
			store.UsageRecord{Time: at, Caller: "billing", Integration: "payments", Status: 200, LatencyMS: float64(150 + k%200)},
			store.UsageRecord{Time: at, Caller: "billing", Integration: "maps", Status: 200, LatencyMS: float64(90 + (k%40)*10)})
	}
	if err := r.store.AppendUsage(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
}

// shiftClock is the system clock unless set.
type shiftClock struct {
	clock.Clock
	mu sync.Mutex
	t  time.Time
}

func (c *shiftClock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *shiftClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.t.IsZero() {
		return time.Now()
	}
	return c.t
}

const healthOf = `(() => { const c = document.getElementById('int-%s'); return c ? c.dataset.health : ''; })()`

// TestBrowser is issue 9's acceptance test in headless Chromium: log in,
// see an integration turn red when its vendor fails, flip the kill switch
// and see calls refused, log out; no secret on the page.
func TestBrowser(t *testing.T) {
	ctx := browser(t)
	clk := &shiftClock{Clock: clock.System()}
	r := newRig(t, rigOptions{
		seriesClock: clk, secure: true,
		anomalies: func(int) any {
			return []map[string]any{{
				"kind": "schema_drift", "integration": "payments", "route": "GET /v1/charges/{id}",
				"field": "$.charge.amount", "rule": "type", "message": "field $.charge.amount changed type: number → string",
				"time": time.Now().Add(-3 * time.Minute), "value": canaryVendorKey, // must never be shown
			}}
		},
		findings: func() any {
			return []map[string]any{{"id": "vendor-review-due", "severity": "warning", "subject": "maps vendor",
				"message": "vendor review is due in 12 days", "fix": "review the vendor and update last_review",
				"evidence": canaryAdmin}}
		},
	})
	seedHistory(t, r, clk)
	dir := screenshotDir(t)

	// 1. Log in: the dashboard redirects to the form; a wrong token is refused.
	within(t, ctx, 20*time.Second, "open the login form", chromedp.Steps(
		chromedp.Navigate(r.admin.URL+"/ui/"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), "pa_wrong_guess"),
		chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("#login-error")),
	))
	shoot(t, ctx, dir, "01-login-refused")
	within(t, ctx, 20*time.Second, "log in", chromedp.Steps(
		chromedp.SendKeys(chromedp.CSS("#token"), canaryAdmin),
		chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("#int-payments")),
	))
	jar := within(t, ctx, 5*time.Second, "read cookies", func(ctx context.Context, tg *chromedp.Target) (network.GetCookiesResult, error) {
		return cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{URLs: []string{r.admin.URL + "/ui/"}})
	})
	var session *network.Cookie
	for _, c := range jar.Cookies {
		if c.Name == CookieName {
			session = c
		}
		if strings.Contains(c.Value, canaryAdmin) {
			t.Errorf("cookie %s holds the admin token", c.Name)
		}
	}
	if session == nil || !session.HTTPOnly || !session.Secure || session.SameSite != network.CookieSameSiteStrict {
		t.Fatalf("session cookie %+v: want HttpOnly, Secure, SameSite=Strict", session)
	}
	if js := within(t, ctx, 5*time.Second, "document.cookie", chromedp.Evaluate[string]("document.cookie")); js != "" {
		t.Errorf("page script can read cookies: %q", js)
	}

	// 2. Healthy traffic: green.
	r.drive(t, 20)
	within(t, ctx, 15*time.Second, "payments green", chromedp.Poll[bool](fmt.Sprintf(healthOf, "payments")+" === 'ok'"))
	shoot(t, ctx, dir, "02-healthy")

	// 3. The vendor starts failing: red within a few polls.
	r.payments.failing.Store(true)
	r.drive(t, 25)
	within(t, ctx, 15*time.Second, "payments red", chromedp.Poll[bool](fmt.Sprintf(healthOf, "payments")+" === 'bad'"))
	if h := within(t, ctx, 5*time.Second, "maps health", chromedp.Evaluate[string](fmt.Sprintf(healthOf, "maps"))); h != "ok" {
		t.Errorf("maps (healthy vendor) is %q, want ok", h)
	}
	reasons := within(t, ctx, 5*time.Second, "reasons", chromedp.Text(chromedp.CSS("#int-payments .reasons")))
	if !strings.Contains(reasons, "5xx") && !strings.Contains(reasons, "breaker open") {
		t.Errorf("red card says %q; want the 5xx rate or the open breaker", reasons)
	}
	if sla := within(t, ctx, 5*time.Second, "maps SLA", chromedp.Text(chromedp.CSS(`#int-maps [data-role="sla-p99"]`))); !strings.Contains(sla, "✗") {
		t.Errorf("maps p99 month to date reads %q; its seeded p99 is over the 300 ms SLA", sla)
	}
	shoot(t, ctx, dir, "03-vendor-failing")

	// 4. Kill switch: confirm in the dialog, then calls are refused.
	within(t, ctx, 10*time.Second, "kill switch", chromedp.Steps(
		chromedp.Click(chromedp.CSS(`#int-payments button[data-action="kill"]`)),
		chromedp.WaitVisible(chromedp.CSS("#confirm")),
	))
	shoot(t, ctx, dir, "04-confirm-kill-switch")
	if _, code := r.call(t, "/payments/v1/charges/ch_before"); code == "integration_disabled" {
		t.Fatal("the kill switch flipped before the confirm step")
	}
	within(t, ctx, 10*time.Second, "confirm", chromedp.Click(chromedp.CSS("#confirm-ok")))
	within(t, ctx, 10*time.Second, "payments off", chromedp.Poll[bool](fmt.Sprintf(healthOf, "payments")+" === 'off'"))
	if status, code := r.call(t, "/payments/v1/charges/ch_after"); status != http.StatusServiceUnavailable || code != "integration_disabled" {
		t.Errorf("call after the kill switch: %d %q, want 503 integration_disabled", status, code)
	}
	if !strings.Contains(r.logs.String(), `"by":"admin:`) {
		t.Error("the kill switch flip was not logged with the admin session as actor")
	}
	shoot(t, ctx, dir, "05-kill-switch-on")

	// 5. A forged request from the page's own origin but without the
	// session's CSRF token is refused, and so is one with no cookie.
	forged := within(t, ctx, 10*time.Second, "forged POST", chromedp.Evaluate[int](
		`fetch('/ui/api/integrations/payments/enable', {method: 'POST', headers: {'X-CSRF-Token': 'forged'}}).then(r => r.status)`,
		chromedp.EvalAwaitPromise))
	if forged != http.StatusForbidden {
		t.Errorf("POST with a bad CSRF token from the page: %d, want 403", forged)
	}
	noCookie := within(t, ctx, 10*time.Second, "POST without cookie", chromedp.Evaluate[int](
		`fetch('/ui/api/integrations/payments/enable', {method: 'POST', credentials: 'omit'}).then(r => r.status)`,
		chromedp.EvalAwaitPromise))
	if noCookie != http.StatusUnauthorized {
		t.Errorf("POST without the cookie: %d, want 401", noCookie)
	}
	if h := within(t, ctx, 5*time.Second, "still off", chromedp.Evaluate[string](fmt.Sprintf(healthOf, "payments"))); h != "off" {
		t.Errorf("after refused requests payments is %q, want off", h)
	}

	// 6. Nothing on the page or in its API answers holds a secret.
	html := within(t, ctx, 5*time.Second, "page HTML", chromedp.OuterHTML(chromedp.CSS("html")))
	apis := within(t, ctx, 10*time.Second, "API bodies", chromedp.Evaluate[string](
		`Promise.all(['/ui/api/state','/ui/api/session'].map(u => fetch(u).then(r => r.text()))).then(a => a.join('\n'))`,
		chromedp.EvalAwaitPromise))
	for _, canary := range []string{canaryVendorKey, canaryAdmin} {
		if strings.Contains(html, canary) || strings.Contains(apis, canary) || strings.Contains(r.logs.String(), canary) {
			t.Errorf("secret %q… leaked into the page, an API answer or the log", canary[:12])
		}
	}
	if !r.payments.sawKey.Load() {
		t.Error("the vendor never saw the credential: the canary test proves nothing")
	}
	if !strings.Contains(html, "$.charge.amount") || !strings.Contains(html, "vendor review is due") {
		t.Error("the anomaly or the audit finding is not on the page")
	}

	// 7. Log out: back to the form, and the old cookie is dead.
	within(t, ctx, 10*time.Second, "log out", chromedp.Steps(
		chromedp.Click(chromedp.CSS("#logout")),
		chromedp.WaitVisible(chromedp.CSS("#token")),
	))
	shoot(t, ctx, dir, "06-logged-out")
	req, _ := http.NewRequest(http.MethodGet, r.admin.URL+"/ui/api/state", nil)
	req.AddCookie(&http.Cookie{Name: CookieName, Value: session.Value})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the session cookie still works after logout: %d", resp.StatusCode)
	}
}
