package credential

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
)

// ErrConfig marks a credential block NewInjector cannot build (config
// validation normally catches these first).
var ErrConfig = errors.New("invalid credential config")

// Info describes the credential put on one outbound request. The gateway
// logs it per request; it never holds the secret or the token.
type Info struct {
	// Version is the secret's version (static types), or the token or
	// assertion sequence number ("token-3", "jwt-7") for derived ones.
	Version string
	// Scopes are the OAuth2 scopes granted (or, for jwt_bearer, claimed).
	Scopes []string

	// redact masks the values injected on this attempt in the vendor's
	// response (the Transport applies it); nil for injectors of other
	// packages. It is never copied to an info sink.
	redact *redactor
}

// Injector puts an integration's credential on outbound requests.
type Injector interface {
	// Apply sets the credential on req, which must be the transport's own
	// clone of the caller's request. It never sets an expired token.
	Apply(ctx context.Context, req *http.Request) (Info, error)
	// Refresh fetches fresh material now (admin refresh-credentials). A
	// successful Refresh clears the revoked mark and the revocation
	// evidence. (A vendor rejection refreshes through the Transport.)
	Refresh(ctx context.Context) error
	// Status reports the credential for the admin API and the audit.
	Status() Status
}

// Status is the admin and audit view of a credential: names, versions and
// times, never material.
type Status struct {
	Integration string `json:"integration"`
	Type        string `json:"type"`
	// Ref is the secret reference (client secret or key for derived types).
	Ref string `json:"ref"`
	// Version is what Info.Version reports for the current material.
	Version string `json:"version,omitempty"`
	// SecretVersion is the version of the client secret or private key
	// behind a token or assertion (empty for static types).
	SecretVersion string `json:"secret_version,omitempty"`
	// Created is when the secret version was created (KV created_time, file
	// modification time) or when the token or assertion was issued.
	Created time.Time `json:"created,omitzero"`
	// LastRefresh is the last successful read or token fetch.
	LastRefresh time.Time `json:"last_refresh,omitzero"`
	// Expires is when the current token or assertion expires.
	Expires   time.Time `json:"expires,omitzero"`
	Scopes    []string  `json:"scopes,omitempty"`
	Revoked   bool      `json:"revoked"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
	// LastError is the last failure, scrubbed of known secrets.
	LastError string `json:"last_error,omitempty"`
}

// NewInjector builds the injector for one integration's credential block.
// It reads no secret: call Refresh at start-up to fail fast on an
// unreachable store or a missing key (its error names the integration and
// the reference, never the value).
func NewInjector(integration string, c *Spec, r *Resolver, o Options) (Injector, error) {
	if c == nil {
		return nil, fmt.Errorf("integration %s: %w: no credential block", integration, ErrConfig)
	}
	c = provisioned(c)
	g := &guard{integration: integration, typ: c.Type, o: o, log: o.logger().With(logIntegration, integration, logType, c.Type)}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("integration %s: %w: %s", integration, ErrConfig, fmt.Sprintf(format, args...))
	}
	switch c.Type {
	case "bearer", "header", "basic", "query":
		s := &staticInjector{guard: g, r: r, c: c}
		switch {
		case c.Type == "header" && c.Header != "" && !httpguts.ValidHeaderFieldName(c.Header):
			return nil, bad("header %q is not a valid header name", c.Header)
		case c.Type == "basic" && (c.Username == "" || strings.Contains(c.Username, ":")):
			return nil, bad("type basic needs a username without ':'")
		case c.Type == "query" && c.Param == "":
			return nil, bad("type query needs param")
		}
		return s, nil
	case "oauth2_client_credentials":
		return newOAuthInjector(g, c, r, o)
	case "jwt_bearer":
		if c.TokenURL != "" {
			return newOAuthInjector(g, c, r, o)
		}
		return newJWTInjector(g, c, r, o)
	}
	return nil, bad("unknown credential type %q", c.Type)
}

// guard holds what every injector shares: the refresh epoch and cooldown
// that keep a burst of 401s down to one refresh, the revocation evidence
// and the revoked mark.
type guard struct {
	integration, typ string
	o                Options
	log              *slog.Logger

	mu             sync.Mutex
	epoch          uint64 // refreshes finished so far
	flight         *refreshFlight
	lastRefreshErr error
	lastRefresh    time.Time
	revoked        bool
	revokedAt      time.Time
	revokedVersion string
	lastErr        string

	// Revocation evidence (see Transport): suspect is the version that the
	// last vendor-triggered refresh produced; strikes are the distinct
	// callers whose requests the vendor rejected with suspect material
	// since it last accepted the credential (at most revokeQuorum entries).
	suspect       string
	strikes       map[string]struct{}
	vendorRefresh time.Time   // start of the last vendor-triggered refresh
	evidence      atomic.Bool // suspect or strikes set: accepted must look
}

// epochNow is read by the Transport just before Apply.
func (g *guard) epochNow() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.epoch
}

// refresh runs do once however many callers ask at the same time: a caller
// arriving while a refresh runs waits for it. With force false (a vendor
// 401), a caller whose attempt began before a refresh that has finished
// since (epoch > seen) does not start another one; it gets that refresh's
// outcome and retries with the refreshed material. do runs detached from the caller's context.
func (g *guard) refresh(ctx context.Context, seen uint64, force bool, do func(context.Context) error) error {
	g.mu.Lock()
	f := g.flight
	switch {
	case f != nil: // join the refresh in flight
	case !force && g.epoch > seen:
		err := g.lastRefreshErr
		g.mu.Unlock()
		return err
	case !force && !g.vendorRefresh.IsZero() && g.o.now().Sub(g.vendorRefresh) < refreshCooldown:
		// Refreshed moments ago: the material is as fresh as it gets.
		g.mu.Unlock()
		return nil
	default:
		if !force {
			g.vendorRefresh = g.o.now()
		}
		f = &refreshFlight{done: make(chan struct{})}
		g.flight = f
		go g.run(ctx, f, do)
	}
	g.mu.Unlock()
	select {
	case <-f.done:
	case <-ctx.Done():
		return fmt.Errorf("%w: gave up waiting for refresh: %w", ErrUnavailable, ctx.Err())
	}
	if f.err == nil && force {
		g.mu.Lock()
		if g.revoked {
			g.revoked = false
			g.log.Info("credential revoked mark cleared by refresh")
		}
		g.suspect, g.strikes = "", nil
		g.mu.Unlock()
	}
	return f.err
}

type refreshFlight struct {
	done chan struct{}
	err  error // set before done is closed
}

func (g *guard) run(ctx context.Context, f *refreshFlight, do func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.o.fetchTimeout())
	defer cancel()
	err := do(ctx)
	if err != nil && !errors.Is(err, ErrUnavailable) {
		err = fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	g.mu.Lock()
	g.flight, g.lastRefreshErr = nil, err
	g.epoch++
	if err != nil {
		g.lastErr = g.o.scrubString(err.Error())
		g.log.Warn("credential refresh failed", logError, g.lastErr)
	} else {
		g.lastRefresh = g.o.now()
	}
	g.mu.Unlock()
	f.err = err
	close(f.done)
}

// markSuspect records the version a vendor-triggered refresh produced.
func (g *guard) markSuspect(version string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.suspect = version
	g.evidence.Store(true)
}

// strike records that the vendor rejected version on caller's behalf. Only
// suspect material counts; it is marked revoked once revokeQuorum distinct
// callers saw it rejected. strike reports whether the mark is new (so the
// alert fires once).
func (g *guard) strike(version, caller string, status int) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.suspect == "" || version != g.suspect || g.revoked && g.revokedVersion == version {
		return false
	}
	if g.strikes == nil {
		g.strikes = make(map[string]struct{}, revokeQuorum)
	}
	g.strikes[caller] = struct{}{}
	if len(g.strikes) < revokeQuorum {
		g.log.Warn("vendor rejected refreshed credential; not revoked until another caller sees the same", logVersion, version, logStatus, status)
		return false
	}
	g.strikes, g.suspect = nil, ""
	g.revoked, g.revokedAt, g.revokedVersion = true, g.o.now(), version
	g.lastErr = fmt.Sprintf("vendor answered %d to refreshed credential version %s for %d callers", status, version, revokeQuorum)
	g.log.Error("credential revoked: vendor rejected the refreshed credential for several callers", logVersion, version, logStatus, status)
	return true
}

// accepted forgets the evidence: the vendor took the credential. It is
// on every request's path, so it only locks when there is evidence.
func (g *guard) accepted() {
	if !g.evidence.Load() {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.suspect, g.strikes = "", nil
	g.evidence.Store(false)
}

// checkRevoked fails while version is the revoked one; a different version
// (the secret was rotated at its source) clears the mark.
func (g *guard) checkRevoked(version string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.revoked {
		return nil
	}
	if version != g.revokedVersion {
		g.revoked = false
		g.log.Info("credential revoked mark cleared: new version", logVersion, version)
		return nil
	}
	return fmt.Errorf("integration %s: %w: version %s was rejected by the vendor at %s", g.integration, ErrRevoked, version, g.revokedAt.UTC().Format(time.RFC3339))
}

func (g *guard) fail(err error) error {
	g.mu.Lock()
	g.lastErr = g.o.scrubString(err.Error())
	g.mu.Unlock()
	return fmt.Errorf("integration %s: %w", g.integration, err)
}

func (g *guard) status() Status {
	g.mu.Lock()
	defer g.mu.Unlock()
	return Status{Integration: g.integration, Type: g.typ, LastRefresh: g.lastRefresh,
		Revoked: g.revoked, RevokedAt: g.revokedAt, LastError: g.lastErr}
}

// staticInjector serves bearer, header, basic and query: the secret itself
// goes on the request.
type staticInjector struct {
	*guard
	r *Resolver
	c *Spec

	redactMu sync.Mutex
	cur      *material // for the value last injected
}

// material is what a static injector derives from one secret value, once:
// the redactor for responses and, for the header types, the header's
// name and value (shared by the requests that carry it: header values are
// replaced, never written in place).
type material struct {
	red  *redactor
	name string   // canonical header name; "" for query
	val  []string // the header value
	err  error    // the value is not a valid header value
}

var _ Injector = (*staticInjector)(nil)

func (s *staticInjector) Apply(ctx context.Context, req *http.Request) (Info, error) {
	sec, err := s.r.Resolve(ctx, s.c.Secret, s.c.TTL.D, s.c.MaxStale.D)
	if err != nil {
		return Info{}, s.fail(err)
	}
	if err := s.checkRevoked(sec.Version); err != nil {
		return Info{}, err
	}
	v := sec.Value.Reveal()
	m := s.materialFor(v)
	if s.c.Type == "query" {
		req.URL.RawQuery = setQueryParam(req.URL.RawQuery, s.c.Param, v)
	} else if m.err != nil {
		return Info{}, s.fail(&RefError{Ref: sec.Ref, Err: m.err})
	} else {
		req.Header[m.name] = m.val
	}
	return Info{Version: sec.Version, redact: m.red}, nil
}

// materialFor returns the material of value v, building it only when the
// value changed (so the request path allocates none of it per call).
func (s *staticInjector) materialFor(v string) *material {
	s.redactMu.Lock()
	defer s.redactMu.Unlock()
	if s.cur == nil || s.cur.red.raw[0] != v {
		var enc []string
		if s.c.Type == "basic" {
			enc = append(enc, basicEncoding(s.c.Username, v))
		}
		m := &material{red: newRedactor([]string{v}, enc...), name: "Authorization"}
		var value string
		switch s.c.Type {
		case "bearer":
			value = "Bearer " + v
		case "header":
			if s.c.Header != "" {
				m.name = http.CanonicalHeaderKey(s.c.Header)
			}
			value = s.c.Prefix + v
		case "basic":
			value = "Basic " + enc[0]
		case "query":
			m.name = ""
		}
		if m.name != "" {
			m.val, m.err = headerValue(value)
		}
		s.cur = m
	}
	return s.cur
}

func (s *staticInjector) Refresh(ctx context.Context) error { return s.refreshFrom(ctx, 0, true) }

func (s *staticInjector) refreshFrom(ctx context.Context, seen uint64, force bool) error {
	err := s.refresh(ctx, seen, force, func(ctx context.Context) error {
		_, err := s.r.Refresh(ctx, s.c.Secret)
		return err
	})
	if err != nil {
		return s.fail(err)
	}
	return nil
}

func (s *staticInjector) Status() Status {
	st := s.status()
	st.Ref = s.c.Secret.Ref()
	es := s.r.state(s.c.Secret)
	if es.have {
		st.Version, st.Created = es.cur.Version, es.cur.Created
		st.LastRefresh = es.fetched
	}
	if es.lastErr != nil && st.LastError == "" {
		st.LastError = s.o.scrubString(es.lastErr.Error())
	}
	return st
}

func setHeader(req *http.Request, name, value string) error {
	v, err := headerValue(value)
	if err != nil {
		return err
	}
	req.Header[http.CanonicalHeaderKey(name)] = v
	return nil
}

// headerValue is value as a header's values, once checked.
func headerValue(value string) ([]string, error) {
	if !httpguts.ValidHeaderFieldValue(value) {
		return nil, fmt.Errorf("%w: the secret has characters not allowed in an HTTP header (a stray newline?)", ErrMalformed)
	}
	return []string{value}, nil
}

// setQueryParam returns rawQuery with every name=… pair removed (the name
// compared decoded and case-insensitively, since some vendor frameworks read
// parameter names without regard to case) and
// name=value appended. The other pairs are kept byte for byte (re-encoding
// the whole query would reorder it and could break vendors that sign it);
// a caller-supplied value for name never reaches the vendor.
func setQueryParam(rawQuery, name, value string) string {
	var b strings.Builder
	for pair := range strings.SplitSeq(rawQuery, "&") {
		if pair == "" {
			continue
		}
		k, _, _ := strings.Cut(pair, "=")
		if uk, err := url.QueryUnescape(k); err == nil && strings.EqualFold(uk, name) || strings.EqualFold(k, name) {
			continue
		}
		b.WriteString(pair)
		b.WriteByte('&')
	}
	b.WriteString(url.QueryEscape(name))
	b.WriteByte('=')
	b.WriteString(url.QueryEscape(value))
	return b.String()
}
