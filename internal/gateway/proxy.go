package gateway

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/internal/credential"
	"github.com/portcullis-dev/portcullis/internal/egress"
	"github.com/portcullis-dev/portcullis/internal/fallback"
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
	// Caller trailers would reach the vendor after the injected credential
	// and outside the header allowlist (Authorization, Cookie, method
	// overrides): none is forwarded.
	o.Trailer, o.TransferEncoding = nil, nil

	// pr.Out's header is ReverseProxy's own copy of the caller's: it is cut
	// down in place to the allowlisted fields, each with the caller's
	// values (so exactly those fields of pr.In, whatever ReverseProxy
	// removed or added), instead of building a second map.
	h := o.Header
	for k := range h {
		if !slices.Contains(in.headers, k) {
			delete(h, k)
		}
	}
	for _, k := range in.headers {
		if v, ok := pr.In.Header[k]; ok {
			h[k] = v
		} else {
			delete(h, k)
		}
	}
	h[headerRequestID] = ob.rid
	if _, ok := h["User-Agent"]; !ok {
		h["User-Agent"] = userAgent
	}
	delete(h, "Traceparent")
	delete(h, "Tracestate")
	if in.propagateTrace {
		injectTrace(pr.In.Context(), h)
	}
}

// userAgent is sent when the caller sent none. Header values are replaced,
// never written in place, so every request can share it.
var userAgent = []string{"portcullis"}

// errVendorFailed replaces a vendor 5xx by the stale fallback.
var errVendorFailed = errors.New("vendor answered 5xx")

// errResponseTooLarge aborts a response over max_response_bytes.
var errResponseTooLarge = errors.New("vendor response over max_response_bytes")

// modifyResponse checks the vendor's answer before the caller sees it.
func (in *integration) modifyResponse(resp *http.Response) error {
	ob := outboundFrom(resp.Request.Context())
	if ob.w.flooded {
		// The abort for too many 1xx lost the race against the final
		// answer, which was already read: it is refused all the same.
		return errTooManyInformational
	}
	ob.rec.NoteVendorRateLimit(resp.Header)
	if resp.ContentLength > in.maxResp {
		return errResponseTooLarge
	}
	// A vendor must not be able to pose as the gateway, set cookies on our
	// callers, or override the request id: not in its header, not in its
	// trailer (announced now, or sent unannounced after the body), not in
	// a 1xx answer (informationalWriter).
	stripGatewayFields(resp.Header)
	stripGatewayFields(resp.Trailer)
	staleGET := in.stale != nil && resp.Request.Method == http.MethodGet
	if staleGET && resp.StatusCode >= 500 {
		// The vendor failed: a cached answer beats its error page.
		if _, _, ok := in.stale.Get(resp.Request.Context(), ob.staleKey()); ok {
			return errVendorFailed
		}
	}
	if err := in.queueVendorFailure(resp, ob); err != nil {
		return err // queued: the caller gets 202, never this answer
	}
	if in.validator != nil {
		if err := in.validateResponse(resp, ob); err != nil {
			return err
		}
		if resp.Body != nil && resp.Body != http.NoBody {
			ob.body.trailerGuard = trailerGuard{rc: resp.Body, resp: resp}
			resp.Body = &ob.body.trailerGuard
		}
	} else if resp.Body != nil && resp.Body != http.NoBody {
		// One wrapper for both: the size limit and the trailer guard,
		// kept in the call (ReverseProxy asks for one answer per call).
		ob.body = limitedBody{trailerGuard: trailerGuard{rc: resp.Body, resp: resp}, left: in.maxResp, rec: ob.rec}
		resp.Body = &ob.body
	}
	// Only an answer that passed validation is kept for the stale fallback.
	if staleGET && resp.StatusCode < 500 && in.stale.Cacheable(http.MethodGet, resp.StatusCode, resp.Header) {
		in.stale.Capture(resp.Request.Context(), ob.staleKey(), resp)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols { // an upgrade reads resp.Header after us
		moveHeader(ob.w.Header(), resp.Header)
	}
	return nil
}

// moveHeader does for the answer's fields what ReverseProxy's copy of
// them into the caller's header (one new slice per field, by Add) does,
// by moving each field's slice instead: src's fields that dst does not
// have are set in dst and deleted from src, so the copy that follows
// modifyResponse finds only what is left. Left are Content-Type
// (ReverseProxy reads it from the answer after us, to flush event
// streams at once), the fields dst already has (Add appends to them) and
// any key Add would canonicalize. Header values are replaced, never
// written in place, so sharing src's slices is safe. Only called once the
// answer is accepted: an error page after us must not carry the vendor's
// fields.
func moveHeader(dst, src http.Header) {
	for k, vv := range src {
		if k == "Content-Type" || len(vv) == 0 || textproto.CanonicalMIMEHeaderKey(k) != k {
			continue
		}
		if _, ok := dst[k]; ok {
			continue
		}
		dst[k] = vv
		delete(src, k)
	}
}

// stripGatewayFields deletes the fields only the gateway may set: its own
// X-Portcullis-* headers, cookies for our callers, the request id.
func stripGatewayFields(h http.Header) {
	for k := range h {
		if strings.HasPrefix(k, "X-Portcullis-") || k == "Set-Cookie" || k == headerRequestID {
			delete(h, k)
		}
	}
}

// trailerGuard strips gateway fields from the vendor's trailer once the
// body has been read: net/http fills resp.Trailer (and creates it, for
// fields the vendor never announced) only at the end of the body, and
// ReverseProxy copies it to the caller after its final Read and Close.
type trailerGuard struct {
	rc   io.ReadCloser
	resp *http.Response
}

func (b *trailerGuard) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err != nil {
		stripGatewayFields(b.resp.Trailer)
	}
	return n, err
}

func (b *trailerGuard) Close() error {
	err := b.rc.Close()
	stripGatewayFields(b.resp.Trailer)
	return err
}

// maxInformational is how many 1xx answers (103 Early Hints, 100
// Continue) are relayed to the caller per request; further ones are
// dropped, and past maxInformationalRead the vendor's answer is refused.
const (
	maxInformational     = 4
	maxInformationalRead = 32
)

// errTooManyInformational ends a call whose vendor keeps sending 1xx
// answers: net/http lifts its header-size limit for each 1xx it hands to
// a trace hook, so without a bound a vendor could hold the call open
// with an endless stream of them.
var errTooManyInformational = errors.New("vendor sent more than 32 informational (1xx) responses")

// informationalWriter is the ResponseWriter ReverseProxy writes to. It
// relays at most maxInformational 1xx answers, each without the gateway's
// own fields and with the injected credential masked (mask: the
// credential Transport leaves 1xx answers to it, see
// credential.Call.Informational), and puts the request id back on the
// final answer (for a 1xx, ReverseProxy clears the whole header map after
// writing it).
//
// ReverseProxy's 1xx hook writes every 1xx the vendor sends here, from
// the vendor connection's goroutine, under the lock it takes again once
// the round trip returned. So this is where they are counted: past
// maxInformationalRead the call's context is cancelled (abort), the round
// trip fails, and errorHandler answers errTooManyInformational. (A trace
// hook of our own would cost every request two more allocations and a
// reflect-built composition with ReverseProxy's hook.)
type informationalWriter struct {
	http.ResponseWriter
	requestID string
	n         int
	abort     *callContext // cancelled (Canceled) past maxInformationalRead
	flooded   bool         // abort was called for too many 1xx
	mask      *credential.Masker
}

func (w *informationalWriter) Header() http.Header {
	h := w.ResponseWriter.Header()
	if w.n > 0 {
		if _, ok := h[headerRequestID]; !ok {
			h[headerRequestID] = []string{w.requestID}
		}
	}
	return h
}

func (w *informationalWriter) WriteHeader(code int) {
	if code < 100 || code > 199 || code == http.StatusSwitchingProtocols {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	h := w.ResponseWriter.Header()
	stripGatewayFields(h)
	if w.mask != nil {
		w.mask.Mask(h)
	}
	w.n++
	if w.n > maxInformationalRead && w.abort != nil {
		w.flooded = true
		w.abort.cancel(context.Canceled)
		return
	}
	if w.n <= maxInformational {
		w.ResponseWriter.WriteHeader(code)
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *informationalWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush passes a flush through, for streamed answers.
func (w *informationalWriter) Flush() { _ = http.NewResponseController(w.ResponseWriter).Flush() }

// limitedBody ends the stream with an error past the limit; ReverseProxy
// then aborts the caller's connection, so a truncated body is never taken
// for a whole one.
// It is also the trailerGuard of the body it limits.
type limitedBody struct {
	trailerGuard
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
	n, err := b.trailerGuard.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		b.rec.ErrorCode = string(problem.ResponseTooLarge)
		return n - 1, errResponseTooLarge
	}
	return n, err
}

// errorHandler renders a failed vendor call as problem+json.
func errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	ob := outboundFrom(r.Context())
	if ob.w.flooded {
		err = permanentError{errTooManyInformational}
	}
	if qe := (*queuedError)(nil); errors.As(err, &qe) {
		ob.rec.Cause = qe.Error()
		fallback.WriteAccepted(w, qe.jobID)
		return
	}
	pe := classify(r.Context(), err)
	if pe.Code != problem.EgressDenied && pe.Code != problem.CredentialUnavailable && !errors.Is(err, errClientGone) {
		if serveStale(w, r.Context(), ob, r.Method) {
			ob.rec.Cause = pe.Error()
			return
		}
		if delay, ok := queueAfterError(pe, err, r); ok && ob.async && ob.g.queue != nil {
			if qerr := ob.g.enqueueAfter(w, ob.req, ob, delay); qerr == nil {
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
	case errors.Is(err, errTooManyInformational):
		return problem.Wrap(problem.InvalidUpstreamResponse, "the vendor sent too many informational (1xx) responses", err)
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

// bufferPool recycles ReverseProxy's 32 KiB copy buffers through a
// bounded free list. Not a sync.Pool: a sync.Pool keeps every buffer a
// burst of answers ever had out at once (thousands, when held calls answer
// together) for two more GC cycles, counted as live heap and so doubled in
// the heap goal; the free list keeps at most idleCopyBuffers, and a burst's
// surplus is garbage as soon as its copy is done, as with ReverseProxy's
// own buffers.
type bufferPool struct{ free chan []byte }

const (
	copyBufferSize  = 32 << 10
	idleCopyBuffers = 64
)

// copyBuffers is the free list every integration's proxy shares.
var copyBuffers = newBufferPool(idleCopyBuffers)

func newBufferPool(idle int) bufferPool { return bufferPool{free: make(chan []byte, idle)} }

func (p bufferPool) Get() []byte {
	select {
	case b := <-p.free:
		return b
	default:
		return make([]byte, copyBufferSize)
	}
}

func (p bufferPool) Put(b []byte) {
	if len(b) != copyBufferSize {
		return
	}
	select {
	case p.free <- b:
	default:
	}
}

var _ httputil.BufferPool = bufferPool{}
