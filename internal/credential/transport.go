package credential

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis-dev/portcullis/internal/problem"
)

// Transport is the `inject` RoundTripper of the outbound chain
// retry(breaker(inject(base))). For every attempt it clones the request,
// calls Injector.Apply on the clone (so tokens and signatures are fresh) and
// sends it through Base. The response's Request is set back to the caller's
// request, so the clone carrying the credential goes nowhere else.
//
// Reflection (issue 13): every response it returns has the values injected
// on that attempt masked in its header, trailer and body (see redactor),
// so a vendor redirect that keeps the query string, or an error page that
// echoes the request, cannot hand the caller the vendor key. The caller's
// Accept-Encoding is not forwarded: net/http then asks for gzip itself and
// decodes it, so the body is scanned in clear. A vendor that compresses
// anyway is decoded (gzip) or refused with invalid_upstream_response.
//
// Rejection and revocation (issue 13, replacing issue 3's rule): a vendor
// answer is a rejection of the credential when it is 401, or 403 other than
// RFC 6750 insufficient_scope where RevokeOn403 is set. A 403 is otherwise
// an answer about one resource and is passed on untouched. On a rejection
// the credential is refreshed (at most once per refreshCooldown for the
// integration, one refresh however many callers ask) and, when the refresh
// produced DIFFERENT material (a new secret value, a new access token, a
// newly signed JWT) and the body can be replayed, the request is sent once
// more. A refresh that yields the same material changes nothing: the
// vendor's answer is passed on. Whatever happens, the caller gets the
// vendor's own answer, never credential_unavailable for its own request.
//
// The material a vendor-triggered refresh produced is suspect. The
// credential is marked revoked only when requests of at least revokeQuorum
// distinct callers were rejected with suspect material and no vendor
// answer in between accepted the credential (a 2xx or 3xx resets the
// count). One caller hammering a route the vendor refuses therefore cannot
// switch the integration off for everyone else. While revoked, Apply fails
// with ErrRevoked before any vendor call (answered credential_unavailable),
// until the secret changes at its source or an admin Refresh succeeds;
// OnRevoked is called once per revocation. The retry layer above must not
// retry errors wrapping ErrUnavailable.
type Transport struct {
	Base        http.RoundTripper // the egress-guarded base; nil is an error, never http.DefaultTransport
	Injector    Injector
	Integration string
	// RevokeOn403 makes a 403 (other than insufficient_scope) a rejection
	// of the credential, for vendors that answer 403 to a bad key
	// (credential.revoke_on_403).
	RevokeOn403 bool
	// OnRevoked is the alert hook; it is called synchronously.
	OnRevoked func(integration string)
	Logger    *slog.Logger
}

var _ http.RoundTripper = (*Transport)(nil)

// revokeQuorum is how many distinct callers must see suspect material
// rejected before it is marked revoked.
const revokeQuorum = 2

// refreshCooldown spaces refreshes triggered by vendor rejections, so a
// caller hammering a refused route cannot turn each of its requests into
// a secret-store read or a token request.
const refreshCooldown = 5 * time.Second

// Call is what a Transport learns from the context about the request it
// sends: on whose behalf (Caller; the Transport counts rejections per
// distinct caller before revoking, and requests without one, such as
// queued deliveries, count as one anonymous caller) and where to record
// the Info of the final attempt (Sink, read by the gateway's per-request
// log record after the round trip; nil: not recorded). Attempts of one
// request must be sequential, as the retry layer makes them.
type Call struct {
	Caller string
	Sink   *Info
	// Informational, when set, takes over the masking of informational
	// (1xx) answers: the Transport installs no trace hook of its own and
	// notes each attempt's injected values in it instead, and the caller
	// passes the header of every 1xx answer through Informational.Mask
	// before anyone sees it (the gateway does, in the ResponseWriter that
	// httputil.ReverseProxy's hook writes 1xx answers to). nil: the
	// Transport masks them in its own trace hook.
	Informational *Masker
	// First, when set, is room for the call's first attempt (its copy of
	// the request), in memory the caller already has, so that attempt costs
	// no allocation of its own. nil: every attempt allocates its own.
	First *Scratch
	// Attempt, when set, gives the context each attempt's copy of the
	// request is sent with, from the one it would have (see
	// AttemptContexter). nil: that one.
	Attempt AttemptContexter
}

// AttemptContexter makes the context an attempt is sent with from the
// context it would have. The result must carry the same values, deadline
// and cancellation; the gateway uses it so that the context the
// Transport derives per attempt finds its call's cancellation without a
// watching goroutine.
type AttemptContexter interface {
	AttemptContext(ctx context.Context) context.Context
}

// Scratch holds one attempt's copy of the request (Call.First). It is
// used once, by the first attempt that asks for it, and never reused: a
// later attempt gets its own. The zero Scratch is ready; it must not be
// copied once used.
type Scratch struct {
	used atomic.Bool
	a    attempt
}

func (s *Scratch) take() *attempt {
	if s != nil && s.used.CompareAndSwap(false, true) {
		return &s.a
	}
	return &attempt{}
}

// Masker masks, in the header of an informational (1xx) answer, the
// values injected by every attempt of one call so far (Call.Informational).
// Safe for concurrent use: a 1xx arrives on the vendor connection's
// goroutine, possibly from an attempt the retry layer has given up on. The
// zero Masker masks nothing; it must not be copied once used.
type Masker struct {
	mu   sync.Mutex
	reds []*redactor
	arr  [2]*redactor // reds' first backing array
}

// add notes the values one attempt injected, before it is sent.
func (m *Masker) add(r *redactor) {
	if r == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.reds == nil {
		m.reds = m.arr[:0]
	}
	if !slices.Contains(m.reds, r) {
		m.reds = append(m.reds, r)
	}
}

// Mask replaces, in place, every injected value in h's values.
func (m *Masker) Mask(h http.Header) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.reds {
		r.Header(h)
	}
}

// WithCall returns a context whose requests, sent through a Transport,
// are made for c. c must not change while they are in flight.
func WithCall(ctx context.Context, c *Call) context.Context {
	return context.WithValue(ctx, CallKey{}, c)
}

// CallKey is the context key of a *Call. WithCall sets it; a context type
// of the caller's own may also answer it from its Value method, so that a
// request's values travel as one (the gateway's per-request context).
type CallKey struct{}

func callFrom(ctx context.Context) Call {
	if c, ok := ctx.Value(CallKey{}).(*Call); ok && c != nil {
		return *c
	}
	return Call{}
}

// WithInfoSink returns a context whose requests record the Info of their
// final attempt in *sink (Call.Sink), keeping the caller ctx names.
func WithInfoSink(ctx context.Context, sink *Info) context.Context {
	c := callFrom(ctx)
	c.Sink = sink
	return WithCall(ctx, &c)
}

// WithCaller names the caller on whose behalf requests with ctx are sent
// (Call.Caller), keeping the info sink ctx has.
func WithCaller(ctx context.Context, caller string) context.Context {
	c := callFrom(ctx)
	c.Caller = caller
	return WithCall(ctx, &c)
}

// injectorInternals is what our own injectors add to Injector for the
// Transport: the refresh epoch and the revocation evidence.
type injectorInternals interface {
	epochNow() uint64
	refreshFrom(ctx context.Context, seen uint64, force bool) error
	markSuspect(version string)
	strike(version, caller string, status int) bool
	accepted()
}

func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	internals, _ := t.Injector.(injectorInternals)
	var seen uint64
	if internals != nil {
		seen = internals.epochNow()
	}
	call := callFrom(ctx)
	a, info, err := t.prepare(req, req.Body, call.Informational, call.First, call.Attempt)
	if err != nil {
		return nil, err
	}
	resp, err := t.send(req, &a.req, info, call.Sink)
	if err != nil {
		return nil, err
	}
	if !t.rejects(resp) {
		t.settle(internals, resp)
		return t.finish(resp, info, a)
	}
	return t.rejected(req, seen, resp, &info, a)
}

// rejected is RoundTrip after the vendor rejected the credential of the
// first attempt (a, *infop, answered resp; seen is the injector's epoch
// before it): strike, refresh, and at most one retry with the refreshed
// credential. A function of its own so that RoundTrip's frame, under every
// call the vendor holds, stays small.
//
//go:noinline
func (t *Transport) rejected(req *http.Request, seen uint64, resp *http.Response, infop *Info, a *attempt) (*http.Response, error) {
	ctx := req.Context()
	internals, _ := t.Injector.(injectorInternals)
	call := callFrom(ctx)
	caller, info := call.Caller, *infop
	var err error
	first := resp.StatusCode
	log := t.logger().With(logStatus, first, logVersion, info.Version)
	t.strike(internals, info, caller, first)
	if err := t.refresh(ctx, internals, seen); err != nil {
		log.Warn("vendor rejected the credential and refreshing it failed; passing on the vendor's answer", logError, err.Error())
		return t.finish(resp, info, a)
	}
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		// The answer is returned as is, so the body must stay readable.
		log.Warn("vendor rejected the credential; refreshed it (request body not replayable, no retry)")
		return t.finish(resp, info, a)
	}
	body := req.Body
	if req.GetBody != nil {
		if body, err = req.GetBody(); err != nil {
			log.Warn("vendor rejected the credential; cannot replay the request body", logError, err.Error())
			return t.finish(resp, info, a)
		}
	}
	a2, info2, err := t.prepare(req, body, call.Informational, nil, call.Attempt)
	if err != nil {
		log.Warn("vendor rejected the credential; no usable credential after the refresh, passing on the vendor's answer", logError, err.Error())
		return t.finish(resp, info, a)
	}
	if info.redact != nil && info.redact.sameMaterial(info2.redact) {
		if a2.req.Body != nil {
			_ = a2.req.Body.Close()
		}
		log.Warn("vendor rejected the credential; the refresh gave the same credential, passing on the vendor's answer")
		return t.finish(resp, info, a)
	}
	closeBody(resp)
	log.Warn("vendor rejected the credential; retrying once with the refreshed one", "retry_version", info2.Version)
	if internals != nil {
		internals.markSuspect(info2.Version)
	}
	resp, err = t.send(req, &a2.req, info2, call.Sink)
	if err != nil {
		return nil, err
	}
	if !t.rejects(resp) {
		t.settle(internals, resp)
	} else {
		t.strike(internals, info2, caller, resp.StatusCode)
	}
	return t.finish(resp, info2, a2)
}

// prepare copies req with body and puts the credential on the copy. With
// m nil, the copy's context carries a trace hook masking the header of
// informational answers (103 Early Hints), which reach the caller as they
// arrive through the hook httputil.ReverseProxy installs: ours is called
// first (httptrace composes new hooks before old ones) and masks the
// header in place. Otherwise m is told the injected values instead.
//
// The attempt's copy lives in first if it is still unused, else in memory
// of its own.
func (t *Transport) prepare(req *http.Request, body io.ReadCloser, m *Masker, first *Scratch, at AttemptContexter) (*attempt, Info, error) {
	a := first.take()
	ctx := req.Context()
	var h *hook
	if m == nil {
		h = &hook{}
		h.trace.Got1xxResponse = h.got1xx
		ctx = httptrace.WithClientTrace(ctx, &h.trace)
	}
	if at != nil {
		ctx = at.AttemptContext(ctx)
	}
	out := a.copyOf(req, ctx)
	out.Body = body
	info, err := t.Injector.Apply(req.Context(), out)
	if err != nil {
		if body != nil {
			_ = body.Close()
		}
		return nil, Info{}, err
	}
	if h != nil {
		h.red = info.redact
	} else {
		m.add(info.redact)
	}
	return a, info, nil
}

// attempt is one attempt's copy of the request, of its URL, and the
// scrubber of its answer's body, allocated together.
type attempt struct {
	req  http.Request
	url  url.URL
	body maskedBody
}

// hook is the 1xx trace hook of an attempt (Call.Informational nil).
type hook struct {
	trace httptrace.ClientTrace
	red   *redactor
}

func (h *hook) got1xx(_ int, mh textproto.MIMEHeader) error {
	if h.red != nil {
		h.red.Header(http.Header(mh))
	}
	return nil
}

// copyOf sets a.req to req.Clone(ctx) without Accept-Encoding (so net/http
// negotiates, and decodes, gzip: the body can be scanned), sharing with req
// nothing the injector writes to: its own header map (the values are
// shared; header values are replaced, never written in place) and its own
// URL. A request with a trailer or parsed forms gets a full Clone.
func (a *attempt) copyOf(req *http.Request, ctx context.Context) *http.Request {
	if req.Trailer != nil || req.Form != nil || req.PostForm != nil || req.MultipartForm != nil || req.URL == nil {
		a.req = *req.Clone(ctx)
		a.req.Header.Del("Accept-Encoding")
		return &a.req
	}
	a.req = *req.WithContext(ctx) // WithContext's copy does not escape
	a.url = *req.URL
	a.req.URL = &a.url
	h := make(http.Header, len(req.Header)+1)
	for k, v := range req.Header {
		if k != "Accept-Encoding" {
			h[k] = v
		}
	}
	a.req.Header = h
	return &a.req
}

func (t *Transport) send(req, out *http.Request, info Info, sink *Info) (*http.Response, error) {
	if sink != nil {
		*sink = Info{Version: info.Version, Scopes: info.Scopes}
	}
	if t.Base == nil {
		// Never fall back to http.DefaultTransport: it has no egress
		// guard and honours the environment's proxy.
		if out.Body != nil {
			_ = out.Body.Close()
		}
		return nil, fmt.Errorf("integration %s: %w: Transport.Base is nil", t.Integration, ErrConfig)
	}
	resp, err := t.Base.RoundTrip(out)
	if err != nil {
		return nil, err
	}
	resp.Request = req
	return resp, nil
}

// finish masks the injected values in the response the caller will get,
// the body's scrubber kept in the attempt a.
func (t *Transport) finish(resp *http.Response, info Info, a *attempt) (*http.Response, error) {
	if info.redact == nil {
		return resp, nil
	}
	if err := decodeUnasked(resp); err != nil {
		closeBody(resp)
		return nil, err
	}
	info.redact.responseInto(resp, &a.body)
	return resp, nil
}

func (t *Transport) settle(in injectorInternals, resp *http.Response) {
	if in != nil && resp.StatusCode >= 200 && resp.StatusCode < 400 {
		in.accepted()
	}
}

func (t *Transport) strike(in injectorInternals, info Info, caller string, status int) {
	if in != nil && in.strike(info.Version, caller, status) && t.OnRevoked != nil {
		t.OnRevoked(t.Integration)
	}
}

func (t *Transport) refresh(ctx context.Context, in injectorInternals, seen uint64) error {
	if in != nil {
		return in.refreshFrom(ctx, seen, false)
	}
	return t.Injector.Refresh(ctx)
}

func (t *Transport) logger() *slog.Logger {
	l := t.Logger
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return l.With(logIntegration, t.Integration)
}

// rejects reports whether the vendor's answer rejects the credential: a
// 401, or with RevokeOn403 a 403 that is not insufficient_scope.
func (t *Transport) rejects(resp *http.Response) bool {
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		return true
	case http.StatusForbidden:
		return t.RevokeOn403 && !strings.Contains(resp.Header.Get("WWW-Authenticate"), "insufficient_scope")
	}
	return false
}

// errUnscrubbable refuses a body in an encoding the gateway did not ask for
// and cannot decode, so cannot check for the injected credential.
type errUnscrubbable struct{ error }

func (errUnscrubbable) Permanent() bool { return true }
func (e errUnscrubbable) Unwrap() error { return e.error }

// decodeUnasked decodes a body the vendor compressed although the gateway
// asked for no encoding (or only gzip, which net/http has then decoded).
func decodeUnasked(resp *http.Response) error {
	ce := strings.ToLower(strings.TrimSpace(resp.Header.Get("Content-Encoding")))
	switch ce {
	case "", "identity":
		return nil
	case "gzip", "x-gzip":
		if resp.Body == nil || resp.Body == http.NoBody {
			return nil
		}
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			return errUnscrubbable{problem.Wrap(problem.InvalidUpstreamResponse, "the vendor sent a gzip body that does not decode", err)}
		}
		resp.Body = gzipBody{zr, resp.Body}
		resp.Header.Del("Content-Encoding")
		resp.Header.Del("Content-Length")
		resp.ContentLength, resp.Uncompressed = -1, true
		return nil
	}
	return errUnscrubbable{problem.Wrap(problem.InvalidUpstreamResponse, "the vendor sent a body in an encoding the gateway did not ask for and cannot check",
		fmt.Errorf("unasked Content-Encoding %q", truncate(ce, 20)))}
}

type gzipBody struct {
	*gzip.Reader
	rc io.ReadCloser
}

func (g gzipBody) Close() error { return g.rc.Close() }

// closeBody discards a response we will not return, reading a little of it
// first so the connection can be reused.
func closeBody(resp *http.Response) {
	_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
	_ = resp.Body.Close()
}
