package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/portcullis-dev/portcullis/internal/fallback"
	"github.com/portcullis-dev/portcullis/internal/observe"
	"github.com/portcullis-dev/portcullis/internal/problem"
	"github.com/portcullis-dev/portcullis/internal/resilience"
)

// jobsSegment is the reserved first path segment of GET /jobs/{id}.
const jobsSegment = "jobs"

func (g *Gateway) serveJob(w http.ResponseWriter, r *http.Request, rt *runtime, rec *observe.Record) error {
	rec.Route = "/jobs/{id}"
	g.queue.Handler(func(r *http.Request) (string, bool) {
		c, _, ok := rt.auth.Request(r)
		rec.Caller = c
		return c, ok
	}).ServeHTTP(w, r)
	return nil
}

// staleKey is the cache key of a GET as the caller sent it.
func (ob *outbound) staleKey() fallback.StaleKey {
	return fallback.StaleKey{Integration: ob.in.name, Caller: ob.caller, Method: http.MethodGet, Path: ob.path, Query: ob.query}
}

// fallbackOr answers a call the gateway will not send now: with the last
// good response (stale), a queued job, or else the refusal itself.
func (g *Gateway) fallbackOr(w http.ResponseWriter, r *http.Request, ob *outbound, async bool, refusal *problem.Error) error {
	if served := serveStale(w, r.Context(), ob, r.Method); served {
		return nil
	}
	if async {
		return g.enqueue(w, r, ob)
	}
	return refusal
}

// serveStale writes the cached response to a GET if one is fresh enough.
func serveStale(w http.ResponseWriter, ctx context.Context, ob *outbound, method string) bool {
	if ob.in.stale == nil || method != http.MethodGet {
		return false
	}
	e, age, ok := ob.in.stale.Get(ctx, ob.staleKey())
	if !ok {
		return false
	}
	ob.rec.Fallback = "stale"
	e.Serve(w, age)
	return true
}

// enqueue stores the call durably and answers 202 with the job id.
func (g *Gateway) enqueue(w http.ResponseWriter, r *http.Request, ob *outbound) error {
	return g.enqueueAfter(w, r, ob, 0)
}

// enqueueAfter is enqueue with the first delivery held back by delay.
func (g *Gateway) enqueueAfter(w http.ResponseWriter, r *http.Request, ob *outbound, delay time.Duration) error {
	id, err := g.submit(r, ob, delay)
	if err != nil {
		return err
	}
	fallback.WriteAccepted(w, id)
	return nil
}

// submit stores the caller's request r durably, due after delay, and
// returns the job id.
func (g *Gateway) submit(r *http.Request, ob *outbound, delay time.Duration) (string, error) {
	var body []byte
	if r.GetBody != nil {
		rc, err := r.GetBody()
		if err == nil {
			body, _ = io.ReadAll(rc)
		}
	}
	out := r.Clone(r.Context())
	out.URL = &url.URL{Path: ob.path, RawQuery: ob.query}
	if p, err := url.PathUnescape(ob.path); err == nil {
		out.URL.Path, out.URL.RawPath = p, ob.path
	}
	out.Header.Set(headerRequestID, ob.requestID)
	id, err := g.queue.SubmitAfter(r.Context(), ob.caller, ob.in.name, out, body, delay)
	if err != nil {
		if errors.Is(err, fallback.ErrBodyTooLarge) {
			return "", problem.Wrap(problem.RequestTooLarge, "body too large to queue", err)
		}
		return "", problem.Wrap(problem.Overloaded, "the call could not be queued", err)
	}
	ob.rec.Fallback = "queued"
	return id, nil
}

// An async call on a queued route is queued, rather than failed, when the
// vendor looks down: after the retries are spent it answered 502, 503, 504
// or 429, or did not answer in time, or the gateway could not reach it, or
// the breaker or the vendor's own rate-limit pause refused it. Any other
// answer, 4xx included, goes to the caller as it is.
//
// A call the vendor may have received (it answered, or timed out) is queued
// only when sending it again is safe by the retry rules: an idempotent
// method, or an Idempotency-Key that reached the vendor with it. The job is
// delivered with that same key, so the vendor can tell a second delivery
// from a new call. A POST without one gets the vendor's answer as today.

// queuedError ends a vendor answer that was stored as a job instead;
// errorHandler answers the caller 202 with the job. The vendor's body was
// never read and is closed by ReverseProxy.
type queuedError struct {
	jobID  string
	status int
}

func (e *queuedError) Error() string {
	return fmt.Sprintf("vendor answered %d; queued as %s", e.status, e.jobID)
}

// queueVendorFailure queues an async call whose vendor answered 502, 503,
// 504 or 429 (the Retry layer has already spent its retries), its first
// delivery no sooner than the vendor's Retry-After. It returns a
// *queuedError when it did; nil leaves the answer to the caller, also when
// the store refused the job (the cause is logged with the request).
func (in *integration) queueVendorFailure(resp *http.Response, ob *outbound) error {
	if !ob.async || ob.g == nil || ob.g.queue == nil || !resilience.Replayable(resp.Request) {
		return nil
	}
	switch resp.StatusCode {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout, http.StatusTooManyRequests:
	default:
		return nil
	}
	delay, _ := resilience.ParseRetryAfter(resp.Header.Get("Retry-After"), ob.g.opts.Clock.Now())
	id, err := ob.g.submit(ob.req, ob, delay)
	if err != nil {
		ob.rec.Cause = "queue fallback failed, vendor answer passed on: " + err.Error()
		return nil
	}
	return &queuedError{jobID: id, status: resp.StatusCode}
}

// queueAfterError says whether an async call that failed with err (pe as
// classified) is queued, and how long its first delivery waits.
func queueAfterError(pe *problem.Error, err error, out *http.Request) (time.Duration, bool) {
	switch pe.Code {
	case problem.UpstreamUnreachable, problem.CircuitOpen:
		return 0, true
	case problem.UpstreamTimeout:
		// The vendor may have it: only a call that is safe to resend.
		return 0, resilience.Replayable(out)
	case problem.RateLimited:
		// The vendor's pause (its 429 or Retry-After) refused the attempt
		// before it was sent; the gateway's own limits never queue.
		var rl *resilience.RateLimitError
		if errors.As(err, &rl) && rl.Scope == "vendor" {
			return rl.RetryAfter, true
		}
	}
	return 0, false
}

// QueueTarget gives the queue worker an integration's outbound chain.
func (g *Gateway) QueueTarget(name string) (fallback.Target, error) {
	in, ok := g.rt.Load().integrations[name]
	if !ok {
		return fallback.Target{}, fallback.ErrUnknownIntegration
	}
	return fallback.Target{Transport: in.core.chain, Upstream: in.upstream}, nil
}

// Queue is the durable call queue (nil without a store).
func (g *Gateway) Queue() *fallback.Queue { return g.queue }
