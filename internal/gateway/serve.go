package gateway

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/portcullis-dev/portcullis/internal/chaos"
	"github.com/portcullis-dev/portcullis/internal/credential"
	"github.com/portcullis-dev/portcullis/internal/fallback"
	"github.com/portcullis-dev/portcullis/internal/observe"
	"github.com/portcullis-dev/portcullis/internal/policy"
	"github.com/portcullis-dev/portcullis/internal/problem"
	"github.com/portcullis-dev/portcullis/internal/resilience"
)

// outbound is the per-request data the ReverseProxy hooks need.
type outbound struct {
	in        *integration
	path      string // escaped vendor path, already checked
	requestID string
	rec       *observe.Record
	cred      credential.Info // version and granted scopes of the final attempt
	caller    string
	query     string
	g         *Gateway
	async     bool          // the caller accepts a queued answer
	req       *http.Request // the caller's request, for the queue fallback
	w         informationalWriter
	rid       []string // the X-Request-Id header value (call.rid)
	credCall  credential.Call
	body      limitedBody // the wrapper modifyResponse puts on the answer's body
	// masker masks the injected credential in 1xx answers (informationalWriter).
	masker credential.Masker
	// first is room for the credential transport's first attempt
	// (credential.Call.First).
	first credential.Scratch
}

type outboundKey struct{}

func outboundFrom(ctx context.Context) *outbound {
	ob, _ := ctx.Value(outboundKey{}).(*outbound)
	return ob
}

// serve runs the policy steps of DESIGN.md's request path in order and hands
// an allowed request to the integration's reverse proxy.
func (g *Gateway) serve(w http.ResponseWriter, r *http.Request, rt *runtime, c *call) error {
	if c.tunnel != nil {
		return g.serveTunnel(w, r, rt, c)
	}
	rec := &c.rec
	// 2. integration: the first segment of the request target as received.
	target := r.RequestURI
	if !strings.HasPrefix(target, "/") {
		return problem.New(problem.BadRequestPath, "request target must be /{integration}/{vendor path}")
	}
	path, _, _ := strings.Cut(target, "?")
	name, _, found := strings.Cut(path[1:], "/")
	vendorPath := "/"
	if found {
		vendorPath = path[1+len(name):] // from the slash after the name
	}
	in, ok := rt.integrations[name]
	if !ok {
		if name == jobsSegment && g.queue != nil && r.Method == http.MethodGet {
			return g.serveJob(w, r, rt, rec)
		}
		return problem.New(problem.UnknownIntegration, "no such integration; the first path segment names the integration")
	}
	rec.Integration = name

	// 3. caller identity.
	caller, how, ok := rt.auth.Request(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="portcullis"`)
		return problem.New(problem.Unauthenticated, "send Authorization: Bearer <caller token> or a client certificate")
	}
	rec.Caller, rec.Auth = caller, string(how)
	return g.serveFor(w, r, rt, c, in, name, vendorPath)
}

// serveFor runs the steps after caller identity for a request to
// integration in (named name) by the caller in c.rec, for vendorPath.
//
// It is split in three so that the frames on the stack while the vendor
// holds the call stay small: admit (the checks) and prepare (the proxy's
// request) return before the proxy is called, and only this frame waits
// under it. Every held call's goroutine then fits the stack size the bare
// ReverseProxy's does (issue 16: peak memory with thousands of held calls).
func (g *Gateway) serveFor(w http.ResponseWriter, r *http.Request, rt *runtime, c *call, in *integration, name, vendorPath string) error {
	route, async, held, err := g.admit(w, r, c, in, name, vendorPath)
	if held == nil {
		return err // refused, or answered by a fallback
	}
	defer held.Release()
	g.prepare(w, r, c, in, name, route, async)
	defer c.ctx.end() // released on every path out of here
	in.proxy.ServeHTTP(&c.ob.w, &c.req)
	c.rec.CredVersion, c.rec.Scopes = c.ob.cred.Version, c.ob.cred.Scopes
	return nil
}

// admit runs the checks of serveFor in order: path hygiene, route policy,
// the request body, and the guardrails. It returns the route, whether the
// caller accepts a queued answer, and for an admitted call the bulkhead
// whose slot it holds (given back with Release; a func would be a heap
// closure per call); held is nil when the call was refused (err) or
// answered by a fallback (err nil, or the fallback's error).
//
//go:noinline
func (g *Gateway) admit(w http.ResponseWriter, r *http.Request, c *call, in *integration, name, vendorPath string) (route string, async bool, held *resilience.Bulkhead, err error) {
	rec := &c.rec
	caller := rec.Caller

	// 4. path hygiene, before any matching.
	segs, err := policy.AppendCheckPath(c.segs[:0], vendorPath)
	if err != nil {
		return "", false, nil, problem.Wrap(problem.BadRequestPath, publicPathReason(err), err)
	}
	if err := policy.CheckQuery(r.URL.RawQuery); err != nil {
		return "", false, nil, problem.Wrap(problem.BadRequestPath, publicQueryReason(err), err)
	}

	// 5. route policy, deny by default.
	d := in.routes.Decide(policy.Args{Method: r.Method, Segments: segs, Caller: caller})
	rec.Route = d.Route
	if !d.Allowed {
		return "", false, nil, problem.New(problem.RouteNotAllowed, d.Reason)
	}
	policy.StripMethodOverride(r.Header)
	policy.StripPathOverride(r.Header)

	// 7. the request body, bounded. It is kept in memory (at most
	// max_request_bytes) so that a safe retry or a credential refresh can
	// send it again.
	if r.ContentLength > in.maxReq {
		return "", false, nil, problem.Errorf(problem.RequestTooLarge, "request body is over %d bytes", in.maxReq)
	}
	if r.Body != nil && r.Body != http.NoBody {
		body, err := readBounded(r.Body, in.maxReq, r.ContentLength)
		if err != nil {
			return "", false, nil, err
		}
		rec.BytesIn = int64(len(body))
		r.ContentLength = int64(len(body))
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		if len(body) == 0 {
			r.Body, r.GetBody = http.NoBody, nil
		}
	}

	// 6. guardrails: kill switch, rate limit, breaker, bulkhead — each
	// answered by a fallback where one is configured.
	ob := &c.ob
	ob.in, ob.path, ob.requestID, ob.rec, ob.caller, ob.query, ob.rid = in, vendorPath, rec.RequestID, rec, caller, r.URL.RawQuery, c.rid[:]
	async = in.queue && fallback.PrefersAsync(r.Header) && in.queued[r.Method+" "+d.Route]
	if async && in.queueAlways {
		return "", false, nil, g.enqueue(w, r, ob)
	}
	k := in.core
	if g.kill != nil && g.kill.Disabled(name) {
		return "", false, nil, g.fallbackOr(w, r, ob, async, problem.New(problem.IntegrationDisabled, "the integration is switched off by an operator"))
	}
	if wait, err := k.limiter.Wait(r.Context(), caller); err != nil {
		pe := problem.Wrap(problem.RateLimited, "rate limit reached; retry later", err)
		if delay, ok := queueAfterError(pe, err, r); ok && async {
			return "", false, nil, g.enqueueAfter(w, r, ob, delay) // the vendor's pause, not our limit
		}
		pe.RetryAfter = resilience.RetryAfterSeconds(wait)
		return "", false, nil, pe
	}
	if err := g.globalLimit(r.Context(), in, caller); err != nil {
		return "", false, nil, err
	}
	if !k.breaker.Allow() {
		return "", false, nil, g.fallbackOr(w, r, ob, async, problem.New(problem.CircuitOpen, "the vendor is failing; calls are paused by the circuit breaker"))
	}
	if !k.bulkhead.TryTake() {
		return "", false, nil, problem.Errorf(problem.Overloaded, "more than %d calls in flight to this integration", k.bulkhead.Limit())
	}
	return d.Route, async, k.bulkhead, nil
}

// prepare sets up the admitted call in c for the proxy: its context
// (started with the integration's deadline: serveFor ends it), the
// outbound data of the hooks, and the proxy's request c.req.
//
//go:noinline
func (g *Gateway) prepare(w http.ResponseWriter, r *http.Request, c *call, in *integration, name, route string, async bool) {
	rec, ob := &c.rec, &c.ob
	// The call's context: timeouts.request over the whole call, body
	// included.
	c.ctx.start(c, r.Context(), in.timeout, &in.timers)
	ob.g, ob.async, ob.req = g, async, r
	ob.credCall = credential.Call{Caller: rec.Caller, Sink: &ob.cred, Informational: &ob.masker, First: &ob.first, Attempt: &c.ctx}
	if g.opts.Faults != nil {
		// Only the chaos layer reads the target.
		c.target = chaos.Target{Integration: name, Route: route}
	}
	ob.w = informationalWriter{ResponseWriter: w, requestID: rec.RequestID, abort: &c.ctx, mask: &ob.masker}
	// The proxy's request is r with the call's context, kept in the call
	// (WithContext's copy does not escape, so it costs no allocation of
	// its own).
	c.req = *r.WithContext(&c.ctx)
}

func publicPathReason(err error) string {
	var pe *policy.PathError
	if errors.As(err, &pe) {
		return "ambiguous or unsafe request path (" + pe.Reason + ")"
	}
	return "ambiguous or unsafe request path"
}

func publicQueryReason(err error) string {
	var pe *policy.PathError
	if errors.As(err, &pe) {
		return "ambiguous or unsafe query string (" + pe.Reason + ")"
	}
	return "ambiguous or unsafe query string"
}

// readBounded reads at most limit bytes; more is request_too_large.
func readBounded(body io.Reader, limit, hint int64) ([]byte, error) {
	size := hint
	if size < 0 || size > limit {
		size = 512
	}
	buf := bytes.NewBuffer(make([]byte, 0, size+1))
	n, err := buf.ReadFrom(io.LimitReader(body, limit+1))
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// server.limits.caller.read_timeout or body_stall_timeout.
		return nil, problem.Wrap(problem.RequestTimeout, "the request body arrived too slowly", err)
	}
	if err != nil {
		return nil, problem.Wrap(problem.RequestTooLarge, "could not read the request body", err)
	}
	if n > limit {
		return nil, problem.New(problem.RequestTooLarge, "request body is over "+strconv.FormatInt(limit, 10)+" bytes")
	}
	return buf.Bytes(), nil
}

var errClientGone = errors.New("caller closed the connection")
