package credential

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
)

// Transport is the `inject` RoundTripper of the outbound chain
// retry(breaker(inject(base))). For every attempt it clones the request,
// calls Injector.Apply on the clone (so tokens and signatures are fresh) and
// sends it through Base. The response's Request is set back to the caller's
// request, so the clone carrying the credential goes nowhere else.
//
// The 401/403 rule (issue 3): when the vendor answers 401, or 403 other than
// RFC 6750 insufficient_scope (a permission problem, not a credential one,
// which is passed through untouched), the credential is refreshed once and
// the request sent once more, provided its body can be replayed (no body, or
// GetBody set; otherwise the refresh still happens and the vendor's answer
// is returned). If the second answer is 401/403 too, the injector is marked
// revoked, OnRevoked is called once per revocation, and RoundTrip returns an
// error wrapping ErrRevoked. That is at most one extra vendor call per
// caller request, never a loop; and a burst of 401s causes one refresh per
// integration: those that fail against material older than a refresh
// already started just retry with the new material.
//
// While revoked, Apply fails with ErrRevoked before any vendor call, until
// the secret changes at its source or an admin Refresh succeeds. The retry
// layer above must not retry errors wrapping ErrUnavailable: they are
// answered with credential_unavailable, and retrying them would multiply
// vendor calls.
type Transport struct {
	Base        http.RoundTripper // the egress-guarded base; nil is an error, never http.DefaultTransport
	Injector    Injector
	Integration string
	// OnRevoked is the alert hook; it is called synchronously.
	OnRevoked func(integration string)
	Logger    *slog.Logger
}

var _ http.RoundTripper = (*Transport)(nil)

// WithInfoSink returns a context whose requests, sent through a Transport,
// record the Info of their final attempt in *sink (the gateway's per-request
// log record reads it after the round trip). Attempts of one request must be
// sequential, as the retry layer makes them.
func WithInfoSink(ctx context.Context, sink *Info) context.Context {
	return context.WithValue(ctx, infoSinkKey{}, sink)
}

type infoSinkKey struct{}

// injectorInternals is what our own injectors add to Injector for the
// Transport: the refresh epoch and the revoked mark.
type injectorInternals interface {
	epochNow() uint64
	refreshFrom(ctx context.Context, seen uint64, force bool) error
	markRevoked(version string, status int) bool
}

func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	internals, _ := t.Injector.(injectorInternals)
	var seen uint64
	if internals != nil {
		seen = internals.epochNow()
	}
	resp, info, err := t.attempt(req, req.Body)
	if err != nil || !rejected(resp) {
		return resp, err
	}
	first := resp.StatusCode
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	if !replayable {
		// The answer is returned as is, so the body must stay readable:
		// re-send nothing, but refresh for the next request.
		t.logger().Warn("vendor rejected the credential; refreshing (request body not replayable, no retry)", logStatus, first, logVersion, info.Version)
		_ = t.refresh(ctx, internals, seen)
		return resp, nil
	}
	closeBody(resp)
	t.logger().Warn("vendor rejected the credential; refreshing and retrying once", logStatus, first, logVersion, info.Version)
	if err := t.refresh(ctx, internals, seen); err != nil {
		if !errors.Is(err, ErrUnavailable) {
			err = fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return nil, fmt.Errorf("vendor answered %d and refreshing the credential failed: %w", first, err)
	}
	body := req.Body
	if req.GetBody != nil {
		if body, err = req.GetBody(); err != nil {
			return nil, fmt.Errorf("integration %s: %w: cannot replay the request body: %w", t.Integration, ErrUnavailable, err)
		}
	}
	resp, info, err = t.attempt(req, body)
	if err != nil || !rejected(resp) {
		return resp, err
	}
	second := resp.StatusCode
	closeBody(resp)
	newly := true
	if internals != nil {
		newly = internals.markRevoked(info.Version, second)
	}
	if newly && t.OnRevoked != nil {
		t.OnRevoked(t.Integration)
	}
	return nil, fmt.Errorf("integration %s: vendor answered %d, then %d after a refresh: %w", t.Integration, first, second, ErrRevoked)
}

func (t *Transport) attempt(req *http.Request, body io.ReadCloser) (*http.Response, Info, error) {
	out := req.Clone(req.Context())
	out.Body = body
	info, err := t.Injector.Apply(req.Context(), out)
	if err != nil {
		if body != nil {
			_ = body.Close()
		}
		return nil, Info{}, err
	}
	if sink, ok := req.Context().Value(infoSinkKey{}).(*Info); ok && sink != nil {
		*sink = info
	}
	if t.Base == nil {
		// Never fall back to http.DefaultTransport: it has no egress
		// guard and honours the environment's proxy.
		if out.Body != nil {
			_ = out.Body.Close()
		}
		return nil, info, fmt.Errorf("integration %s: %w: Transport.Base is nil", t.Integration, ErrConfig)
	}
	resp, err := t.Base.RoundTrip(out)
	if err != nil {
		return nil, info, err
	}
	resp.Request = req
	return resp, info, nil
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

// rejected reports a 401, or a 403 that is not insufficient_scope.
func rejected(resp *http.Response) bool {
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		return true
	case http.StatusForbidden:
		return !strings.Contains(resp.Header.Get("WWW-Authenticate"), "insufficient_scope")
	}
	return false
}

// closeBody discards a response we will not return, reading a little of it
// first so the connection can be reused.
func closeBody(resp *http.Response) {
	_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
	_ = resp.Body.Close()
}
