package egress

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"
)

// Reasons an allowlist entry or a requested host is malformed. They are
// wrapped into the errors NewPolicy returns.
var (
	errNoPort       = errors.New(`want "host:port" with a port (IPv6 literals in brackets: "[2001:db8::1]:443")`)
	errBadPort      = errors.New("port must be a number from 1 to 65535")
	errEmptyHost    = errors.New("empty host")
	errZone         = errors.New("IPv6 zone not allowed")
	errBadHost      = errors.New("not a valid host name")
	errNumericHost  = errors.New("host name looks like a non-standard numeric IP address; write the address in dotted-decimal form")
	errBadWildcard  = errors.New(`a wildcard must be a whole leftmost label: "*.example.com"`)
	errWildSuffix   = errors.New("wildcard covers a whole public suffix")
	errHostTooLong  = errors.New("host name longer than 253 characters")
	errLabelTooLong = errors.New("host name label empty or longer than 63 characters")
)

// allowEntry is one parsed Allow entry: exactly one of name or addr is set.
type allowEntry struct {
	name     string // normalised DNS name; for a wildcard, the suffix after "*."
	wildcard bool
	addr     netip.Addr // unmapped, zone-free
	port     uint16
}

// String renders the entry in its canonical form.
func (e allowEntry) String() string {
	port := fmt.Sprint(e.port)
	switch {
	case e.addr.IsValid():
		return net.JoinHostPort(e.addr.String(), port)
	case e.wildcard:
		return net.JoinHostPort("*."+e.name, port)
	default:
		return net.JoinHostPort(e.name, port)
	}
}

type namePort struct {
	name string
	port uint16
}

// allowlist is the compiled set of Allow entries. Lookups are map hits: one
// for the exact name and one per parent domain for wildcards.
type allowlist struct {
	exact map[namePort]struct{}
	wild  map[namePort]struct{} // keyed by the suffix after "*."
	addrs map[netip.AddrPort]struct{}
}

func newAllowlist() allowlist {
	return allowlist{
		exact: map[namePort]struct{}{},
		wild:  map[namePort]struct{}{},
		addrs: map[netip.AddrPort]struct{}{},
	}
}

func (a allowlist) add(e allowEntry) {
	switch {
	case e.addr.IsValid():
		a.addrs[netip.AddrPortFrom(e.addr, e.port)] = struct{}{}
	case e.wildcard:
		a.wild[namePort{e.name, e.port}] = struct{}{}
	default:
		a.exact[namePort{e.name, e.port}] = struct{}{}
	}
}

// match reports whether host:port is allowed, and the canonical host to dial
// (the normalised name or address, so that what is dialled is what was
// checked).
func (a allowlist) match(host, port string) (canonical string, ok bool) {
	n, err := parsePort(port)
	if err != nil {
		return "", false
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Zone() != "" {
			return "", false
		}
		ip = ip.Unmap()
		_, ok := a.addrs[netip.AddrPortFrom(ip, n)]
		return ip.String(), ok
	}
	name, err := normaliseName(host)
	if err != nil {
		return "", false
	}
	if _, ok := a.exact[namePort{name, n}]; ok {
		return name, true
	}
	// "*.example.com" matches any name with one or more labels before
	// "example.com": try every proper parent domain.
	for rest := name; ; {
		i := strings.IndexByte(rest, '.')
		if i < 0 {
			return "", false
		}
		rest = rest[i+1:]
		if _, ok := a.wild[namePort{rest, n}]; ok {
			return name, true
		}
	}
}

// parseAllowEntry parses and validates one Allow entry.
func parseAllowEntry(s string) (allowEntry, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return allowEntry{}, errNoPort
	}
	n, err := parsePort(port)
	if err != nil {
		return allowEntry{}, err
	}
	if host == "" {
		return allowEntry{}, errEmptyHost
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Zone() != "" {
			return allowEntry{}, errZone
		}
		return allowEntry{addr: ip.Unmap(), port: n}, nil
	}
	e := allowEntry{port: n}
	if rest, ok := strings.CutPrefix(host, "*."); ok {
		e.wildcard = true
		host = rest
	}
	if strings.Contains(host, "*") {
		return allowEntry{}, errBadWildcard
	}
	if e.name, err = normaliseName(host); err != nil {
		return allowEntry{}, err
	}
	if e.wildcard {
		// Refuse "*.com", "*.co.uk": they would allow half the internet.
		if suffix, icann := publicsuffix.PublicSuffix(e.name); icann && suffix == e.name {
			return allowEntry{}, errWildSuffix
		}
	}
	return e, nil
}

// parsePort accepts decimal ports 1-65535 only. Service names ("https") are
// refused: they would be resolved by the dialer, outside this check.
func parsePort(s string) (uint16, error) {
	if s == "" || len(s) > 5 {
		return 0, errBadPort
	}
	n := 0
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, errBadPort
		}
		n = n*10 + int(c-'0')
	}
	if n < 1 || n > 65535 {
		return 0, errBadPort
	}
	return uint16(n), nil
}

// normaliseName lower-cases and validates a DNS host name, drops one trailing
// dot, and converts an internationalised name to its ASCII (punycode) form.
// x/net/idna applies the UTS #46 lookup mapping and STD3 character rules; the
// label and length limits (RFC 1035 §2.3.4), which it does not check, are
// checked here.
func normaliseName(host string) (string, error) {
	host = strings.TrimSuffix(host, ".")
	if host == "" {
		return "", errEmptyHost
	}
	if !utf8.ValidString(host) {
		// idna would turn invalid bytes into U+FFFD and encode that.
		return "", errBadHost
	}
	name, err := idna.Lookup.ToASCII(host)
	if err != nil {
		return "", fmt.Errorf("%w: %w", errBadHost, err)
	}
	if len(name) > 253 {
		return "", errHostTooLong
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 {
			return "", errLabelTooLong
		}
	}
	if isNumericLooking(name) {
		return "", errNumericHost
	}
	return name, nil
}
