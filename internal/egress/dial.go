package egress

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
)

// DialContext connects to addr ("host:port") under the policy. It refuses a
// host:port that is not on the allowlist without resolving it, then lets
// net.Dialer resolve the name and checks, inside ControlContext, the exact
// address each socket is about to connect to: a denied address is never
// connected to, whatever DNS answered. Only "tcp", "tcp4" and "tcp6" are
// supported.
//
// A refusal is returned as a *DeniedError (errors.Is(err, ErrDenied)). Other
// failures (connection refused, timeouts, DNS errors) are returned as the
// dialer reports them and do not match ErrDenied. When a name resolves to
// several addresses, allowed ones are still tried; if the dial fails and any
// address was refused, the refusal is returned, so a mixed answer is visible
// as a policy event rather than as an unreachable vendor.
func (p *Policy) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, &DeniedError{Host: addr, Reason: "malformed address"}
	}
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, &DeniedError{Host: host, Port: port, Reason: "network " + strconv.Quote(network) + " not allowed"}
	}
	canonical, ok := p.allow.match(host, port)
	if !ok {
		return nil, &DeniedError{Host: host, Port: port, Reason: ReasonNotAllowlisted}
	}
	n, _ := parsePort(port) // match has validated it
	g := &dialGuard{policy: p, host: canonical, port: n}
	d := net.Dialer{
		Timeout:        p.connectTimeout,
		Resolver:       p.resolver,
		ControlContext: g.control,
	}
	conn, err := d.DialContext(ctx, network, net.JoinHostPort(canonical, strconv.Itoa(int(n))))
	if err != nil {
		if de := g.firstDenial(); de != nil {
			return nil, de
		}
		return nil, err
	}
	return conn, nil
}

// dialGuard checks the addresses of one DialContext call and remembers the
// first refusal. Happy Eyeballs may run control for two sockets at once.
type dialGuard struct {
	policy *Policy
	host   string
	port   uint16

	mu     sync.Mutex
	denial *DeniedError
}

// control runs after the socket is created and before connect(2), with the
// resolved address the socket will connect to.
func (g *dialGuard) control(_ context.Context, network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		// Cannot happen for TCP dials; refuse rather than guess.
		return g.deny(netip.Addr{}, fmt.Sprintf("unparsable socket address %q", address))
	}
	if ap.Port() != g.port {
		return g.deny(ap.Addr(), fmt.Sprintf("port %d differs from the checked port", ap.Port()))
	}
	if reason, ok := g.policy.allowedAddr(ap.Addr()); !ok {
		return g.deny(ap.Addr(), reason)
	}
	return nil
}

func (g *dialGuard) deny(ip netip.Addr, reason string) error {
	de := &DeniedError{Host: g.host, Port: strconv.Itoa(int(g.port)), IP: ip, Reason: reason}
	g.mu.Lock()
	if g.denial == nil {
		g.denial = de
	}
	g.mu.Unlock()
	return de
}

func (g *dialGuard) firstDenial() *DeniedError {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.denial
}
