package credential

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"golang.org/x/sync/singleflight"

	"github.com/portcullis-dev/portcullis/internal/egress"
	"github.com/portcullis-dev/portcullis/internal/secret"
)

// Grant types and assertion types (RFC 6749, RFC 7523).
const (
	grantJWTBearer    = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	assertionTypeJWT  = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	maxTokenSkew      = 10 * time.Second
	tokenRetryMax     = 30 * time.Second
	tokenRetryInitial = time.Second
)

// tokenSource fetches and caches access tokens from a token endpoint with
// golang.org/x/oauth2/clientcredentials, used for one request at a time
// (Config.Token) and wrapped to avoid the traps of its TokenSource:
//   - every fetch gets its own context (Options.FetchTimeout, detached from
//     the caller), so a cancelled caller never breaks later refreshes;
//   - the refresh point is 3/4 of the token's lifetime minus up to 1/10 of
//     it at random (jitter), not a fixed 10 s before expiry;
//   - a token without expires_in is treated as valid for the credential's
//     TTL (default 5m), not forever;
//   - callers never wait on a refresh while the cached token is still
//     usable: the refresh runs in the background, one at a time
//     (singleflight), and callers without a usable token share one request;
//   - a token is never injected past its expiry minus a skew margin
//     (min(10 s, lifetime/10)); an endpoint that is down yields
//     ErrUnavailable, with an exponential back-off (1 s doubling to 30 s) so
//     callers do not turn into a retry storm against it;
//   - private_key_jwt (RFC 7523 §2.2) and the JWT bearer grant (§2.1) are
//     added through EndpointParams, signed by an assertionSigner.
type tokenSource struct {
	integration string
	o           Options
	client      *http.Client
	r           *Resolver
	c           *Spec
	tokenURL    string // with any password redacted, for messages
	signer      *assertionSigner
	sf          singleflight.Group

	mu         sync.Mutex
	tok        *accessToken
	seq        int
	refreshing bool
	failures   int
	nextTry    time.Time
	lastErr    error
}

type accessToken struct {
	value       secret.Value
	typ         string
	scopes      []string
	version     string // "token-N"
	material    string // version of the client secret or key used
	issued      time.Time
	refreshAt   time.Time
	usableUntil time.Time
	expires     time.Time
	redact      *redactor // masks this token in vendor responses
}

func newTokenSource(integration string, c *Spec, r *Resolver, o Options) (*tokenSource, error) {
	c = provisioned(c)
	u, err := url.Parse(c.TokenURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("integration %s: %w: token_url must be an http(s) URL", integration, ErrConfig)
	}
	client, err := o.tokenClient()
	if err != nil {
		return nil, fmt.Errorf("integration %s: %w: %w", integration, ErrConfig, err)
	}
	ts := &tokenSource{integration: integration, o: o, client: client, r: r, c: c, tokenURL: u.Redacted()}
	needKey := c.Type == "jwt_bearer" || c.AuthMethod == "private_key_jwt"
	if needKey {
		s, err := newAssertionSigner(c, r)
		if err != nil {
			return nil, fmt.Errorf("integration %s: %w", integration, err)
		}
		ts.signer = s
	}
	switch {
	case c.Type == "jwt_bearer":
	case c.AuthMethod == "private_key_jwt":
		if c.ClientID == "" {
			return nil, fmt.Errorf("integration %s: %w: private_key_jwt needs client_id", integration, ErrConfig)
		}
	case c.AuthMethod == "" || c.AuthMethod == "basic" || c.AuthMethod == "post":
		if c.ClientID == "" || c.ClientSecret.Ref() == "" {
			return nil, fmt.Errorf("integration %s: %w: auth_method %s needs client_id and client_secret", integration, ErrConfig, c.AuthMethod)
		}
	default:
		return nil, fmt.Errorf("integration %s: %w: auth_method must be basic, post or private_key_jwt", integration, ErrConfig)
	}
	return ts, nil
}

// token returns a usable token, fetching one if there is none.
func (ts *tokenSource) token(ctx context.Context) (*accessToken, error) {
	now := ts.o.now()
	ts.mu.Lock()
	t := ts.tok
	if t != nil && now.Before(t.usableUntil) {
		if !now.Before(t.refreshAt) && !now.Before(ts.nextTry) && !ts.refreshing {
			ts.refreshing = true
			go func() {
				_, _, _ = ts.sf.Do("fetch", ts.fetch)
				ts.mu.Lock()
				ts.refreshing = false
				ts.mu.Unlock()
			}()
		}
		ts.mu.Unlock()
		return t, nil
	}
	if ts.lastErr != nil && now.Before(ts.nextTry) {
		err := ts.lastErr
		ts.mu.Unlock()
		return nil, err
	}
	ts.mu.Unlock()
	return ts.wait(ctx)
}

// forceFetch gets a new token now, sharing a fetch already in flight.
func (ts *tokenSource) forceFetch(ctx context.Context) (*accessToken, error) { return ts.wait(ctx) }

func (ts *tokenSource) wait(ctx context.Context) (*accessToken, error) {
	ch := ts.sf.DoChan("fetch", ts.fetch)
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(*accessToken), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: gave up waiting for a token from %s: %w", ErrUnavailable, ts.tokenURL, ctx.Err())
	}
}

// fetch requests one token and records the outcome.
func (ts *tokenSource) fetch() (any, error) {
	t, err := ts.request()
	now := ts.o.now()
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if err != nil {
		ts.failures++
		d := tokenRetryInitial << min(ts.failures-1, 5)
		ts.nextTry, ts.lastErr = now.Add(min(d, tokenRetryMax)), err
		ts.o.logger().Warn("token request failed", logIntegration, ts.integration, "failures", ts.failures, logError, ts.o.scrubString(err.Error()))
		return nil, err
	}
	ts.seq++
	t.version = "token-" + strconv.Itoa(ts.seq)
	ts.tok, ts.failures, ts.nextTry, ts.lastErr = t, 0, time.Time{}, nil
	return t, nil
}

func (ts *tokenSource) request() (*accessToken, error) {
	ctx, cancel := context.WithTimeout(context.Background(), ts.o.fetchTimeout())
	defer cancel()
	ctx = context.WithValue(ctx, oauth2.HTTPClient, ts.client)
	c := ts.c
	cfg := clientcredentials.Config{
		ClientID:       c.ClientID,
		TokenURL:       c.TokenURL,
		Scopes:         c.Scopes, // only the configured scopes: least privilege
		EndpointParams: url.Values{},
		AuthStyle:      oauth2.AuthStyleInHeader,
	}
	if c.Audience != "" {
		cfg.EndpointParams.Set("audience", c.Audience)
	}
	if c.Resource != "" {
		cfg.EndpointParams.Set("resource", c.Resource)
	}
	var material string
	if c.ClientSecret.Ref() != "" && c.AuthMethod != "private_key_jwt" {
		s, err := ts.r.Resolve(ctx, c.ClientSecret, c.TTL.D, c.MaxStale.D)
		if err != nil {
			return nil, err
		}
		cfg.ClientSecret, material = s.Value.Reveal(), s.Version
		if c.AuthMethod == "post" {
			cfg.AuthStyle = oauth2.AuthStyleInParams
		}
	} else {
		cfg.AuthStyle = oauth2.AuthStyleInParams // client_id only, or none
	}
	if ts.signer != nil {
		claims := map[string]any{"iss": c.ClientID, "sub": c.ClientID, "aud": c.TokenURL}
		if c.Type == "jwt_bearer" { // RFC 7523 §2.1: the JWT is the grant
			claims = selfSignedClaims(c)
			if claims["aud"] == nil {
				claims["aud"] = c.TokenURL
			}
			cfg.EndpointParams.Set("grant_type", grantJWTBearer)
		}
		a, keyVersion, err := ts.signer.sign(ctx, claims, c.TokenTTL.D, ts.o.now())
		if err != nil {
			return nil, err
		}
		material = keyVersion
		if c.Type == "jwt_bearer" {
			cfg.EndpointParams.Set("assertion", a)
		} else {
			cfg.EndpointParams.Set("client_assertion_type", assertionTypeJWT)
			cfg.EndpointParams.Set("client_assertion", a)
		}
	}
	start := ts.o.now()
	tok, err := cfg.Token(ctx)
	if err != nil {
		return nil, ts.classify(err)
	}
	return ts.accept(tok, start, material)
}

// accept checks a token response and works out its schedule.
func (ts *tokenSource) accept(tok *oauth2.Token, start time.Time, material string) (*accessToken, error) {
	switch strings.ToLower(tok.TokenType) {
	case "", "bearer":
	default:
		return nil, fmt.Errorf("%w: token endpoint %s issued a %q token; only Bearer tokens are supported", ErrMalformed, ts.tokenURL, truncate(tok.TokenType, 20))
	}
	var life time.Duration
	secs, ok := expiresIn(tok)
	switch {
	case ok && secs <= 0:
		return nil, fmt.Errorf("%w: token endpoint %s sent expires_in %d; want a positive number of seconds", ErrMalformed, ts.tokenURL, secs)
	case ok:
		life = time.Duration(min(secs, math.MaxInt32)) * time.Second
	case !tok.Expiry.IsZero(): // set by x/oauth2 from a form we could not read
		life = time.Until(tok.Expiry)
	default: // no expires_in: never "forever"
		life = ts.c.TTL.D
	}
	if life <= 0 {
		return nil, fmt.Errorf("%w: token endpoint %s sent a token that has already expired", ErrMalformed, ts.tokenURL)
	}
	t := &accessToken{value: secret.New(tok.AccessToken), typ: "Bearer", material: material, issued: start,
		redact: newRedactor([]string{tok.AccessToken})}
	t.expires = start.Add(life)
	t.usableUntil = t.expires.Add(-min(maxTokenSkew, life/10))
	t.refreshAt = start.Add(life*3/4 - time.Duration(rand.Int64N(int64(life/10)+1)))
	t.scopes = slices.Clone(ts.c.Scopes) // RFC 6749 §5.1: omitted scope = as requested
	if s, ok := tok.Extra("scope").(string); ok && strings.TrimSpace(s) != "" {
		t.scopes = strings.Fields(s)
	}
	if extra := scopesBeyond(t.scopes, ts.c.Scopes); len(extra) > 0 && len(ts.c.Scopes) > 0 {
		ts.o.logger().Warn("token endpoint granted scopes that were not requested", logIntegration, ts.integration, logScopes, extra)
	}
	return t, nil
}

// classify turns a token request failure into an error that names the
// endpoint and the RFC 6749 error code, never the response body.
func (ts *tokenSource) classify(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		te := &TokenEndpointError{URL: ts.tokenURL, Code: truncate(re.ErrorCode, 60),
			Description: ts.o.scrubString(truncate(re.ErrorDescription, 200))}
		if re.Response != nil {
			te.Status = re.Response.StatusCode
			if te.Status >= 300 && te.Status < 400 && te.Description == "" {
				te.Description = "redirects are not followed for token requests"
			}
		}
		return te
	}
	var de *egress.DeniedError
	if errors.As(err, &de) {
		// The egress guard refused the token endpoint (not on the
		// integration's egress.allow, or it resolved to a denied address).
		// DeniedError carries only host, port and address.
		return fmt.Errorf("%w: token endpoint %s: %w", ErrUnavailable, ts.tokenURL, de)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%w: token endpoint %s unreachable: %s", ErrUnavailable, ts.tokenURL, ts.o.scrubString(ue.Err.Error()))
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: token endpoint %s timed out", ErrUnavailable, ts.tokenURL)
	}
	// "oauth2: cannot parse json", "server response missing access_token"…
	return fmt.Errorf("%w: token endpoint %s: %s", ErrMalformed, ts.tokenURL, ts.o.scrubString(truncate(err.Error(), 200)))
}

func (ts *tokenSource) current() (*accessToken, error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.tok, ts.lastErr
}

// expiresIn reads expires_in from the raw answer: clientcredentials does
// not copy Token.ExpiresIn, and its Expiry is computed with the real clock,
// not ours.
func expiresIn(tok *oauth2.Token) (int64, bool) {
	switch v := tok.Extra("expires_in").(type) {
	case float64:
		return int64(v), true
	case int64:
		return v, true
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		return n, err == nil
	}
	return 0, false
}

func scopesBeyond(granted, requested []string) []string {
	var extra []string
	for _, s := range granted {
		if !slices.Contains(requested, s) {
			extra = append(extra, s)
		}
	}
	return extra
}

// oauthInjector serves oauth2_client_credentials and jwt_bearer with a
// token_url: the access token goes on the request as a Bearer token.
type oauthInjector struct {
	*guard
	ts *tokenSource
	c  *Spec
}

var _ Injector = (*oauthInjector)(nil)

func newOAuthInjector(g *guard, c *Spec, r *Resolver, o Options) (*oauthInjector, error) {
	ts, err := newTokenSource(g.integration, c, r, o)
	if err != nil {
		return nil, err
	}
	return &oauthInjector{guard: g, ts: ts, c: c}, nil
}

func (in *oauthInjector) Apply(ctx context.Context, req *http.Request) (Info, error) {
	t, err := in.ts.token(ctx)
	if err != nil {
		return Info{}, in.fail(err)
	}
	if err := in.checkRevoked(t.version); err != nil {
		return Info{}, err
	}
	if err := setHeader(req, "Authorization", t.typ+" "+t.value.Reveal()); err != nil {
		return Info{}, in.fail(err)
	}
	return Info{Version: t.version, Scopes: t.scopes, redact: t.redact}, nil
}

func (in *oauthInjector) Refresh(ctx context.Context) error { return in.refreshFrom(ctx, 0, true) }

func (in *oauthInjector) refreshFrom(ctx context.Context, seen uint64, force bool) error {
	err := in.refresh(ctx, seen, force, func(ctx context.Context) error {
		if in.c.ClientSecret.Ref() != "" && in.c.AuthMethod != "private_key_jwt" {
			if _, err := in.ts.r.Refresh(ctx, in.c.ClientSecret); err != nil {
				return err
			}
		}
		if in.ts.signer != nil {
			if err := in.ts.signer.reload(ctx); err != nil {
				return err
			}
		}
		_, err := in.ts.forceFetch(ctx)
		return err
	})
	if err != nil {
		return in.fail(err)
	}
	return nil
}

func (in *oauthInjector) Status() Status {
	st := in.status()
	st.Ref = in.c.ClientSecret.Ref()
	if in.ts.signer != nil {
		st.Ref = in.c.PrivateKey.Ref()
	}
	t, err := in.ts.current()
	if t != nil {
		st.Version, st.SecretVersion, st.Created, st.Expires, st.Scopes = t.version, t.material, t.issued, t.expires, t.scopes
		st.LastRefresh = t.issued
	}
	if err != nil {
		st.LastError = in.o.scrubString(err.Error())
	}
	return st
}
