package forward

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"

	"github.com/portcullis-dev/portcullis/internal/observe"
	"github.com/portcullis-dev/portcullis/internal/problem"
)

// plainState travels in an absolute-form request's context to the
// ReverseProxy hooks.
type plainState struct {
	target    target
	transport http.RoundTripper
	ev        *event
}

type plainKey struct{}

func plainFrom(ctx context.Context) *plainState {
	st, _ := ctx.Value(plainKey{}).(*plainState)
	return st
}

// servePlain forwards an absolute-form plain-HTTP request
// ("GET http://host:port/path") with httputil.ReverseProxy, through the
// same egress-guarded dialer as a tunnel. It counts as a tunnel for the
// limits: it holds a slot while in flight, takes a new-tunnel token, and
// max_lifetime bounds it. The vendor never sees Proxy-Authorization,
// hop-by-hop headers, or the caller's Authorization and Cookie, and no
// X-Forwarded-* headers are added.
func (p *Proxy) servePlain(w http.ResponseWriter, r *http.Request, ev *event) error {
	t, err := plainTarget(r)
	if err != nil {
		if _, _, ok := p.auth.Proxy(r); !ok {
			return proxyAuthRequired()
		}
		return err
	}
	ev.target = t.addr()
	a, err := p.admit(r, ev, t)
	if err != nil {
		return err
	}
	in := a.dec.in
	defer p.limits.release(a.caller, in)
	active := p.metrics.activeGauge(in.name, a.caller)
	active.Inc()
	defer active.Dec()

	var rt http.RoundTripper = in.transport
	if a.dial != nil {
		// A target let through by report or open mode: a one-off
		// transport whose dialer allows just this target.
		tr := plainTransport(a.dial)
		tr.DisableKeepAlives = true
		defer tr.CloseIdleConnections()
		rt = tr
	}
	ctx, cancel := context.WithTimeout(r.Context(), in.spec.MaxLifetime.D)
	defer cancel()
	ctx = context.WithValue(ctx, plainKey{}, &plainState{target: t, transport: rt, ev: ev})

	cw := &observe.StatusWriter{ResponseWriter: w}
	body := &countingReader{r: r.Body}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = body
	}
	p.rp.ServeHTTP(cw, r.WithContext(ctx))
	ev.bytesIn, ev.bytesOut = body.n, cw.Bytes
	if ev.status == 0 {
		ev.status = cw.Status
	}
	return nil
}

// plainTarget validates an absolute-form request's URL.
func plainTarget(r *http.Request) (target, error) {
	bad := func(detail string, err error) (target, error) {
		return target{}, problem.Wrap(problem.BadRequestPath, detail, err)
	}
	if r.URL.Scheme != "http" {
		return bad("absolute-form requests must be http://; use CONNECT for https", nil)
	}
	if r.URL.User != nil {
		return bad("user info in the request URL is not allowed", nil)
	}
	t, err := parseAuthority(r.URL.Host, "80")
	if err != nil {
		return bad("malformed or ambiguous host in the request URL", err)
	}
	return t, nil
}

// reverseProxy builds the ReverseProxy shared by all plain requests of
// this Proxy; the per-request target and transport come from the context.
func (p *Proxy) reverseProxy() *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		// Rewrite sends the request to the checked, canonical target. The
		// Host header becomes that target too (a client cannot ask for one
		// host and present another). ReverseProxy has already removed
		// hop-by-hop headers (Proxy-Authorization among them) and drops
		// caller-supplied X-Forwarded-* headers; none are added.
		Rewrite: func(pr *httputil.ProxyRequest) {
			st := plainFrom(pr.In.Context())
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = hostHeader(st.target)
			pr.Out.Host = ""
			pr.Out.Header.Del("Proxy-Authorization")
			// The caller's own credentials would cross the network in
			// clear text, to a target that (in report or open mode) may be
			// any host: they are never forwarded. A service that must send
			// its vendor key uses https://, which tunnels end to end.
			pr.Out.Header.Del("Authorization")
			pr.Out.Header.Del("Cookie")
			pr.Out.Header.Set(headerRequestID, st.ev.requestID)
		},
		Transport: ctxTransport{},
		// ModifyResponse records where the request went.
		ModifyResponse: func(resp *http.Response) error {
			if st := plainFrom(resp.Request.Context()); st != nil {
				st.ev.status = resp.StatusCode
			}
			return nil
		},
		// ErrorHandler turns transport errors into gateway refusals; the
		// error text reaches only the log.
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			st := plainFrom(r.Context())
			p.fail(w, st.ev, dialProblem(st.target, err))
		},
		ErrorLog: slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
	}
}

// ctxTransport sends each request with the transport chosen for it.
type ctxTransport struct{}

func (ctxTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	st := plainFrom(r.Context())
	if st == nil {
		return nil, fmt.Errorf("forward: request without a proxy target")
	}
	resp, err := st.transport.RoundTrip(r)
	if err == nil && resp != nil {
		st.ev.remote = st.target.addr()
	}
	return resp, err
}

// hostHeader is host[:port] for the URL and Host header, without the
// default port.
func hostHeader(t target) string {
	if t.port == "80" {
		if t.ip.Is6() {
			return "[" + t.host + "]"
		}
		return t.host
	}
	return net.JoinHostPort(t.host, t.port)
}

// countingReader counts request body bytes read from the caller.
type countingReader struct {
	r io.ReadCloser
	n int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}

func (c *countingReader) Close() error { return c.r.Close() }
