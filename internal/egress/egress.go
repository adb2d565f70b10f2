// Package egress owns where Portcullis may connect on a vendor's behalf: one
// integration's host:port allowlist, the classification of every resolved IP
// address at dial time (the SSRF guard), and the verified TLS settings (minimum
// version, private CA bundle, SPKI pins) used to reach the vendor.
//
// The security model follows Stripe's Smokescreen: the allowlist is checked on
// the host name and port before dialing, and the address the socket is about to
// connect to is classified inside net.Dialer.ControlContext, after DNS
// resolution, so a DNS answer cannot move a request to a denied address after
// the check (no time-of-check/time-of-use gap). The same Policy serves the
// reverse proxy (through Transport) and the forward proxy's CONNECT tunnels
// (through DialContext or CheckHostPort), so there is one implementation.
//
// Redirect handling is not this package's concern: http.Transport never
// follows redirects, and the gateway decides whether a redirect target is
// itself allowed (using AllowsHostPort).
package egress

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"
)

// ErrDenied is matched (errors.Is) by every refusal of this package's policy.
var ErrDenied = errors.New("egress denied")

// ErrPinMismatch is returned (wrapped in the TLS handshake error) when none of
// the certificates in the verified chain matches a configured SPKI pin. It is
// deliberately not ErrDenied: the address was allowed, the vendor's identity
// was not, and operators should page on the difference.
var ErrPinMismatch = errors.New("egress: no certificate in the verified chain matches a pinned SPKI")

// ErrInvalidConfig is matched by every error NewPolicy returns.
var ErrInvalidConfig = errors.New("invalid egress config")

// DeniedError describes one refused connection. It carries only host names,
// ports and addresses, never request data or credentials.
type DeniedError struct {
	Host   string     // host as checked (normalised), or as given when it could not be normalised
	Port   string     // port as given
	IP     netip.Addr // the resolved address that was refused; invalid when the name itself was refused
	Reason string     // "not on allowlist", or the address class from Classify, e.g. "loopback"
}

// Error reports what was refused and why.
func (e *DeniedError) Error() string {
	hp := e.Host
	if e.Port != "" {
		hp = net.JoinHostPort(e.Host, e.Port)
	}
	if e.IP.IsValid() {
		return fmt.Sprintf("egress denied: %s resolved to %s (%s)", hp, e.IP, e.Reason)
	}
	return fmt.Sprintf("egress denied: %s (%s)", hp, e.Reason)
}

// Unwrap makes errors.Is(err, ErrDenied) true.
func (e *DeniedError) Unwrap() error { return ErrDenied }

// ReasonNotAllowlisted is DeniedError.Reason when the host:port is not on the
// allowlist.
const ReasonNotAllowlisted = "not on allowlist"

// Config is one integration's egress settings as written in the config file
// (`integrations.NAME.egress`). NewPolicy validates and compiles it.
type Config struct {
	// Allow lists the "host:port" pairs the integration may reach. The port is
	// required (1-65535). The host is a DNS name (matched case-insensitively,
	// a trailing dot ignored, internationalised names compared in their
	// punycode form), a wildcard "*.example.com" that matches one or more
	// labels in front of example.com (but not example.com itself, and never a
	// whole public suffix such as "*.com"), or an IP literal ("192.0.2.7:443",
	// "[2001:db8::7]:443"). An empty list denies everything.
	Allow []string

	// AllowPrivate permits resolved addresses that Classify denies (private,
	// loopback, link-local, ...). It is meant for tests and vendors inside
	// the private network. Cloud metadata addresses (169.254.169.254,
	// fd00:ec2::254, 168.63.129.16) stay denied even then; list them in
	// AllowCIDRs if an integration truly needs them.
	AllowPrivate bool

	// AllowCIDRs re-allows specific denied ranges, e.g. "10.1.2.0/24", without
	// opening all of them as AllowPrivate does. Prefixes must be canonical
	// (no host bits set). An IPv4 prefix also covers the IPv4-mapped,
	// NAT64 and 6to4 forms of its addresses.
	AllowCIDRs []string

	// PinSPKI, when set, requires that some certificate of the verified chain
	// has a SubjectPublicKeyInfo whose SHA-256 digest, base64-encoded (as in
	// HPKP's pin-sha256), is in this list. Pins add to chain verification;
	// they never replace it.
	PinSPKI []string

	// CAFile names a PEM bundle of CA certificates for a private vendor. When
	// set, only these CAs are trusted for this integration (smallest trust);
	// otherwise the system roots are used.
	CAFile string

	// ConnectTimeout bounds one TCP connect (DefaultConnectTimeout if zero).
	ConnectTimeout time.Duration
	// TLSHandshakeTimeout bounds the TLS handshake in Transport
	// (DefaultTLSHandshakeTimeout if zero).
	TLSHandshakeTimeout time.Duration
	// ResponseHeaderTimeout bounds Transport's wait for response headers
	// (zero: no limit but the request's own context).
	ResponseHeaderTimeout time.Duration
	// IdleConnTimeout closes Transport's idle pooled connections
	// (DefaultIdleConnTimeout if zero).
	IdleConnTimeout time.Duration

	// Resolver resolves host names at dial time; nil means net.DefaultResolver.
	// Tests point it at a fake DNS server. The resolver's own DNS traffic is
	// not subject to the policy.
	Resolver *net.Resolver
}

// Policy is one integration's compiled egress rules. It is immutable once
// built and safe for concurrent use.
type Policy struct {
	allow               allowlist
	allowPrivate        bool
	allowCIDRs          []netip.Prefix
	pins                map[[32]byte]struct{}
	roots               *x509.CertPool // nil: system roots
	caDigest            string         // sha256 of the CA file's bytes; "" without one
	connectTimeout      time.Duration
	tlsHandshakeTimeout time.Duration
	headerTimeout       time.Duration
	idleConnTimeout     time.Duration
	resolver            *net.Resolver
}

// NewPolicy validates every field of c and compiles it. It reports all
// problems at once, one per line, each naming the offending entry; the
// error matches ErrInvalidConfig.
func NewPolicy(c Config) (*Policy, error) {
	p := &Policy{
		allowPrivate:        c.AllowPrivate,
		connectTimeout:      c.ConnectTimeout,
		tlsHandshakeTimeout: c.TLSHandshakeTimeout,
		headerTimeout:       c.ResponseHeaderTimeout,
		idleConnTimeout:     c.IdleConnTimeout,
		resolver:            c.Resolver,
	}
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format, args...))
	}

	for i, s := range c.AllowCIDRs {
		pfx, err := parseAllowCIDR(s)
		if err != nil {
			bad("allow_cidrs[%d] %q: %w", i, s, err)
			continue
		}
		p.allowCIDRs = append(p.allowCIDRs, pfx)
	}

	p.allow = newAllowlist()
	for i, s := range c.Allow {
		e, err := parseAllowEntry(s)
		if err != nil {
			bad("allow[%d] %q: %w", i, s, err)
			continue
		}
		if e.addr.IsValid() {
			// An IP-literal entry that the address check would always refuse
			// can never work; say so now rather than at the first request.
			if reason, ok := p.allowedAddr(e.addr); !ok {
				bad("allow[%d] %q: address is %s and would always be denied; set allow_private or allow_cidrs", i, s, reason)
				continue
			}
		}
		p.allow.add(e)
	}

	pins, err := parsePins(c.PinSPKI)
	if err != nil {
		errs = append(errs, err)
	}
	p.pins = pins

	if c.CAFile != "" {
		roots, digest, err := loadCAFile(c.CAFile)
		if err != nil {
			bad("ca_file %q: %w", c.CAFile, err)
		}
		p.roots, p.caDigest = roots, digest
	}

	switch {
	case c.ConnectTimeout < 0:
		bad("connect timeout %s: must not be negative", c.ConnectTimeout)
	case c.ConnectTimeout == 0:
		p.connectTimeout = DefaultConnectTimeout
	}
	switch {
	case c.TLSHandshakeTimeout < 0:
		bad("tls handshake timeout %s: must not be negative", c.TLSHandshakeTimeout)
	case c.TLSHandshakeTimeout == 0:
		p.tlsHandshakeTimeout = DefaultTLSHandshakeTimeout
	}
	if c.ResponseHeaderTimeout < 0 {
		bad("response header timeout %s: must not be negative", c.ResponseHeaderTimeout)
	}
	switch {
	case c.IdleConnTimeout < 0:
		bad("idle connection timeout %s: must not be negative", c.IdleConnTimeout)
	case c.IdleConnTimeout == 0:
		p.idleConnTimeout = DefaultIdleConnTimeout
	}

	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, errors.Join(errs...))
	}
	return p, nil
}

// AllowsHostPort reports whether host:port is on the allowlist. Host names
// are compared case-insensitively with a trailing dot ignored; IP literals
// are normalised (an IPv4-mapped IPv6 literal equals its IPv4 form). It does
// no DNS and says nothing about the addresses the name resolves to.
func (p *Policy) AllowsHostPort(host, port string) bool {
	_, ok := p.allow.match(host, port)
	return ok
}

// CheckHostPort is AllowsHostPort returning the refusal as a *DeniedError, for
// callers (such as a CONNECT handler) that refuse before dialing.
func (p *Policy) CheckHostPort(host, port string) error {
	if _, ok := p.allow.match(host, port); !ok {
		return &DeniedError{Host: host, Port: port, Reason: ReasonNotAllowlisted}
	}
	return nil
}

// parseAllowCIDR parses one AllowCIDRs entry.
func parseAllowCIDR(s string) (netip.Prefix, error) {
	pfx, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("not a CIDR prefix: %w", err)
	}
	if pfx.Addr().Is4In6() {
		return netip.Prefix{}, errors.New("IPv4-mapped prefix: write the IPv4 form instead")
	}
	if pfx.Masked() != pfx {
		return netip.Prefix{}, fmt.Errorf("host bits set; did you mean %s?", pfx.Masked())
	}
	return pfx, nil
}

// allowedAddr reports whether the policy lets a socket connect to ip, and the
// address class when it does not.
func (p *Policy) allowedAddr(ip netip.Addr) (reason string, ok bool) {
	c := classify(ip)
	if !c.denied {
		return "", true
	}
	if p.allowPrivate && !c.metadata {
		return "", true
	}
	ip = ip.WithZone("").Unmap()
	for _, pfx := range p.allowCIDRs {
		if pfx.Contains(ip) || (c.embedded.IsValid() && pfx.Contains(c.embedded)) {
			return "", true
		}
	}
	return c.class, false
}

// isNumericLooking reports whether a DNS-shaped name would be read as an IPv4
// address by some parser (inet_aton, WHATWG URL): its last label is decimal,
// or hex with a 0x prefix. Such names are refused rather than guessed at.
func isNumericLooking(name string) bool {
	last := name[strings.LastIndexByte(name, '.')+1:]
	if last == "" {
		return false
	}
	if h, ok := strings.CutPrefix(last, "0x"); ok {
		last = h
		if last == "" {
			return true
		}
		return strings.Trim(last, "0123456789abcdef") == ""
	}
	return strings.Trim(last, "0123456789") == ""
}
