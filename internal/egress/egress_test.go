package egress

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestNewPolicyRejectsBadConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	garbage := write("garbage.pem", "not a certificate\n")
	keyBlock := write("key.pem", "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw==\n-----END PRIVATE KEY-----\n")
	brokenCert := write("broken.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")

	tests := []struct {
		name      string
		cfg       Config
		wantParts []string // every one must appear in the error text
		notParts  []string // none may appear
	}{
		{"bad-allow-entry", Config{Allow: []string{"ok.example:443", "no-port.example"}},
			[]string{`allow[1] "no-port.example"`}, []string{"allow[0]"}},
		{"private-ip-entry-without-allow-private", Config{Allow: []string{"10.0.0.5:443"}},
			[]string{`allow[0] "10.0.0.5:443"`, "private"}, nil},
		{"metadata-entry-even-with-allow-private", Config{Allow: []string{"169.254.169.254:80"}, AllowPrivate: true},
			[]string{`allow[0] "169.254.169.254:80"`, "metadata"}, nil},
		{"cidr-host-bits", Config{AllowCIDRs: []string{"10.1.2.3/24"}},
			[]string{`allow_cidrs[0] "10.1.2.3/24"`, "10.1.2.0/24"}, nil},
		{"cidr-garbage", Config{AllowCIDRs: []string{"10.1.2.0/24", "ten"}},
			[]string{`allow_cidrs[1] "ten"`}, []string{"allow_cidrs[0]"}},
		{"cidr-mapped", Config{AllowCIDRs: []string{"::ffff:10.0.0.0/104"}},
			[]string{`allow_cidrs[0]`, "IPv4 form"}, nil},
		{"pin-not-base64", Config{PinSPKI: []string{"sha256//abc"}},
			[]string{`pin_spki[0] "sha256//abc"`}, nil},
		{"pin-wrong-length", Config{PinSPKI: []string{"YWJj"}},
			[]string{`pin_spki[0] "YWJj"`}, nil},
		{"ca-file-missing", Config{CAFile: filepath.Join(dir, "nope.pem")},
			[]string{"ca_file", "nope.pem"}, nil},
		{"ca-file-no-pem", Config{CAFile: garbage},
			[]string{"ca_file", "no PEM certificates"}, nil},
		{"ca-file-private-key-not-echoed", Config{CAFile: keyBlock},
			[]string{"ca_file", `"PRIVATE KEY"`}, []string{"c2VjcmV0"}},
		{"ca-file-broken-certificate", Config{CAFile: brokenCert},
			[]string{"ca_file", "certificate 1"}, nil},
		{"negative-timeouts", Config{ConnectTimeout: -time.Second, TLSHandshakeTimeout: -time.Second},
			[]string{"connect timeout", "tls handshake timeout"}, nil},
		{"every-problem-reported", Config{
			Allow:      []string{"*.com:443", "api.example.com:https"},
			AllowCIDRs: []string{"nope"},
			PinSPKI:    []string{"short"},
		}, []string{"allow[0]", "allow[1]", "allow_cidrs[0]", "pin_spki[0]"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewPolicy(tc.cfg)
			if err == nil {
				t.Fatalf("NewPolicy = %v, want an error", p)
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("err = %v, want errors.Is ErrInvalidConfig", err)
			}
			for _, part := range tc.wantParts {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q lacks %q", err, part)
				}
			}
			for _, part := range tc.notParts {
				if strings.Contains(err.Error(), part) {
					t.Errorf("error %q contains %q", err, part)
				}
			}
		})
	}
}

func TestNewPolicyAcceptsGoodConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"empty-denies-all", Config{}},
		{"names-and-wildcards", Config{Allow: []string{"api.example.com:443", "*.example.net:443"}}},
		{"private-ip-with-allow-private", Config{Allow: []string{"10.0.0.5:443"}, AllowPrivate: true}},
		{"private-ip-with-covering-cidr", Config{Allow: []string{"10.1.2.5:443"}, AllowCIDRs: []string{"10.1.2.0/24"}}},
		{"metadata-with-explicit-cidr", Config{Allow: []string{"169.254.169.254:80"}, AllowCIDRs: []string{"169.254.169.254/32"}}},
		{"public-ip", Config{Allow: []string{"8.8.8.8:443", "[2606:4700:4700::1111]:443"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewPolicy(tc.cfg); err != nil {
				t.Fatalf("NewPolicy: %v", err)
			}
		})
	}
}

func TestAllowedAddr(t *testing.T) {
	tests := []struct {
		name       string
		cfg        Config
		addr       string
		wantReason string // "" when allowed
	}{
		{"public-allowed", Config{}, "8.8.8.8", ""},
		{"loopback-denied", Config{}, "127.0.0.1", ClassLoopback},
		{"allow-private-lifts-loopback", Config{AllowPrivate: true}, "127.0.0.1", ""},
		{"allow-private-lifts-ula", Config{AllowPrivate: true}, "fd12::1", ""},
		{"allow-private-keeps-metadata", Config{AllowPrivate: true}, "169.254.169.254", ClassMetadata},
		{"allow-private-keeps-mapped-metadata", Config{AllowPrivate: true}, "::ffff:169.254.169.254", ClassMetadata},
		{"allow-private-keeps-nat64-metadata", Config{AllowPrivate: true}, "64:ff9b::a9fe:a9fe", ClassNAT64 + ":" + ClassMetadata},
		{"allow-private-keeps-aws-v6-metadata", Config{AllowPrivate: true}, "fd00:ec2::254", ClassMetadata},
		{"cidr-lifts-metadata", Config{AllowCIDRs: []string{"169.254.169.254/32"}}, "169.254.169.254", ""},
		{"cidr-covers-range", Config{AllowCIDRs: []string{"10.1.2.0/24"}}, "10.1.2.200", ""},
		{"cidr-stops-at-boundary", Config{AllowCIDRs: []string{"10.1.2.0/24"}}, "10.1.3.1", ClassPrivate},
		{"v4-cidr-covers-mapped", Config{AllowCIDRs: []string{"10.1.2.0/24"}}, "::ffff:10.1.2.3", ""},
		{"v4-cidr-covers-nat64", Config{AllowCIDRs: []string{"10.1.2.0/24"}}, "64:ff9b::a01:203", ""},
		{"v4-cidr-covers-6to4", Config{AllowCIDRs: []string{"10.1.2.0/24"}}, "2002:a01:203::1", ""},
		{"v6-cidr", Config{AllowCIDRs: []string{"fd12:3456::/32"}}, "fd12:3456::9", ""},
		{"v6-cidr-other-ula", Config{AllowCIDRs: []string{"fd12:3456::/32"}}, "fd99::9", ClassULA},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustPolicy(t, tc.cfg)
			reason, ok := p.allowedAddr(netip.MustParseAddr(tc.addr))
			if ok != (tc.wantReason == "") || reason != tc.wantReason {
				t.Errorf("allowedAddr(%s) = (%q, %v), want reason %q", tc.addr, reason, ok, tc.wantReason)
			}
		})
	}
}

func TestDeniedErrorText(t *testing.T) {
	tests := []struct {
		name string
		err  *DeniedError
		want string
	}{
		{"address", &DeniedError{Host: "api.example.com", Port: "443", IP: netip.MustParseAddr("10.0.0.1"), Reason: ClassPrivate},
			"egress denied: api.example.com:443 resolved to 10.0.0.1 (private)"},
		{"ipv6-address", &DeniedError{Host: "api.example.com", Port: "443", IP: netip.MustParseAddr("::1"), Reason: ClassLoopback},
			"egress denied: api.example.com:443 resolved to ::1 (loopback)"},
		{"name", &DeniedError{Host: "evil.example", Port: "443", Reason: ReasonNotAllowlisted},
			"egress denied: evil.example:443 (not on allowlist)"},
		{"no-port", &DeniedError{Host: "evil.example", Reason: "malformed address"},
			"egress denied: evil.example (malformed address)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("Error() = %q, want %q", got, tc.want)
			}
			if !errors.Is(tc.err, ErrDenied) {
				t.Error("errors.Is(err, ErrDenied) = false")
			}
		})
	}
}
