package gateway

import (
	"net"
	"net/http"
	"strings"

	"github.com/portcullis-dev/portcullis/internal/observe"
	"github.com/portcullis-dev/portcullis/internal/problem"
)

// Tunnel is an inspected forward-proxy tunnel (proxy.inspect: true), as
// ServeTunneled takes it: the integration its CONNECT was admitted to,
// the caller that opened it — authenticated once, from the CONNECT's
// Proxy-Authorization or client certificate — and the host:port asked for.
type Tunnel struct {
	Integration string
	Caller      string
	Auth        string // how the caller authenticated (identity.Method)
	Host        string // canonical CONNECT host: lower case, no trailing dot
	Port        string
}

// ServeTunneled serves one request that arrived inside an inspected
// tunnel, with the same chain and code as a request to
// /{integration}/{vendor path}: request id, one record (log line with
// via=inspect, metrics, trace), path hygiene, route policy for the
// tunnel's caller, limits and fallbacks, the header allowlist, credential
// injection, retries and breaker, response validation.
//
// What differs is only where the integration and the caller come from:
// the tunnel, never the request. An Authorization or Proxy-Authorization
// header inside the tunnel is the caller's placeholder for the vendor key
// (the SDK's dummy key): it is removed, and the integration's credential
// is injected as for any call. The request's path is the vendor path
// (under the upstream's base path, if it has one), and its Host must be
// the tunnel's host:port, else it is refused with 421 bad_request_path.
func (g *Gateway) ServeTunneled(w http.ResponseWriter, r *http.Request, t Tunnel) {
	g.serveCall(w, r, &call{tunnel: &t})
}

// serveTunnel is serve's steps 2 and 3 for a tunneled request.
func (g *Gateway) serveTunnel(w http.ResponseWriter, r *http.Request, rt *runtime, c *call) error {
	t, rec := c.tunnel, &c.rec
	rec.Via = observe.ViaInspect
	rec.Integration, rec.Caller, rec.Auth = t.Integration, t.Caller, t.Auth
	// The placeholder credential never leaves, whatever else happens (the
	// header allowlist refuses these names too).
	r.Header.Del("Authorization")
	r.Header.Del("Proxy-Authorization")

	in, ok := rt.integrations[t.Integration]
	if !ok {
		// Removed by a reload while the tunnel stayed open.
		return problem.New(problem.UnknownIntegration, "the tunnel's integration is no longer configured")
	}
	if !tunnelHost(r.Host, t) {
		return &problem.Error{Code: problem.BadRequestPath, StatusOverride: http.StatusMisdirectedRequest,
			Detail: "the request's Host must be the tunnel's host:port (" + net.JoinHostPort(t.Host, t.Port) + ")"}
	}
	if in.upstream.Scheme != "https" || !strings.EqualFold(in.upstream.Hostname(), t.Host) || upstreamPort(in) != t.Port {
		// The forward proxy inspects only tunnels to the upstream; this
		// is a reload that moved the upstream while the tunnel stayed open.
		return problem.New(problem.RouteNotAllowed, "the tunnel's host is no longer the integration's upstream")
	}
	target := r.RequestURI
	if !strings.HasPrefix(target, "/") {
		return problem.New(problem.BadRequestPath, "inside a tunnel the request target must be a path (origin form)")
	}
	path, _, _ := strings.Cut(target, "?")
	vendorPath := path
	if in.basePath != "" {
		// Route templates are relative to the upstream's path, as in
		// reverse mode, where the caller does not repeat it.
		rest, ok := strings.CutPrefix(path, in.basePath)
		if !ok || rest != "" && rest[0] != '/' {
			return problem.New(problem.RouteNotAllowed, "the path is outside the integration's upstream path "+in.basePath)
		}
		if rest == "" {
			rest = "/"
		}
		vendorPath = rest
	}
	return g.serveFor(w, r, rt, c, in, t.Integration, vendorPath)
}

// tunnelHost reports whether a Host header names the tunnel's host:port
// (the port may be left out when it is 443).
func tunnelHost(host string, t *Tunnel) bool {
	h, port := host, "443"
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		h, port = host[:i], host[i+1:]
	}
	h = strings.TrimSuffix(h, ".")
	return h != "" && strings.EqualFold(h, t.Host) && port == t.Port
}

func upstreamPort(in *integration) string {
	if p := in.upstream.Port(); p != "" {
		return p
	}
	return "443"
}
