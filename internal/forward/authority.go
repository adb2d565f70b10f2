package forward

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// ErrBadAuthority is matched (errors.Is) by every refusal of parseAuthority:
// a CONNECT target or absolute-form host that is malformed or ambiguous.
var ErrBadAuthority = errors.New("bad proxy target")

// Reasons a target is refused; wrapped with ErrBadAuthority.
var (
	errNoPort        = errors.New(`want "host:port"`)
	errPort          = errors.New("port must be a decimal number from 1 to 65535 without leading zeros")
	errEmptyHost     = errors.New("empty host")
	errHostChars     = errors.New("host has characters outside a-z, 0-9, '-' and '.'")
	errHostLength    = errors.New("host name or label too long, or empty label")
	errNumericName   = errors.New("host looks like a non-standard IP address spelling (decimal, octal, hex or short form)")
	errZone          = errors.New("IPv6 zone not allowed")
	errBracketedIPv4 = errors.New("only IPv6 addresses go in brackets")
	errTooLong       = errors.New("target longer than 262 characters")
)

// maxAuthority is the longest target accepted: a 253-byte name, ':' and a
// five-digit port, with room for brackets.
const maxAuthority = 262

// target is a parsed, canonical proxy target.
type target struct {
	host string     // lower-case DNS name without trailing dot, or the canonical IP text (IPv4-mapped unmapped)
	port string     // decimal, no leading zeros
	ip   netip.Addr // valid when host is an IP literal
}

// addr is host:port for dialing and logs.
func (t target) addr() string { return net.JoinHostPort(t.host, t.port) }

// portNum is the port as a number (parseAuthority has validated it).
func (t target) portNum() uint16 {
	n, _ := strconv.ParseUint(t.port, 10, 16)
	return uint16(n)
}

// parseAuthority parses the authority of "CONNECT host:port" (RFC 9110
// §9.3.6) or of an absolute-form URL. It is strict on purpose and never
// "cleans and continues": anything that two parsers could read differently
// is refused, in particular the inet_aton spellings of IPv4 addresses
// ("2130706433", "0x7f.1", "0177.0.0.1", "127.1") that some resolvers and
// libraries turn into 127.0.0.1 while others treat them as names, user
// info, percent-encoding and IPv6 zones. Hand-written because net/url and
// net.SplitHostPort accept all of these; the canonical form it returns is
// then checked by the egress package, which normalises the same way.
//
// defaultPort is used when s has no port (absolute-form "http://host/");
// pass "" to require one (CONNECT).
func parseAuthority(s, defaultPort string) (target, error) {
	t, err := parseAuthority1(s, defaultPort)
	if err != nil {
		return target{}, fmt.Errorf("%w: %w", ErrBadAuthority, err)
	}
	return t, nil
}

func parseAuthority1(s, defaultPort string) (target, error) {
	if len(s) > maxAuthority {
		return target{}, errTooLong
	}
	host, port := s, defaultPort
	if i := strings.LastIndexByte(s, ':'); i >= 0 && (!strings.HasPrefix(s, "[") || strings.HasSuffix(s[:i], "]")) {
		host, port = s[:i], s[i+1:]
	}
	if port == "" {
		return target{}, errNoPort
	}
	if !validPort(port) {
		return target{}, errPort
	}
	if host == "" {
		return target{}, errEmptyHost
	}
	if inner, ok := strings.CutPrefix(host, "["); ok {
		inner, ok = strings.CutSuffix(inner, "]")
		if !ok {
			return target{}, errHostChars
		}
		if strings.ContainsRune(inner, '%') {
			return target{}, errZone
		}
		ip, err := netip.ParseAddr(inner)
		if err != nil {
			return target{}, fmt.Errorf("bad IPv6 literal: %w", err)
		}
		if !ip.Is6() {
			return target{}, errBracketedIPv4
		}
		ip = ip.Unmap()
		return target{host: ip.String(), port: port, ip: ip}, nil
	}
	// ParseAddr accepts only dotted-decimal IPv4 without leading zeros here
	// (an IPv6 literal needs brackets, and ':' was split off above).
	if ip, err := netip.ParseAddr(host); err == nil && ip.Is4() {
		return target{host: ip.String(), port: port, ip: ip}, nil
	}
	name, err := canonicalName(host)
	if err != nil {
		return target{}, err
	}
	return target{host: name, port: port}, nil
}

// validPort accepts "1".."65535" with no sign, spaces or leading zeros.
func validPort(s string) bool {
	if len(s) == 0 || len(s) > 5 || s[0] == '0' {
		return false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return n <= 65535
}

// canonicalName lower-cases an ASCII DNS name, drops one trailing dot and
// checks RFC 1035 lengths. Internationalised names must arrive in their
// punycode form, as every HTTP client sends them.
func canonicalName(host string) (string, error) {
	name := strings.TrimSuffix(host, ".")
	if name == "" {
		return "", errEmptyHost
	}
	if len(name) > 253 {
		return "", errHostLength
	}
	b := []byte(name)
	for i, c := range b {
		switch {
		case c >= 'A' && c <= 'Z':
			b[i] = c + 'a' - 'A'
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '.':
		default:
			return "", errHostChars
		}
	}
	name = string(b)
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 {
			return "", errHostLength
		}
	}
	if numericLooking(name) {
		return "", errNumericName
	}
	return name, nil
}

// numericLooking reports whether some parser (inet_aton, the WHATWG URL
// standard) would read name as an IPv4 address: its last label is decimal,
// or hexadecimal with a 0x prefix. No real top-level domain looks like that.
func numericLooking(name string) bool {
	last := name[strings.LastIndexByte(name, '.')+1:]
	if h, ok := strings.CutPrefix(last, "0x"); ok {
		return strings.Trim(h, "0123456789abcdef") == ""
	}
	return strings.Trim(last, "0123456789") == ""
}
