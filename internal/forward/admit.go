package forward

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"

	"github.com/portcullis-dev/portcullis/internal/egress"
	"github.com/portcullis-dev/portcullis/internal/problem"
)

// dialFunc dials "tcp" addresses.
type dialFunc = func(ctx context.Context, network, addr string) (net.Conn, error)

// ReasonSelf is the egress.DeniedError reason for a target that is one of
// the gateway's own listeners.
const ReasonSelf = "gateway's own listener"

// admission is an authenticated, decided and admitted request.
type admission struct {
	caller string
	dec    Decision
	dial   dialFunc // nil for an allow-listed plain request (use dec.in.transport)
}

// admit authenticates r, decides on t and takes a limit slot. On success
// the caller must call p.limits.release(a.caller, a.dec.in).
func (p *Proxy) admit(r *http.Request, ev *event, t target) (admission, error) {
	caller, method, ok := p.auth.Proxy(r)
	if !ok {
		return admission{}, proxyAuthRequired()
	}
	ev.caller, ev.auth = caller, string(method)

	dec, err := p.decider.Decide(Args{Caller: caller, Host: t.host, Port: t.port})
	if err != nil {
		switch {
		case errors.Is(err, ErrNotAllowed):
			return admission{}, deny(problem.EgressDenied, fmt.Sprintf("%s is not on the egress allowlist of any integration caller %s may use", t.addr(), caller), err)
		default: // ErrNotProxyCaller, ErrOtherIntegration
			return admission{}, deny(problem.RouteNotAllowed, fmt.Sprintf("caller %s may not use the forward proxy to reach %s", caller, t.addr()), err)
		}
	}
	ev.integration, ev.verdict, ev.wouldDeny = dec.Integration, dec.Verdict, dec.WouldDeny

	if p.disabled(dec.Integration) {
		return admission{}, problem.Errorf(problem.IntegrationDisabled, "integration %s is disabled", dec.Integration)
	}
	if t.ip.IsValid() && p.isSelf(t.ip, t.portNum(), netip.Addr{}) {
		return admission{}, deny(problem.EgressDenied, fmt.Sprintf("egress to %s denied: %s", t.addr(), ReasonSelf),
			&egress.DeniedError{Host: t.host, Port: t.port, IP: t.ip, Reason: ReasonSelf})
	}

	a := admission{caller: caller, dec: dec}
	if dec.Verdict != VerdictAllow {
		d, err := dec.in.unlistedDial(t)
		if err != nil {
			return admission{}, dialProblem(t, err)
		}
		a.dial = p.guardDial(d)
	}

	retry, err := p.limits.acquire(caller, dec.in)
	if err != nil {
		if errors.Is(err, ErrTunnelRate) {
			pe := problem.Wrap(problem.RateLimited, fmt.Sprintf("caller %s opened too many tunnels to integration %s this second", caller, dec.Integration), err)
			pe.RetryAfter = int(math.Ceil(retry.Seconds()))
			return admission{}, pe
		}
		return admission{}, problem.Wrap(problem.Overloaded, fmt.Sprintf("caller %s holds the maximum of %d tunnels to integration %s", caller, dec.in.spec.MaxTunnels, dec.Integration), err)
	}
	if dec.Verdict == VerdictReport {
		p.metrics.WouldDeny.WithLabelValues(dec.Integration, caller).Inc()
	}
	return a, nil
}

// proxyAuthRequired is rendered as 407 with Proxy-Authenticate.
func proxyAuthRequired() *problem.Error {
	return &problem.Error{
		Code:           problem.Unauthenticated,
		Detail:         `proxy authentication required: Proxy-Authorization "Basic base64(caller:token)" or "Bearer token", or a client certificate`,
		StatusOverride: http.StatusProxyAuthRequired,
	}
}

// deny is a policy refusal. The forward proxy answers every policy refusal
// with 403, including egress_denied (502 in the reverse proxy): for a
// proxy, 502 says "could not reach the target", which sends operators
// hunting for network faults and makes some clients retry, while 403 is
// what forward proxies (Squid, Smokescreen) answer for an ACL refusal. The
// X-Portcullis-Error code is the same in both modes.
func deny(code problem.Code, detail string, cause error) *problem.Error {
	pe := problem.Wrap(code, detail, cause)
	pe.StatusOverride = http.StatusForbidden
	return pe
}

// dialProblem maps a dial error to the caller's answer. The detail names
// the target and the refused address class, never the resolved address.
func dialProblem(t target, err error) *problem.Error {
	var de *egress.DeniedError
	switch {
	case errors.As(err, &de):
		return deny(problem.EgressDenied, fmt.Sprintf("egress to %s denied: %s", t.addr(), de.Reason), err)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return problem.Wrap(problem.UpstreamTimeout, fmt.Sprintf("connecting to %s timed out", t.addr()), err)
	default:
		return problem.Wrap(problem.UpstreamUnreachable, fmt.Sprintf("could not connect to %s", t.addr()), err)
	}
}

// unlistedDial is how report and open modes reach a target that is on no
// allowlist: through an egress Policy whose allowlist is that one target
// and whose address rules (allow_private, allow_cidrs) are the
// integration's, so the resolved address is still checked at dial time by
// the egress package, exactly as for allow-listed targets.
func (in *integ) unlistedDial(t target) (dialFunc, error) {
	c := in.addrRules
	c.Allow = []string{t.addr()}
	pol, err := egress.NewPolicy(c)
	if err != nil {
		// An IP literal the address rules would always refuse.
		de := &egress.DeniedError{Host: t.host, Port: t.port, IP: t.ip, Reason: "target refused by the egress policy"}
		if t.ip.IsValid() {
			de.Reason, _ = egress.Classify(t.ip)
		}
		return nil, de
	}
	return pol.DialContext, nil
}

// guardDial refuses connections that reached one of the gateway's own
// listeners. The check runs on the connected socket's actual addresses, so
// no DNS answer can get around it; the connection is closed before a byte
// is relayed.
func (p *Proxy) guardDial(dial dialFunc) dialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		remote, local := addrPort(c.RemoteAddr()), addrPort(c.LocalAddr())
		if p.isSelf(remote.Addr().Unmap(), remote.Port(), local.Addr().Unmap()) {
			_ = c.Close()
			host, port, _ := net.SplitHostPort(addr)
			return nil, &egress.DeniedError{Host: host, Port: port, IP: remote.Addr().Unmap(), Reason: ReasonSelf}
		}
		return c, nil
	}
}

// isSelf reports whether ip:port is one of the gateway's listeners. A
// connection to an unspecified address reaches this host; a listener on an
// unspecified address (0.0.0.0, ::) is reached through any loopback
// address or any of the host's own addresses; local, when valid,
// is the connection's source address, which equals the destination when
// the kernel routes a connection to one of the host's own addresses.
func (p *Proxy) isSelf(ip netip.Addr, port uint16, local netip.Addr) bool {
	for _, ap := range p.selfAddrs() {
		if ap.Port() != port {
			continue
		}
		sa := ap.Addr().Unmap()
		switch {
		case sa == ip, ip.IsUnspecified(): // 0.0.0.0 and :: reach this host
			return true
		case sa.IsUnspecified() && (ip.IsLoopback() || ip == local):
			return true
		}
	}
	return false
}

// selfAddrs is p.self() parsed. The parse is kept and reused while
// p.self() returns the same addresses, which it does between listener
// changes, so a tunnel costs a comparison of a few short strings instead
// of parsing them twice (once at admission, once after the dial).
func (p *Proxy) selfAddrs() []netip.AddrPort {
	cur := p.self()
	if c := p.selfParsed.Load(); c != nil && slices.Equal(c.src, cur) {
		return c.addrs
	}
	c := &parsedSelf{src: slices.Clone(cur), addrs: make([]netip.AddrPort, 0, len(cur))}
	for _, s := range cur {
		if ap, err := netip.ParseAddrPort(s); err == nil {
			c.addrs = append(c.addrs, ap)
		}
	}
	p.selfParsed.Store(c)
	return c.addrs
}

// parsedSelf is one result of selfAddrs: the strings and their parse.
type parsedSelf struct {
	src   []string
	addrs []netip.AddrPort
}

// addrPort is a socket address as a netip.AddrPort, without formatting and
// parsing it for the TCP sockets every dial returns.
func addrPort(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// addrString is a.String() for the vendor address of the log line,
// formatted from the TCP address without the intermediate strings
// net.TCPAddr.String builds.
func addrString(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok && ta.Zone == "" {
		if ip, ok := netip.AddrFromSlice(ta.IP); ok {
			return netip.AddrPortFrom(ip.Unmap(), uint16(ta.Port)).String()
		}
	}
	return a.String()
}
