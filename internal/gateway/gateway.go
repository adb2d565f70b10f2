// Package gateway owns the caller-facing request path: the inbound handler
// chain (recover → request id → record → integration → identity → path
// hygiene → policy → limits → proxy), the httputil.ReverseProxy assembly
// with its outbound RoundTripper chain, and hot reload of the compiled
// config. The admin API it answers (status, kill switch, credential
// refresh) is served by package admin through the admin.API it implements.
package gateway

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/portcullis-dev/portcullis/internal/chaos"
	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/internal/fallback"
	"github.com/portcullis-dev/portcullis/internal/observe"
	"github.com/portcullis-dev/portcullis/internal/problem"
	"github.com/portcullis-dev/portcullis/internal/resilience"
	"github.com/portcullis-dev/portcullis/internal/store"
)

// Gateway serves callers. Its compiled config is swapped atomically on
// reload; a request keeps the runtime it started with, so a reload never
// drops or changes an in-flight call.
type Gateway struct {
	log     *slog.Logger
	metrics *observe.Metrics
	opts    Options
	rt      atomic.Pointer[runtime]
	cores   cores
	// kill and queue live across reloads; nil without a store.
	kill   *fallback.KillSwitch
	queue  *fallback.Queue
	tracer trace.Tracer
	// global is rate_limit.global's shared limiter; nil without a store
	// that keeps rate limits.
	global *resilience.GlobalLimiter
}

// New compiles cfg and returns a ready Gateway.
func New(cfg *config.Config, o Options) (*Gateway, error) {
	o.defaults()
	g := &Gateway{log: o.Logger, metrics: o.Metrics, opts: o, tracer: o.tracer()}
	if o.Store != nil {
		g.kill = fallback.NewKillSwitch(o.Store, o.Clock, o.Logger)
		g.queue = fallback.NewQueue(o.Store, fallback.QueueConfig{Headers: g.requestHeaders}, o.Clock)
		if rl, ok := o.Store.(store.RateLimiter); ok {
			g.global = resilience.NewGlobalLimiter(sharedBuckets{rl, o.Store}, o.Clock, o.Logger)
		}
	}
	rt, err := compile(cfg, &g.opts, &g.cores)
	if err != nil {
		return nil, err
	}
	g.cores.commit(rt.cores)
	g.rt.Store(rt)
	g.metrics.Registry.MustRegister(stateCollector{g})
	return g, nil
}

// requestHeaders is an integration's request-header allowlist, for the queue.
func (g *Gateway) requestHeaders(name string) []string {
	if in, ok := g.rt.Load().integrations[name]; ok {
		return in.headers
	}
	return []string{}
}

// Reload compiles cfg and, only if that succeeds, swaps it in. The old
// runtime keeps serving the requests that started on it; its idle vendor
// connections are closed once they have had time to finish.
func (g *Gateway) Reload(cfg *config.Config) error {
	rt, err := compile(cfg, &g.opts, &g.cores)
	if err != nil {
		g.metrics.Reloads.WithLabelValues("error").Inc()
		return err
	}
	dropped := g.cores.commit(rt.cores)
	g.rt.Swap(rt)
	g.metrics.Reloads.WithLabelValues("ok").Inc()
	// Requests that started on the old config keep its cores until they
	// finish; idle connections of cores no longer used are closed after
	// the grace period.
	time.AfterFunc(cfg.Server.ShutdownGrace.D, func() {
		for _, k := range dropped {
			k.base.CloseIdleConnections()
		}
	})
	return nil
}

// Config returns the config currently served.
func (g *Gateway) Config() *config.Config { return g.rt.Load().cfg }

// Close releases the current runtime's resources and stops the shared
// rate limit's store prober.
func (g *Gateway) Close() {
	if g.global != nil {
		g.global.Close()
	}
	for _, k := range g.rt.Load().cores {
		k.base.CloseIdleConnections()
	}
}

// sharedBuckets are a store's shared rate limits and its ping.
type sharedBuckets struct {
	store.RateLimiter
	s store.Store
}

func (b sharedBuckets) Ping(ctx context.Context) error { return b.s.Ping(ctx) }

const (
	headerRequestID = "X-Request-Id"
	headerFallback  = "X-Portcullis-Fallback"
	maxRequestIDLen = 128
)

// call is what one request allocates up front, in one allocation: the
// record, the status writer, the data of the outbound hooks, the proxy's
// context and request, and the small arrays that the request id's header
// value and the path segments live in.
type call struct {
	rec observe.Record
	sw  observe.StatusWriter
	ob  outbound
	// rid is the X-Request-Id header value, shared by the caller's answer
	// and the vendor request; header values are replaced, never written
	// in place, so sharing it is safe.
	rid  [1]string
	segs [8]string
	// tunnel is set for a request inside an inspected forward-proxy
	// tunnel (ServeTunneled): it names the integration and the caller.
	tunnel *Tunnel
	// ctx and req are the context and request the reverse proxy gets.
	ctx callContext
	req http.Request
	// target is what chaos faults are matched against (Options.Faults set).
	target chaos.Target
}

// ServeHTTP is the caller listener's handler.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.serveCall(w, r, &call{})
}

// serveCall is ServeHTTP for a call whose tunnel (if any) is set.
func (g *Gateway) serveCall(w http.ResponseWriter, r *http.Request, c *call) {
	rt := g.rt.Load()
	rec := &c.rec
	rec.Start, rec.Method, rec.RequestID = time.Now(), r.Method, requestID(r.Header.Get(headerRequestID))
	c.rid[0] = rec.RequestID
	w.Header()[headerRequestID] = c.rid[:]
	ctx, span := g.startSpan(r)
	defer endSpan(span, rec)
	if ctx != r.Context() {
		r = r.WithContext(ctx)
	}
	sw := &c.sw
	sw.ResponseWriter = w
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				rec.ErrorCode = "aborted"
				g.finish(ctx, rec, sw)
				panic(p)
			}
			// The panic value and stack may hold request data: log them
			// scrubbed, show the caller nothing but the request id.
			g.log.Error("panic", observe.KeyRequestID, rec.RequestID, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			if sw.Status == 0 {
				g.fail(sw, rec, problem.New(problem.Internal, "internal error"))
			}
		}
		g.finish(ctx, rec, sw)
	}()
	if err := g.serve(sw, r, rt, c); err != nil {
		g.fail(sw, rec, err)
	}
}

func (g *Gateway) finish(ctx context.Context, rec *observe.Record, sw *observe.StatusWriter) {
	if rec.Status == 0 {
		rec.Status = sw.Status
	}
	rec.BytesOut = sw.Bytes
	g.metrics.Observe(rec, time.Since(rec.Start).Seconds())
	rec.Log(ctx, g.log)
	if g.opts.OnRecord != nil {
		g.opts.OnRecord(rec)
	}
}

// fail writes a gateway refusal and notes it in the record.
func (g *Gateway) fail(w http.ResponseWriter, rec *observe.Record, err error) {
	pe := problem.As(err)
	rec.ErrorCode = string(pe.Code)
	rec.Status = pe.Status()
	if pe.Err != nil {
		rec.Cause = pe.Err.Error()
	}
	problem.Write(w, rec.RequestID, pe)
}

// requestID keeps a well-formed caller id (1–128 of A-Za-z0-9._-) or makes one.
func requestID(in string) string {
	if n := len(in); n > 0 && n <= maxRequestIDLen {
		ok := true
		for i := 0; i < n; i++ {
			c := in[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
				ok = false
				break
			}
		}
		if ok {
			return in
		}
	}
	return newRequestID()
}

// lowerBase32 is base32.StdEncoding in lower case (15 random bytes encode
// to 24 characters, no padding).
var lowerBase32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Generated request ids are cut from blocks of idsPerBlock ids, drawn and
// encoded at once and made a string in one allocation (instead of one per
// id). Each id is handed out once: a block is owned by the goroutine
// that took it from the pool until it is put back. An id keeps its block
// (idsPerBlock × 24 bytes) alive while it is referenced.
const (
	idRandBytes = 15
	idLen       = 24 // lowerBase32 of idRandBytes
	idsPerBlock = 16
)

type idBlock struct {
	s    string // idsPerBlock ids, back to back
	next int    // offset of the next unused id in s
}

var idBlocks = sync.Pool{New: func() any { return new(idBlock) }}

func newRequestID() string {
	b := idBlocks.Get().(*idBlock)
	if b.next == len(b.s) {
		var raw [idRandBytes * idsPerBlock]byte
		_, _ = rand.Read(raw[:])
		var out [idLen * idsPerBlock]byte
		lowerBase32.Encode(out[:], raw[:]) // idRandBytes is a multiple of 5: the ids encode independently
		b.s, b.next = string(out[:]), 0
	}
	id := b.s[b.next : b.next+idLen]
	b.next += idLen
	idBlocks.Put(b)
	return id
}
