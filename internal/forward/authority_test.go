package forward

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var authorityTests = []struct {
	name        string
	in          string
	defaultPort string
	want        string // canonical host:port; "" when refused
}{
	{name: "name", in: "api.example.com:443", want: "api.example.com:443"},
	{name: "upper-case", in: "API.Example.COM:443", want: "api.example.com:443"},
	{name: "trailing-dot", in: "api.example.com.:443", want: "api.example.com:443"},
	{name: "punycode", in: "xn--bcher-kva.example:443", want: "xn--bcher-kva.example:443"},
	{name: "ipv4", in: "192.0.2.7:8443", want: "192.0.2.7:8443"},
	{name: "ipv6", in: "[2001:db8::7]:443", want: "[2001:db8::7]:443"},
	{name: "ipv6-long-form", in: "[2001:0db8:0:0:0:0:0:7]:443", want: "[2001:db8::7]:443"},
	{name: "ipv4-mapped-unmapped", in: "[::ffff:192.0.2.7]:443", want: "192.0.2.7:443"},
	{name: "default-port", in: "api.example.com", defaultPort: "80", want: "api.example.com:80"},
	{name: "default-port-ipv6", in: "[2001:db8::7]", defaultPort: "80", want: "[2001:db8::7]:80"},
	{name: "max-port", in: "a.example:65535", want: "a.example:65535"},

	{name: "no-port", in: "api.example.com"},
	{name: "empty-port", in: "api.example.com:", defaultPort: "80"},
	{name: "port-zero", in: "a.example:0"},
	{name: "port-too-big", in: "a.example:65536"},
	{name: "port-leading-zero", in: "a.example:0443"},
	{name: "port-sign", in: "a.example:+443"},
	{name: "port-name", in: "a.example:https"},
	{name: "empty", in: ""},
	{name: "empty-host", in: ":443"},
	{name: "userinfo", in: "user@a.example:443"},
	{name: "path", in: "a.example/x:443"},
	{name: "percent", in: "a%2eexample:443"},
	{name: "space", in: "a.example :443"},
	{name: "underscore", in: "a_b.example:443"},
	{name: "unicode", in: "bücher.example:443"},
	{name: "empty-label", in: "a..example:443"},
	{name: "long-label", in: strings.Repeat("a", 64) + ".example:443"},
	{name: "decimal-ip", in: "2130706433:443"},
	{name: "hex-ip", in: "0x7f000001:443"},
	{name: "hex-dotted", in: "0x7f.0.0.1:443"},
	{name: "octal-dotted", in: "0177.0.0.1:443"},
	{name: "short-form", in: "127.1:443"},
	{name: "numeric-last-label", in: "a.example.123:443"},
	{name: "hex-last-label", in: "a.example.0xff:443"},
	{name: "bare-0x-label", in: "a.0x:443"},
	{name: "unbracketed-ipv6", in: "::1:443"},
	{name: "ipv6-zone", in: "[fe80::1%25eth0]:443"},
	{name: "bracketed-ipv4", in: "[127.0.0.1]:443"},
	{name: "unclosed-bracket", in: "[::1:443"},
	{name: "too-long", in: strings.Repeat("a.", 140) + "example:443"},
}

func TestParseAuthority(t *testing.T) {
	for _, tt := range authorityTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseAuthority(tt.in, tt.defaultPort)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("parseAuthority(%q) = %q, want an error", tt.in, got.addr())
				}
				if !errors.Is(err, ErrBadAuthority) {
					t.Errorf("error %v does not match ErrBadAuthority", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseAuthority(%q): %v", tt.in, err)
			}
			if d := cmp.Diff(tt.want, got.addr()); d != "" {
				t.Errorf("canonical form (-want +got):\n%s", d)
			}
		})
	}
}

// FuzzParseAuthority checks that whatever is accepted is canonical (parsing
// the canonical form again gives the same target), is never a name that
// some parser would read as an IPv4 address, and that IP literals are
// exactly the targets that netip parses.
func FuzzParseAuthority(f *testing.F) {
	for _, tt := range authorityTests {
		f.Add(tt.in, tt.defaultPort)
	}
	f.Fuzz(func(t *testing.T, in, defaultPort string) {
		got, err := parseAuthority(in, defaultPort)
		if err != nil {
			if !errors.Is(err, ErrBadAuthority) {
				t.Fatalf("error %v does not match ErrBadAuthority", err)
			}
			return
		}
		if got.host == "" || !validPort(got.port) {
			t.Fatalf("accepted %q as host %q port %q", in, got.host, got.port)
		}
		again, err := parseAuthority(got.addr(), "")
		if err != nil || again != got {
			t.Fatalf("canonical form %q of %q does not parse back: %+v, %v", got.addr(), in, again, err)
		}
		ip, ipErr := netip.ParseAddr(got.host)
		if (ipErr == nil) != got.ip.IsValid() {
			t.Fatalf("host %q: IP literal mismatch", got.host)
		}
		if got.ip.IsValid() {
			if ip != got.ip || ip.Is4In6() || ip.Zone() != "" {
				t.Fatalf("host %q: not a canonical address", got.host)
			}
			return
		}
		if numericLooking(got.host) || strings.ContainsAny(got.host, "@/%:[]\\ ") || got.host != strings.ToLower(got.host) {
			t.Fatalf("accepted a dubious name %q from %q", got.host, in)
		}
	})
}
