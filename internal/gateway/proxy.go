package gateway

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/portcullis-dev/portcullis/internal/credential"
	"github.com/portcullis-dev/portcullis/internal/egress"
	"github.com/portcullis-dev/portcullis/internal/observe"
	"github.com/portcullis-dev/portcullis/internal/policy"
	"github.com/portcullis-dev/portcullis/internal/problem"
	"github.com/portcullis-dev/portcullis/internal/resilience"
)

// rewrite builds the outbound request. Contract (httputil.ProxyRequest):
// it must not modify pr.In. ReverseProxy has already removed hop-by-hop
// headers from pr.Out; we go further and rebuild the header set from the
// integration's allowlist, so the caller's Authorization, Cookie,
// Proxy-*, Forwarded/X-Forwarded-* and anything unlisted never leave.
func (in *integration) rewrite(pr *httputil.ProxyRequest) {
	ob := outboundFrom(pr.In.Context())
	o := pr.Out
	o.URL.Scheme = in.upstream.Scheme
	o.URL.Host = in.upstream.Host
	o.URL.User = nil
	// The vendor path is forwarded byte for byte as it passed path
	// hygiene: re-encoding could change how the vendor reads it.
	raw := in.basePath + ob.path
	if p, err := url.PathUnescape(raw); err == nil {
		o.URL.Path, o.URL.RawPath = p, raw
	}
	o.URL.RawQuery = policy.EscapeQuery(pr.In.URL.RawQuery) // checked in serve; a no-op then
	o.URL.Fragment, o.URL.RawFragment = "", ""
	o.Host = ""

	h := make(http.Header, len(in.headers)+2)
	for _, k := range in.headers {
		if v, ok := pr.In.Header[k]; ok {
			h[k] = v
		}
	}
	h.Set(headerRequestID, ob.requestID)
	if _, ok := h["User-Agent"]; !ok {
		h["User-Agent"] = []string{"portcullis"}
	}
	delete(h, "Traceparent")
	delete(h, "Tracestate")
	if in.propagateTrace {
		injectTrace(pr.In.Context(), h)
	}
	o.Header = h
}

// errVendorFailed replaces a vendor 5xx by the stale fallback.
var errVendorFailed = errors.New("vendor answered 5xx")

// errResponseTooLarge aborts a response over max_response_bytes.
var errResponseTooLarge = errors.New("vendor response over max_response_bytes")

// modifyResponse checks the vendor's answer before the caller sees it.
func (in *integration) modifyResponse(resp *http.Response) error {
	ob := outboundFrom(resp.Request.Context())
	ob.rec.NoteVendorRateLimit(resp.Header)
	if resp.ContentLength > in.maxResp {
		return errResponseTooLarge
	}
	// A vendor must not be able to pose as the gateway, set cookies on our
	// callers, or override the request id.
	for k := range resp.Header {
		if strings.HasPrefix(k, "X-Portcullis-") {
			delete(resp.Header, k)
		}
	}
	resp.Header.Del("Set-Cookie")
	resp.Header.Del(headerRequestID)
	staleGET := in.stale != nil && resp.Request.Method == http.MethodGet
	if staleGET && resp.StatusCode >= 500 {
		// The vendor failed: a cached answer beats its error page.
		if _, _, ok := in.stale.Get(resp.Request.Context(), ob.staleKey()); ok {
			return errVendorFailed
		}
	}
	if in.validator != nil {
		if err := in.validateResponse(resp, ob); err != nil {
			return err
		}
	} else if resp.Body != nil && resp.Body != http.NoBody {
		resp.Body = &limitedBody{rc: resp.Body, left: in.maxResp, rec: ob.rec}
	}
	// Only an answer that passed validation is kept for the stale fallback.
	if staleGET && resp.StatusCode < 500 && in.stale.Cacheable(http.MethodGet, resp.StatusCode, resp.Header) {
		in.stale.Capture(resp.Request.Context(), ob.staleKey(), resp)
	}
	return nil
}

// limitedBody ends the stream with an error past the limit; ReverseProxy
// then aborts the caller's connection, so a truncated body is never taken
// for a whole one.
type limitedBody struct {
	rc   io.ReadCloser
	left int64
	rec  *observe.Record
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, errResponseTooLarge
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		b.rec.ErrorCode = string(problem.ResponseTooLarge)
		return n - 1, errResponseTooLarge
	}
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

// errorHandler renders a failed vendor call as problem+json.
func errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	ob := outboundFrom(r.Context())
	pe := classify(r.Context(), err)
	if pe.Code != problem.EgressDenied && pe.Code != problem.CredentialUnavailable && !errors.Is(err, errClientGone) {
		if serveStale(w, r.Context(), ob, r.Method) {
			ob.rec.Cause = pe.Error()
			return
		}
		if ob.async && (pe.Code == problem.UpstreamUnreachable || pe.Code == problem.CircuitOpen) && ob.g.queue != nil {
			// Nothing reached the vendor (or the breaker refused): queue it.
			if qerr := ob.g.enqueue(w, ob.req, ob); qerr == nil {
				ob.rec.Cause = pe.Error()
				return
			}
		}
	}
	ob.rec.ErrorCode = string(pe.Code)
	ob.rec.Status = pe.Status()
	if pe.Err != nil {
		ob.rec.Cause = pe.Err.Error()
	}
	if errors.Is(pe.Err, errClientGone) {
		ob.rec.Status = 499
		return
	}
	problem.Write(w, ob.requestID, pe)
}

// classify maps an outbound error to the gateway's error codes. The cause
// is kept for the log (scrubbed); the caller gets only the public detail.
func classify(ctx context.Context, err error) *problem.Error {
	var pe *problem.Error
	if errors.As(err, &pe) {
		return pe
	}
	var ne net.Error
	switch {
	case errors.Is(err, credential.ErrUnavailable):
		return problem.Wrap(problem.CredentialUnavailable, "the vendor credential is unavailable; operators: see the gateway log", err)
	case errors.Is(err, egress.ErrDenied):
		return problem.Wrap(problem.EgressDenied, "the destination is not allowed by the integration's egress policy", err)
	case errors.Is(err, resilience.ErrCircuitOpen):
		return problem.Wrap(problem.CircuitOpen, "the vendor is failing; calls are paused by the circuit breaker", err)
	case errors.Is(err, resilience.ErrRateLimited):
		pe := problem.Wrap(problem.RateLimited, "the vendor asked us to slow down; retry later", err)
		var rl *resilience.RateLimitError
		if errors.As(err, &rl) {
			pe.RetryAfter = resilience.RetryAfterSeconds(rl.RetryAfter)
		}
		return pe
	case errors.Is(err, errVendorFailed):
		return problem.Wrap(problem.UpstreamUnreachable, "the vendor failed", err)
	case errors.Is(err, errResponseTooLarge):
		return problem.Wrap(problem.ResponseTooLarge, "the vendor's response is over max_response_bytes", err)
	case errors.Is(err, context.Canceled) && ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded):
		return problem.Wrap(problem.UpstreamUnreachable, "caller went away", errors.Join(errClientGone, err))
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return problem.Wrap(problem.UpstreamTimeout, "the vendor did not answer in time", err)
	}
	return problem.Wrap(problem.UpstreamUnreachable, "the vendor could not be reached", err)
}

// recordTransport times each attempt and records the vendor's status.
type recordTransport struct{ next http.RoundTripper }

func (t recordTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.next.RoundTrip(req)
	status := 0
	if resp != nil {
		status = resp.StatusCode
	}
	if ob := outboundFrom(req.Context()); ob != nil {
		ob.rec.SetUpstream(status, time.Since(start))
	}
	return resp, err
}

// bufferPool recycles ReverseProxy's copy buffers.
type bufferPool struct{}

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *(copyBuffers.Get().(*[]byte)) }
func (bufferPool) Put(b []byte) { copyBuffers.Put(&b) }

var _ httputil.BufferPool = bufferPool{}
