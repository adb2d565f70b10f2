package egress

import (
	"net/netip"
	"testing"
)

type classifyCase struct {
	name   string
	addr   string
	class  string
	denied bool
}

// classifyCases is shared by TestClassify and the seeds of FuzzClassify.
var classifyCases = []classifyCase{
	// IPv4 special-purpose ranges, first and last address where it matters.
	{"v4-this-network-zero", "0.0.0.0", ClassUnspecified, true},
	{"v4-this-network-top", "0.255.255.255", ClassUnspecified, true},
	{"v4-private-10", "10.0.0.1", ClassPrivate, true},
	{"v4-private-10-top", "10.255.255.255", ClassPrivate, true},
	{"v4-cgnat-bottom", "100.64.0.0", ClassCGNAT, true},
	{"v4-cgnat-top", "100.127.255.255", ClassCGNAT, true},
	{"v4-just-below-cgnat", "100.63.255.255", "", false},
	{"v4-just-above-cgnat", "100.128.0.0", "", false},
	{"v4-loopback", "127.0.0.1", ClassLoopback, true},
	{"v4-loopback-other", "127.255.255.254", ClassLoopback, true},
	{"v4-metadata", "169.254.169.254", ClassMetadata, true},
	{"v4-link-local", "169.254.0.1", ClassLinkLocal, true},
	{"v4-ecs-task-metadata", "169.254.170.2", ClassLinkLocal, true},
	{"v4-private-172-bottom", "172.16.0.0", ClassPrivate, true},
	{"v4-private-172-top", "172.31.255.255", ClassPrivate, true},
	{"v4-just-above-172-16", "172.32.0.0", "", false},
	{"v4-ietf-protocol", "192.0.0.8", ClassIETFProtocol, true},
	{"v4-oracle-metadata-in-ietf-block", "192.0.0.192", ClassIETFProtocol, true},
	{"v4-test-net-1", "192.0.2.1", ClassDocumentation, true},
	{"v4-6to4-relay", "192.88.99.1", Class6to4Relay, true},
	{"v4-private-192-168", "192.168.1.1", ClassPrivate, true},
	{"v4-benchmarking-bottom", "198.18.0.1", ClassBenchmarking, true},
	{"v4-benchmarking-top", "198.19.255.255", ClassBenchmarking, true},
	{"v4-test-net-2", "198.51.100.7", ClassDocumentation, true},
	{"v4-test-net-3", "203.0.113.9", ClassDocumentation, true},
	{"v4-multicast", "224.0.0.1", ClassMulticast, true},
	{"v4-multicast-top", "239.255.255.255", ClassMulticast, true},
	{"v4-reserved", "240.0.0.1", ClassReserved, true},
	{"v4-reserved-top", "255.255.255.254", ClassReserved, true},
	{"v4-broadcast", "255.255.255.255", ClassBroadcast, true},
	{"v4-azure-wire-server", "168.63.129.16", ClassMetadata, true},
	{"v4-public", "8.8.8.8", "", false},
	{"v4-public-near-private", "11.0.0.1", "", false},

	// IPv6 ranges.
	{"v6-unspecified", "::", ClassUnspecified, true},
	{"v6-loopback", "::1", ClassLoopback, true},
	{"v6-loopback-long-form", "0000:0000:0000:0000:0000:0000:0000:0001", ClassLoopback, true},
	{"v6-link-local", "fe80::1", ClassLinkLocal, true},
	{"v6-link-local-with-zone", "fe80::1%eth0", ClassLinkLocal, true},
	{"v6-link-local-top", "febf:ffff::1", ClassLinkLocal, true},
	{"v6-site-local", "fec0::1", ClassSiteLocal, true},
	{"v6-ula-fc", "fc00::1", ClassULA, true},
	{"v6-ula-fd", "fd12:3456::1", ClassULA, true},
	{"v6-aws-metadata", "fd00:ec2::254", ClassMetadata, true},
	{"v6-aws-metadata-uppercase", "FD00:EC2::254", ClassMetadata, true},
	{"v6-multicast", "ff02::1", ClassMulticast, true},
	{"v6-multicast-global", "ff0e::1", ClassMulticast, true},
	{"v6-discard-only", "100::1", ClassDiscard, true},
	{"v6-teredo", "2001:0:4136:e378:8000:63bf:3fff:fdd2", ClassTeredo, true},
	{"v6-benchmarking", "2001:2::1", ClassBenchmarking, true},
	{"v6-orchid", "2001:10::1", ClassORCHID, true},
	{"v6-ietf-protocol", "2001:1::1", ClassIETFProtocol, true},
	{"v6-documentation", "2001:db8::1", ClassDocumentation, true},
	{"v6-documentation-3fff", "3fff::1", ClassDocumentation, true},
	{"v6-segment-routing", "5f00::1", ClassSegmentRouting, true},
	{"v6-outside-global-unicast", "4000::1", ClassReserved, true},
	{"v6-ipv4-translated-siit", "::ffff:0:7f00:1", ClassReserved, true},
	{"v6-public", "2606:4700:4700::1111", "", false},
	{"v6-public-just-after-ietf-block", "2001:200::1", "", false},

	// IPv4-mapped: classified exactly as the IPv4 address, in every spelling.
	{"mapped-loopback-dotted", "::ffff:127.0.0.1", ClassLoopback, true},
	{"mapped-loopback-hex", "::ffff:7f00:1", ClassLoopback, true},
	{"mapped-loopback-uppercase", "::FFFF:127.0.0.1", ClassLoopback, true},
	{"mapped-loopback-long-form", "0:0:0:0:0:ffff:127.0.0.1", ClassLoopback, true},
	{"mapped-loopback-zero-padded", "0000:0000:0000:0000:0000:ffff:7f00:0001", ClassLoopback, true},
	{"mapped-metadata", "::ffff:169.254.169.254", ClassMetadata, true},
	{"mapped-metadata-hex", "::ffff:a9fe:a9fe", ClassMetadata, true},
	{"mapped-private", "::ffff:10.0.0.1", ClassPrivate, true},
	{"mapped-unspecified", "::ffff:0.0.0.0", ClassUnspecified, true},
	{"mapped-public", "::ffff:8.8.8.8", "", false},

	// IPv4-compatible (deprecated): denied whatever it embeds.
	{"v4-compatible-loopback", "::127.0.0.1", ClassIPv4Compatible, true},
	{"v4-compatible-public", "::8.8.8.8", ClassIPv4Compatible, true},

	// NAT64 well-known prefix: classified by the embedded IPv4.
	{"nat64-loopback", "64:ff9b::127.0.0.1", ClassNAT64 + ":" + ClassLoopback, true},
	{"nat64-loopback-hex", "64:ff9b::7f00:1", ClassNAT64 + ":" + ClassLoopback, true},
	{"nat64-metadata", "64:ff9b::a9fe:a9fe", ClassNAT64 + ":" + ClassMetadata, true},
	{"nat64-private", "64:ff9b::10.1.2.3", ClassNAT64 + ":" + ClassPrivate, true},
	{"nat64-public", "64:ff9b::8.8.8.8", ClassNAT64, false},
	{"nat64-local-use", "64:ff9b:1::8.8.8.8", ClassNAT64Local, true},
	{"nat64-local-use-loopback", "64:ff9b:1::7f00:1", ClassNAT64Local, true},

	// 6to4: classified by the IPv4 in bits 16-47.
	{"6to4-loopback", "2002:7f00:1::1", Class6to4 + ":" + ClassLoopback, true},
	{"6to4-private", "2002:c0a8:101::", Class6to4 + ":" + ClassPrivate, true},
	{"6to4-metadata", "2002:a9fe:a9fe::1", Class6to4 + ":" + ClassMetadata, true},
	{"6to4-public", "2002:808:808::1", Class6to4, false},
}

func TestClassify(t *testing.T) {
	for _, tc := range classifyCases {
		t.Run(tc.name, func(t *testing.T) {
			ip, err := netip.ParseAddr(tc.addr)
			if err != nil {
				t.Fatalf("ParseAddr(%q): %v", tc.addr, err)
			}
			class, denied := Classify(ip)
			if class != tc.class || denied != tc.denied {
				t.Errorf("Classify(%s) = (%q, %v), want (%q, %v)", tc.addr, class, denied, tc.class, tc.denied)
			}
		})
	}
}

func TestClassifyInvalid(t *testing.T) {
	if class, denied := Classify(netip.Addr{}); class != ClassInvalid || !denied {
		t.Errorf("Classify(zero Addr) = (%q, %v), want (%q, true)", class, denied, ClassInvalid)
	}
}

// TestClassifyMappedMatchesIPv4 checks the mapped form of every IPv4 case
// classifies as the IPv4 address does.
func TestClassifyMappedMatchesIPv4(t *testing.T) {
	for _, tc := range classifyCases {
		ip := netip.MustParseAddr(tc.addr)
		if !ip.Is4() {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			mapped := netip.AddrFrom16(ip.As16())
			class, denied := Classify(mapped)
			if class != tc.class || denied != tc.denied {
				t.Errorf("Classify(%s) = (%q, %v), want (%q, %v) as for %s", mapped, class, denied, tc.class, tc.denied, ip)
			}
		})
	}
}

// TestNonStandardIPv4SpellingsAreNotAddresses pins down that the octal,
// hex and integer spellings some resolvers accept are not IP literals to
// net/netip, so they can only reach the dialer as host names (which the
// allowlist refuses, see TestParseAllowEntry).
func TestNonStandardIPv4SpellingsAreNotAddresses(t *testing.T) {
	for _, s := range []string{"0177.0.0.1", "0x7f.0.0.1", "2130706433", "127.1", "127.0.0.01"} {
		t.Run(s, func(t *testing.T) {
			if ip, err := netip.ParseAddr(s); err == nil {
				t.Errorf("ParseAddr(%q) = %s, want an error", s, ip)
			}
		})
	}
}

func FuzzClassify(f *testing.F) {
	for _, tc := range classifyCases {
		f.Add(tc.addr)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return
		}
		class, denied := Classify(ip)
		if denied && class == "" {
			t.Fatalf("Classify(%s) denied without a class", ip)
		}
		if !denied && class != "" && class != ClassNAT64 && class != Class6to4 {
			t.Fatalf("Classify(%s) = (%q, false): only nat64/6to4 may be classed and allowed", ip, class)
		}
		// A zone and the IPv4-mapped form never change the answer.
		if c2, d2 := Classify(ip.WithZone("")); c2 != class || d2 != denied {
			t.Fatalf("zone changed Classify(%s): (%q,%v) vs (%q,%v)", ip, class, denied, c2, d2)
		}
		if ip.Is4() {
			if c2, d2 := Classify(netip.AddrFrom16(ip.As16())); c2 != class || d2 != denied {
				t.Fatalf("mapped form of %s classified (%q,%v), IPv4 (%q,%v)", ip, c2, d2, class, denied)
			}
		}
		// Whatever the stdlib calls non-public must be denied here too.
		if !denied && (ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() ||
			ip.IsMulticast() || ip.IsUnspecified() || ip.IsInterfaceLocalMulticast()) {
			t.Fatalf("Classify(%s) allowed an address net/netip calls non-public", ip)
		}
	})
}

func BenchmarkClassify(b *testing.B) {
	addrs := []netip.Addr{
		netip.MustParseAddr("8.8.8.8"),              // public v4: scans the whole v4 table
		netip.MustParseAddr("2606:4700:4700::1111"), // public v6: scans the whole v6 table
	}
	for _, ip := range addrs {
		b.Run(ip.String(), func(b *testing.B) {
			for b.Loop() {
				Classify(ip)
			}
		})
	}
}
