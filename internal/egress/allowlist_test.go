package egress

import (
	"errors"
	"net"
	"strings"
	"testing"
)

type entryCase struct {
	name      string
	entry     string
	canonical string // "" when the entry must be rejected
	wantErr   error  // checked with errors.Is when set
}

// entryCases is shared by TestParseAllowEntry and FuzzParseAllowEntry's seeds.
var entryCases = []entryCase{
	{"plain-name", "api.example.com:443", "api.example.com:443", nil},
	{"uppercase-name", "API.Example.COM:443", "api.example.com:443", nil},
	{"trailing-dot", "api.example.com.:443", "api.example.com:443", nil},
	{"wildcard", "*.example.com:443", "*.example.com:443", nil},
	{"wildcard-uppercase", "*.EXAMPLE.com:8443", "*.example.com:8443", nil},
	{"idn-to-punycode", "bücher.example:443", "xn--bcher-kva.example:443", nil},
	{"fullwidth-mapped", "ＡＰＩ.example.com:443", "api.example.com:443", nil},
	{"single-label", "vendor:8080", "vendor:8080", nil},
	{"ipv4-literal", "192.0.2.7:443", "192.0.2.7:443", nil},
	{"ipv6-literal", "[2001:DB8::7]:443", "[2001:db8::7]:443", nil},
	{"ipv4-mapped-literal", "[::ffff:192.0.2.7]:443", "192.0.2.7:443", nil},
	{"wildcard-under-private-suffix", "*.herokuapp.com:443", "*.herokuapp.com:443", nil},
	{"no-port", "api.example.com", "", errNoPort},
	{"empty-port", "api.example.com:", "", errBadPort},
	{"port-zero", "api.example.com:0", "", errBadPort},
	{"port-too-big", "api.example.com:65536", "", errBadPort},
	{"port-service-name", "api.example.com:https", "", errBadPort},
	{"port-signed", "api.example.com:+443", "", errBadPort},
	{"port-wildcard", "api.example.com:*", "", errBadPort},
	{"empty-host", ":443", "", errEmptyHost},
	{"ipv6-unbracketed", "2001:db8::7:443", "", errNoPort},
	{"ipv6-zone", "[fe80::1%eth0]:443", "", errZone},
	{"bare-wildcard", "*:443", "", errBadWildcard},
	{"wildcard-mid-label", "api.*.example.com:443", "", errBadWildcard},
	{"wildcard-partial-label", "*api.example.com:443", "", errBadWildcard},
	{"double-wildcard", "*.*.example.com:443", "", errBadWildcard},
	{"wildcard-public-suffix", "*.com:443", "", errWildSuffix},
	{"wildcard-multi-label-public-suffix", "*.co.uk:443", "", errWildSuffix},
	{"underscore", "a_b.example.com:443", "", errBadHost},
	{"space", "api example.com:443", "", errBadHost},
	{"leading-hyphen", "-api.example.com:443", "", errBadHost},
	{"empty-label", "api..example.com:443", "", errLabelTooLong},
	{"two-trailing-dots", "api.example.com..:443", "", errLabelTooLong},
	{"label-too-long", strings.Repeat("a", 64) + ".example.com:443", "", errLabelTooLong},
	{"name-too-long", strings.Repeat("abcdefghi.", 26) + "com:443", "", errHostTooLong},
	{"octal-ipv4", "0177.0.0.1:80", "", errNumericHost},
	{"integer-ipv4", "2130706433:80", "", errNumericHost},
	{"hex-ipv4", "0x7f.0x0.0x0.0x1:80", "", errNumericHost},
	{"short-ipv4", "127.1:80", "", errNumericHost},
	{"numeric-tld", "vendor.123:80", "", errNumericHost},
	{"url-not-entry", "https://api.example.com:443", "", errNoPort},
	{"path-in-entry", "api.example.com:443/v1", "", errBadPort},
}

func TestParseAllowEntry(t *testing.T) {
	for _, tc := range entryCases {
		t.Run(tc.name, func(t *testing.T) {
			e, err := parseAllowEntry(tc.entry)
			if tc.canonical == "" {
				if err == nil {
					t.Fatalf("parseAllowEntry(%q) = %v, want an error", tc.entry, e)
				}
				if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
					t.Errorf("parseAllowEntry(%q) error = %v, want %v", tc.entry, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseAllowEntry(%q): %v", tc.entry, err)
			}
			if got := e.String(); got != tc.canonical {
				t.Errorf("parseAllowEntry(%q) = %s, want %s", tc.entry, got, tc.canonical)
			}
		})
	}
}

func TestAllowsHostPort(t *testing.T) {
	p, err := NewPolicy(Config{
		Allow: []string{
			"api.example.com:443",
			"*.cdn.example.net:443",
			"203.0.113.10:8443", // documentation range: needs allow_cidrs
			"[2001:db8::10]:443",
			"xn--bcher-kva.example:443",
		},
		AllowCIDRs: []string{"203.0.113.0/24", "2001:db8::/32"},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, host, port string
		want             bool
	}{
		{"exact", "api.example.com", "443", true},
		{"uppercase", "API.EXAMPLE.COM", "443", true},
		{"trailing-dot", "api.example.com.", "443", true},
		{"port-mismatch", "api.example.com", "80", false},
		{"port-leading-zero-same-number", "api.example.com", "0443", true},
		{"port-service-name", "api.example.com", "https", false},
		{"port-empty", "api.example.com", "", false},
		{"sibling-host", "www.example.com", "443", false},
		{"parent-of-exact", "example.com", "443", false},
		{"suffix-trick", "api.example.com.evil.test", "443", false},
		{"prefix-trick", "evilapi.example.com", "443", false},
		{"wildcard-one-label", "a.cdn.example.net", "443", true},
		{"wildcard-two-labels", "a.b.cdn.example.net", "443", true},
		{"wildcard-uppercase", "A.CDN.Example.NET", "443", true},
		{"wildcard-apex-not-matched", "cdn.example.net", "443", false},
		{"wildcard-port-mismatch", "a.cdn.example.net", "8443", false},
		{"wildcard-lookalike-suffix", "a.xcdn.example.net", "443", false},
		{"literal-wildcard-request", "*.cdn.example.net", "443", false},
		{"empty-label-request", "a..cdn.example.net", "443", false},
		{"ipv4-literal", "203.0.113.10", "8443", true},
		{"ipv4-literal-port-mismatch", "203.0.113.10", "443", false},
		{"ipv4-mapped-literal", "::ffff:203.0.113.10", "8443", true},
		{"ipv4-mapped-hex-literal", "::ffff:cb00:710a", "8443", true},
		{"ipv6-literal", "2001:db8::10", "443", true},
		{"ipv6-literal-long-form", "2001:0DB8:0000:0000:0000:0000:0000:0010", "443", true},
		{"ipv6-literal-with-zone", "2001:db8::10%eth0", "443", false},
		{"ipv4-literal-not-listed", "203.0.113.11", "8443", false},
		{"octal-spelling-of-listed-ip", "0313.0.113.10", "8443", false},
		{"idn-unicode-request", "bücher.example", "443", true},
		{"idn-punycode-request", "xn--bcher-kva.example", "443", true},
		{"bracketed-host", "[2001:db8::10]", "443", false},
		{"empty-host", "", "443", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := p.AllowsHostPort(tc.host, tc.port); got != tc.want {
				t.Errorf("AllowsHostPort(%q, %q) = %v, want %v", tc.host, tc.port, got, tc.want)
			}
			err := p.CheckHostPort(tc.host, tc.port)
			if tc.want != (err == nil) {
				t.Errorf("CheckHostPort(%q, %q) = %v, want allowed=%v", tc.host, tc.port, err, tc.want)
			}
			if err != nil && !errors.Is(err, ErrDenied) {
				t.Errorf("CheckHostPort error %v does not match ErrDenied", err)
			}
		})
	}
}

func FuzzParseAllowEntry(f *testing.F) {
	for _, tc := range entryCases {
		f.Add(tc.entry)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := parseAllowEntry(s)
		if err != nil {
			return
		}
		// The canonical form is a fixed point.
		canon := e.String()
		e2, err := parseAllowEntry(canon)
		if err != nil {
			t.Fatalf("canonical form %q of %q does not parse: %v", canon, s, err)
		}
		if e2 != e {
			t.Fatalf("canonical form %q of %q parses to %+v, want %+v", canon, s, e2, e)
		}
		// A policy built from the entry allows what it names.
		al := newAllowlist()
		al.add(e)
		host, port, _ := net.SplitHostPort(canon)
		if e.wildcard {
			host = "x." + strings.TrimPrefix(host, "*.")
			if _, ok := al.match(strings.TrimPrefix(host, "x."), port); ok {
				t.Fatalf("wildcard %q matched its own apex", canon)
			}
		}
		if _, ok := al.match(host, port); !ok {
			t.Fatalf("entry %q does not allow %s:%s", canon, host, port)
		}
	})
}

func BenchmarkAllowsHostPort(b *testing.B) {
	p := mustPolicy(b, Config{Allow: []string{"api.example.com:443", "*.cdn.example.net:443", "8.8.8.8:443"}})
	hosts := []string{"api.example.com", "a.b.cdn.example.net", "8.8.8.8", "evil.example"}
	for _, h := range hosts {
		b.Run(h, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p.AllowsHostPort(h, "443")
			}
		})
	}
}
