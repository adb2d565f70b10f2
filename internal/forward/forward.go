// Package forward owns Portcullis's forward-proxy mode: `CONNECT host:port`
// tunnels and absolute-form plain-HTTP requests on the caller listener, for
// services whose vendor SDK cannot change its base URL but honours
// HTTPS_PROXY. It authenticates the caller (identity.Authenticator.Proxy),
// decides which integration a target belongs to (Decide), enforces the
// per caller+integration tunnel limits, dials through the same egress
// Policy as the reverse proxy (one dial-time address guard, not two),
// refuses the gateway's own listeners, relays bytes, and writes one log
// line and metrics per tunnel.
//
// A plain tunnel carries the caller's own TLS session end to end: the
// gateway sees host, port, timing and byte counts, never the requests
// inside. It cannot inject vendor credentials, apply route policy to
// methods and paths, or validate bodies; docs/forward-proxy.md says so to
// users. A tunnel of an integration with proxy.inspect is not relayed:
// inspect.go terminates its TLS with a leaf for the CONNECT host
// (Options.Inspect) and hands each HTTP/1.1 request inside to the
// gateway's chain (gateway.ServeTunneled, wired by the server package).
package forward

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis-dev/portcullis/internal/clock"
	"github.com/portcullis-dev/portcullis/internal/identity"
	"github.com/prometheus/client_golang/prometheus"
)

// Options are the Proxy's collaborators, all optional.
type Options struct {
	// Logger receives one line per tunnel or plain request (default: discard).
	Logger *slog.Logger
	// Metrics are shared across reloads; when nil, New builds them with
	// NewMetrics(Registry).
	Metrics *Metrics
	// Registry is where New registers Metrics it builds itself.
	Registry *prometheus.Registry
	// Resolver resolves target names at dial time (tests); nil: the system's.
	Resolver *net.Resolver
	// SelfAddrs returns the gateway's own listener addresses ("ip:port");
	// tunnels and requests to them are refused. It is called per request,
	// so listeners bound after New are covered.
	SelfAddrs func() []string
	// Disabled reports whether an integration's kill switch is on; such
	// integrations refuse new tunnels with integration_disabled.
	Disabled func(integration string) bool
	// Clock is the clock for the new-tunnel rate limit and durations
	// (default clock.System). Socket deadlines always use the real clock.
	Clock clock.Clock
	// Inspect serves the tunnels of integrations with proxy.inspect; nil
	// refuses them (500 internal).
	Inspect *Inspect
}

// Proxy handles CONNECT and absolute-form requests for one config load.
// Build a new one on reload and swap it in atomically; tunnels opened
// through the old one keep running under the old rules until they end,
// go idle, or reach their max_lifetime.
type Proxy struct {
	log      *slog.Logger
	metrics  *Metrics
	auth     *identity.Authenticator
	decider  *decider
	limits   *limiter
	self     func() []string
	disabled func(string) bool
	now      func() time.Time
	rp       *httputil.ReverseProxy
	bufs     *sync.Pool // tunnel copy buffers, when splice(2) cannot be used
	ids      *requestIDs
	inspect  *Inspect

	selfParsed atomic.Pointer[parsedSelf] // selfAddrs' last parse of self()

	mu      sync.Mutex
	tunnels map[closable]struct{}
}

// closable is an open tunnel, plain (*tunnel) or inspected, that
// Shutdown can end.
type closable interface{ shutdown() }

// New compiles the `proxy:` blocks of integrations (by name). auth
// authenticates callers (identity.New of the callers section). It opens
// no connection.
func New(integrations map[string]Integration, auth *identity.Authenticator, o Options) (*Proxy, error) {
	if auth == nil {
		return nil, errors.New("forward: nil authenticator")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil))
	}
	o.Clock = clock.Or(o.Clock)
	if o.Metrics == nil {
		o.Metrics = NewMetrics(o.Registry)
	}
	if o.SelfAddrs == nil {
		o.SelfAddrs = func() []string { return nil }
	}
	if o.Disabled == nil {
		o.Disabled = func(string) bool { return false }
	}
	p := &Proxy{
		log:      o.Logger,
		metrics:  o.Metrics,
		auth:     auth,
		limits:   newLimiter(o.Clock.Now),
		self:     o.SelfAddrs,
		disabled: o.Disabled,
		now:      o.Clock.Now,
		tunnels:  map[closable]struct{}{},
		bufs:     newBufferPool(),
		ids:      newRequestIDs(),
		inspect:  o.Inspect,
	}
	d, err := compileIntegrations(integrations, o.Resolver, p.guardDial)
	if err != nil {
		return nil, err
	}
	p.decider = d
	p.rp = p.reverseProxy()
	return p, nil
}

// IsProxyRequest reports whether r is for the forward proxy: a CONNECT, or
// an absolute-form request ("GET http://host/path"). The reverse proxy's
// requests are origin-form ("/integration/..."); "OPTIONS *" is neither.
func IsProxyRequest(r *http.Request) bool {
	if r.Method == http.MethodConnect {
		return true
	}
	return r.RequestURI != "" && r.RequestURI != "*" && !strings.HasPrefix(r.RequestURI, "/")
}

// Decide exposes the allow/deny decision (without limits or dialing), for
// `portcullis audit`-style tooling and tests.
func (p *Proxy) Decide(a Args) (Decision, error) { return p.decider.Decide(a) }

// ServeHTTP serves one CONNECT or absolute-form request. For a CONNECT it
// returns when the tunnel closes.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ev := &event{start: p.now(), requestID: p.ids.get(r.Header.Get(headerRequestID)), kind: kindHTTP}
	if r.Method == http.MethodConnect {
		ev.kind = kindConnect
	}
	defer p.finish(r.Context(), ev)
	var err error
	if ev.kind == kindConnect {
		err = p.serveConnect(w, r, ev)
	} else {
		err = p.servePlain(w, r, ev)
	}
	if err != nil {
		p.fail(w, ev, err)
	}
}

// Close releases the pooled vendor connections of plain-HTTP forwarding.
// It does not end tunnels: after a reload they run on until they end, go
// idle, or reach max_lifetime (use Shutdown to end them).
func (p *Proxy) Close() {
	for _, in := range p.decider.integs {
		in.transport.CloseIdleConnections()
	}
}

// Shutdown waits until every tunnel of this Proxy has closed or ctx is
// done; then it closes the remaining ones (logged with close_reason
// shutdown) and returns ctx.Err(). Call it when the process stops, after
// the listener's own http.Server.Shutdown (which does not track hijacked
// connections).
func (p *Proxy) Shutdown(ctx context.Context) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		p.mu.Lock()
		n := len(p.tunnels)
		p.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			p.mu.Lock()
			for t := range p.tunnels {
				t.shutdown()
			}
			p.mu.Unlock()
			return ctx.Err()
		case <-tick.C:
		}
	}
}

func (p *Proxy) track(t closable) {
	p.mu.Lock()
	p.tunnels[t] = struct{}{}
	p.mu.Unlock()
}

func (p *Proxy) untrack(t closable) {
	p.mu.Lock()
	delete(p.tunnels, t)
	p.mu.Unlock()
}
