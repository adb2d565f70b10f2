package gateway

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"

	"github.com/portcullis-dev/portcullis/internal/fallback"
	"github.com/portcullis-dev/portcullis/internal/observe"
	"github.com/portcullis-dev/portcullis/internal/problem"
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
	id, err := g.queue.Submit(r.Context(), ob.caller, ob.in.name, out, body)
	if err != nil {
		if errors.Is(err, fallback.ErrBodyTooLarge) {
			return problem.Wrap(problem.RequestTooLarge, "body too large to queue", err)
		}
		return problem.Wrap(problem.Overloaded, "the call could not be queued", err)
	}
	ob.rec.Fallback = "queued"
	fallback.WriteAccepted(w, id)
	return nil
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
