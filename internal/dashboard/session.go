package dashboard

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/portcullis-dev/portcullis/internal/secret"
)

// Why a server-side session rather than the admin token in a cookie (which
// admin.Cookie and the admin API's protect() would also accept):
//   - the token never sits in the browser's cookie jar, on disk or in a
//     cookie header on every request: a stolen cookie is one session,
//     bounded in time, not the admin token itself;
//   - logout really ends the session server-side;
//   - each session has a short id for the log ("admin:1a2b3c4d"), so an
//     action can be traced to a login without ever logging the token;
//   - the CSRF token is bound to the session.
//
// Sessions live in memory: a restart logs everyone out, and each replica's
// admin listener has its own (the dashboard shows that replica's series).
// The JSON admin API keeps bearer auth; /ui/ does not accept the bearer
// token or the raw-token cookie, so every /ui/ action goes through the
// CSRF check.
const (
	// CookieName is the session cookie of the dashboard.
	CookieName = "portcullis_session"
	cookiePath = "/ui/"
	// SessionIdle ends a session nobody used for this long (the page polls,
	// so an open dashboard stays logged in).
	SessionIdle = 30 * time.Minute
	// SessionMax ends a session this long after login, used or not.
	SessionMax = 12 * time.Hour
	// maxSessions bounds memory; the oldest session is dropped first.
	maxSessions = 64
	// CSRFHeader carries the per-session CSRF token on every POST.
	CSRFHeader = "X-CSRF-Token"
)

// Errors of the session layer.
var (
	ErrNoSession = errors.New("dashboard: no valid session")
	ErrBadCSRF   = errors.New("dashboard: missing or wrong CSRF token")
)

type session struct {
	key       [32]byte // sha256 of the cookie value; the value itself is not kept
	short     string   // first 8 hex digits of another hash of it, for logs
	csrf      string
	tokenHash [32]byte // sha256 of the admin token at login: a rotation ends the session
	created   time.Time
	lastSeen  time.Time
}

// actor is how logs and the gateway's kill-switch record name the session.
func (s *session) actor() string { return "admin:" + s.short }

type sessions struct {
	now func() time.Time
	mu  sync.Mutex
	m   map[[32]byte]*session
}

func newSessions(now func() time.Time) *sessions {
	return &sessions{now: now, m: map[[32]byte]*session{}}
}

func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func tokenDigest(v secret.Value) [32]byte { return sha256.Sum256([]byte(v.Reveal())) }

// create starts a session for someone who presented token; it returns the
// cookie value.
func (ss *sessions) create(token secret.Value) (string, *session) {
	id := randomToken()
	now := ss.now()
	short := sha256.Sum256([]byte("log:" + id))
	s := &session{
		key: sha256.Sum256([]byte(id)), short: hex.EncodeToString(short[:4]), csrf: randomToken(),
		tokenHash: tokenDigest(token), created: now, lastSeen: now,
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.pruneLocked(now)
	for len(ss.m) >= maxSessions {
		var oldest *session
		for _, o := range ss.m {
			if oldest == nil || o.created.Before(oldest.created) {
				oldest = o
			}
		}
		delete(ss.m, oldest.key)
	}
	ss.m[s.key] = s
	return id, s
}

func (ss *sessions) pruneLocked(now time.Time) {
	for k, s := range ss.m {
		if ss.expired(s, now) {
			delete(ss.m, k)
		}
	}
}

func (ss *sessions) expired(s *session, now time.Time) bool {
	return now.Sub(s.lastSeen) > SessionIdle || now.Sub(s.created) > SessionMax
}

// lookup returns the live session of r's cookie, still valid for the
// current admin token (ok=false from token: no token configured, so no
// session is valid).
func (ss *sessions) lookup(r *http.Request, token func() (secret.Value, bool)) (*session, error) {
	c, err := r.Cookie(CookieName)
	if err != nil || c.Value == "" {
		return nil, ErrNoSession
	}
	key := sha256.Sum256([]byte(c.Value))
	now := ss.now()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.m[key]
	if s == nil {
		return nil, ErrNoSession
	}
	if ss.expired(s, now) {
		delete(ss.m, key)
		return nil, ErrNoSession
	}
	want, ok := secret.Value{}, false
	if token != nil {
		want, ok = token()
	}
	cur := tokenDigest(want)
	if !ok || want.IsZero() || subtle.ConstantTimeCompare(cur[:], s.tokenHash[:]) != 1 {
		delete(ss.m, key)
		return nil, ErrNoSession
	}
	s.lastSeen = now
	cp := *s
	return &cp, nil
}

// end removes r's session, if any.
func (ss *sessions) end(r *http.Request) {
	if c, err := r.Cookie(CookieName); err == nil {
		key := sha256.Sum256([]byte(c.Value))
		ss.mu.Lock()
		delete(ss.m, key)
		ss.mu.Unlock()
	}
}

// checkCSRF compares the request's CSRF header with the session's.
func checkCSRF(r *http.Request, s *session) error {
	got := r.Header.Get(CSRFHeader)
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(s.csrf)) != 1 {
		return ErrBadCSRF
	}
	return nil
}

// checkToken reports whether presented is the current admin token,
// comparing digests so the time taken does not depend on either length.
func checkToken(presented string, token func() (secret.Value, bool)) (secret.Value, bool) {
	if token == nil || presented == "" {
		return secret.Value{}, false
	}
	want, ok := token()
	if !ok || want.IsZero() {
		return secret.Value{}, false
	}
	a, b := sha256.Sum256([]byte(presented)), tokenDigest(want)
	if subtle.ConstantTimeCompare(a[:], b[:]) != 1 {
		return secret.Value{}, false
	}
	return want, true
}
