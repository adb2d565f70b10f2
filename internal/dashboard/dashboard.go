// Package dashboard owns the operator dashboard served by the admin
// listener at /ui/: the in-memory per-integration time series it draws
// (Series, fed by gateway.Options.OnRecord), the month-to-date SLA view
// computed from usage records, the browser session (login form, session
// cookie, CSRF), the page's JSON API and the actions it proxies to the
// admin API (kill switch, credential refresh, chaos faults), each
// confirmed in the page and logged with who did it.
//
// Everything the browser loads is embedded in the binary (no CDN, no
// framework) and served under a strict Content-Security-Policy. Nothing
// the page or its API returns holds a secret: gateway state is projected
// onto fixed, typed views before it is sent.
package dashboard

import (
	"context"
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/internal/clock"
	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/internal/secret"
	"github.com/portcullis-dev/portcullis/internal/store"
)

//go:embed assets
var assets embed.FS

// Options are the dashboard's collaborators. Series and Token are needed;
// every other source is optional and its section is hidden when nil.
type Options struct {
	// Series is the gateway's in-memory traffic (its Observe is the
	// gateway's OnRecord, or part of it).
	Series *Series
	// Token returns the current admin token (as admin.Options.Token);
	// the login form compares against it, and a rotation ends every session.
	Token func() (secret.Value, bool)
	// Integrations returns the body of GET /api/v1/integrations; nil asks
	// the admin mux given to Mount, in process.
	Integrations func(ctx context.Context) ([]byte, error)
	// Config returns the config served (gateway.Config): vendor.sla targets
	// and credential max_age. nil hides the SLA targets and credential policy.
	Config func() *config.Config
	// Usage holds the usage records the month-to-date SLA is computed from;
	// nil hides the SLA column.
	Usage store.Usage
	// QueueStats reports the async queue's depth and oldest job (for
	// example the store's Stats for fallback.QueueName); nil hides it.
	QueueStats func(ctx context.Context) (depth int, oldest time.Time, err error)
	// Anomalies returns up to n recent anomaly events (anomaly.Hub.Recent);
	// each is shown as kind, integration, route, caller, field, rule,
	// message and time — other fields are dropped. nil hides the section.
	Anomalies func(n int) any
	// Findings returns the next audit findings (a slice of audit.Finding or
	// lint.Finding); shown as id, severity, subject, path, message, fix.
	// nil hides the section.
	Findings func() any
	// Chaos is the chaos admin API handler (chaos.AdminHandler), called in
	// process for GET/POST/DELETE /api/v1/chaos; nil hides chaos controls.
	Chaos http.Handler
	// Logger receives logins, logouts and every action with who did it.
	Logger *slog.Logger
	// Clock is the clock for sessions, SLA and ages (nil: clock.System).
	Clock clock.Clock
	// Secure sets the Secure flag on the session cookie. Set it whenever
	// the admin listener is reached over HTTPS, and on plain http to
	// loopback too: browsers treat http://127.0.0.1 and http://localhost as
	// secure contexts and keep Secure cookies there (the browser tests run
	// that way). Only plain http on a non-loopback address needs false —
	// the browser would drop a Secure cookie — and there the admin token
	// and session cross the network in clear: put TLS in front instead.
	Secure bool
}

// Dashboard serves /ui/.
type Dashboard struct {
	o        Options
	log      *slog.Logger
	now      func() time.Time
	sessions *sessions
	sla      *slaTracker
	xorigin  *http.CrossOriginProtection
	failures *throttle // failed logins, per client (throttle.go)
	login    *template.Template
	static   fs.FS
	admin    http.Handler // the admin mux given to Mount
}

const maxLoginBody = 4 << 10

// New returns a Dashboard; mount it with Mount.
func New(o Options) *Dashboard {
	o.Clock = clock.Or(o.Clock)
	if o.Series == nil {
		o.Series = NewSeries(o.Clock)
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	static, _ := fs.Sub(assets, "assets/static") // a compile-time path: cannot fail
	d := &Dashboard{
		o: o, log: log, now: o.Clock.Now, sessions: newSessions(o.Clock.Now),
		xorigin:  http.NewCrossOriginProtection(),
		failures: newThrottle(o.Clock.Now),
		login:    template.Must(template.ParseFS(assets, "assets/login.html")),
		static:   static,
	}
	if o.Usage != nil {
		d.sla = newSLATracker(o.Usage, o.Clock)
	}
	return d
}

// Mount registers /ui/ on the admin mux. The login form and the static
// assets are public; every other /ui/ route needs a dashboard session, and
// every POST also a same-origin request (Sec-Fetch-Site / Origin, via
// http.CrossOriginProtection) carrying the session's CSRF token.
//
// protect (the admin API's bearer check) is not used for /ui/: see the
// comment on sessions in session.go. Actions are carried out by calling
// the admin API handlers on mux in process, with the admin token and
// X-Portcullis-Actor set to the session's actor.
func (d *Dashboard) Mount(mux *http.ServeMux, _ func(http.Handler) http.Handler) {
	d.admin = mux
	h := func(pattern string, f http.HandlerFunc) { mux.Handle(pattern, secureHeaders(f)) }
	h("GET /ui/{$}", d.serveIndex)
	h("GET /ui/login", d.serveLogin)
	h("POST /ui/login", d.postLogin)
	h("GET /ui/static/{file}", d.serveStatic)
	h("POST /ui/logout", d.authed(true, d.postLogout))
	h("GET /ui/api/session", d.authed(false, d.getSession))
	h("GET /ui/api/state", d.authed(false, d.getState))
	h("POST /ui/api/integrations/{name}/{action}", d.authed(true, d.postIntegrationAction))
	h("POST /ui/api/chaos/{action}", d.authed(true, d.postChaos))
	h("/ui/", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
}

// contentSecurityPolicy allows only the dashboard's own files: no inline
// script or style, no framing, no plugins, forms only to itself, and DOM
// writes only through safe APIs (Trusted Types: the page never assigns
// HTML strings).
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; " +
	"require-trusted-types-for 'script'; trusted-types 'none'"

func secureHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// authed runs next with the request's session; without one, pages
// redirect to the login form and API calls get 401. mutating adds the
// cross-origin and CSRF checks.
func (d *Dashboard) authed(mutating bool, next func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, err := d.sessions.lookup(r, d.o.Token)
		if err != nil {
			writeError(w, http.StatusUnauthorized, "log in first")
			return
		}
		if mutating {
			if err := d.xorigin.Check(r); err != nil {
				d.log.Warn("dashboard request refused: cross-origin", "session", s.actor(), "path", r.URL.Path)
				writeError(w, http.StatusForbidden, "cross-origin request refused")
				return
			}
			if err := checkCSRF(r, s); err != nil {
				d.log.Warn("dashboard request refused: bad CSRF token", "session", s.actor(), "path", r.URL.Path)
				writeError(w, http.StatusForbidden, "missing or wrong CSRF token; reload the page")
				return
			}
		}
		next(w, r, s)
	}
}

func (d *Dashboard) serveIndex(w http.ResponseWriter, r *http.Request) {
	if _, err := d.sessions.lookup(r, d.o.Token); err != nil {
		http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
		return
	}
	b, _ := assets.ReadFile("assets/index.html")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(b)
}

func (d *Dashboard) serveStatic(w http.ResponseWriter, r *http.Request) {
	// Only flat file names: FileServerFS would also list directories.
	name := r.PathValue("file")
	if strings.ContainsAny(name, "/\\") || strings.HasPrefix(name, ".") {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeFileFS(w, r, d.static, name)
}

type loginPage struct{ Error string }

func (d *Dashboard) renderLogin(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = d.login.Execute(w, loginPage{Error: msg})
}

func (d *Dashboard) serveLogin(w http.ResponseWriter, r *http.Request) {
	if _, err := d.sessions.lookup(r, d.o.Token); err == nil {
		http.Redirect(w, r, "/ui/", http.StatusSeeOther)
		return
	}
	d.renderLogin(w, http.StatusOK, "")
}

func (d *Dashboard) postLogin(w http.ResponseWriter, r *http.Request) {
	// A cross-site login form would log the victim in as us (login CSRF).
	if err := d.xorigin.Check(r); err != nil {
		d.renderLogin(w, http.StatusForbidden, "Cross-origin login refused.")
		return
	}
	// Throttled: answered before the token is read, so the answer says
	// nothing about it (throttle.go).
	client := d.failures.client(r)
	if ok, wait := d.failures.allowed(client); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(wait.Seconds())))))
		d.renderLogin(w, http.StatusTooManyRequests, "Too many failed logins from here; wait a moment.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginBody)
	if err := r.ParseForm(); err != nil {
		d.renderLogin(w, http.StatusBadRequest, "Bad form.")
		return
	}
	tok, ok := checkToken(r.PostForm.Get("token"), d.o.Token)
	if !ok {
		d.failures.failed(client)
		d.log.Warn("dashboard login failed", "remote", r.RemoteAddr)
		d.renderLogin(w, http.StatusUnauthorized, "Wrong admin token.")
		return
	}
	id, s := d.sessions.create(tok)
	http.SetCookie(w, d.cookie(id, int(SessionMax/time.Second)))
	if strings.HasPrefix(client, "addr:") {
		http.SetCookie(w, &http.Cookie{
			Name: deviceCookie, Value: d.failures.newDevice(), Path: "/ui/login", MaxAge: int(deviceMaxAge / time.Second),
			HttpOnly: true, Secure: d.o.Secure, SameSite: http.SameSiteStrictMode,
		})
	}
	d.log.Info("dashboard login", "session", s.actor(), "remote", r.RemoteAddr)
	http.Redirect(w, r, "/ui/", http.StatusSeeOther)
}

func (d *Dashboard) cookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name: CookieName, Value: value, Path: cookiePath, MaxAge: maxAge,
		HttpOnly: true, Secure: d.o.Secure, SameSite: http.SameSiteStrictMode,
	}
}

func (d *Dashboard) postLogout(w http.ResponseWriter, r *http.Request, s *session) {
	d.sessions.end(r)
	http.SetCookie(w, d.cookie("", -1))
	d.log.Info("dashboard logout", "session", s.actor())
	writeJSON(w, http.StatusOK, map[string]any{"logged_out": true})
}

func (d *Dashboard) getSession(w http.ResponseWriter, _ *http.Request, s *session) {
	writeJSON(w, http.StatusOK, map[string]any{"actor": s.actor(), "csrf": s.csrf, "expires": s.created.Add(SessionMax)})
}
