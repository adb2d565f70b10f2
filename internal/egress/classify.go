package egress

import "net/netip"

// Address classes reported by Classify. A class is a short, stable word fit
// for logs and metrics labels.
const (
	ClassUnspecified    = "unspecified"
	ClassLoopback       = "loopback"
	ClassPrivate        = "private"
	ClassLinkLocal      = "link-local"
	ClassMetadata       = "metadata"
	ClassCGNAT          = "cgnat"
	ClassMulticast      = "multicast"
	ClassBroadcast      = "broadcast"
	ClassReserved       = "reserved"
	ClassBenchmarking   = "benchmarking"
	ClassDocumentation  = "documentation"
	ClassIETFProtocol   = "ietf-protocol"
	Class6to4Relay      = "6to4-relay"
	ClassULA            = "unique-local"
	ClassSiteLocal      = "site-local"
	ClassIPv4Compatible = "ipv4-compatible"
	ClassNAT64          = "nat64"
	ClassNAT64Local     = "nat64-local"
	Class6to4           = "6to4"
	ClassTeredo         = "teredo"
	ClassDiscard        = "discard-only"
	ClassORCHID         = "orchid"
	ClassSegmentRouting = "segment-routing"
	ClassInvalid        = "invalid"
)

// rangeClass names one special-purpose range.
type rangeClass struct {
	prefix netip.Prefix
	class  string
}

// The tables below are read-only after package initialisation (plain data,
// no registration). They are scanned in order, so a more specific prefix
// must come before a prefix that contains it. A linear scan is used on
// purpose: the lists are short and fixed, every entry is visible with its
// citation, and the cost (BenchmarkClassify) is negligible next to a TCP
// connect (BenchmarkDial); a radix-tree dependency would buy nothing.
//
// Sources: RFC 6890 and the IANA IPv4/IPv6 Special-Purpose Address
// Registries (iana.org/assignments/iana-ipv4-special-registry,
// iana-ipv6-special-registry), plus the ranges those registries leave to
// other documents, each cited inline.
var ipv4Ranges = []rangeClass{
	{mustPrefix("0.0.0.0/8"), ClassUnspecified},         // "this network", RFC 791 §3.2, RFC 6890 §2.2.2; Linux connects 0.0.0.0 to the local host
	{mustPrefix("10.0.0.0/8"), ClassPrivate},            // RFC 1918
	{mustPrefix("100.64.0.0/10"), ClassCGNAT},           // shared address space, RFC 6598
	{mustPrefix("127.0.0.0/8"), ClassLoopback},          // RFC 1122 §3.2.1.3
	{mustPrefix("169.254.169.254/32"), ClassMetadata},   // cloud instance metadata (AWS, GCP, Azure, OpenStack...)
	{mustPrefix("169.254.0.0/16"), ClassLinkLocal},      // RFC 3927
	{mustPrefix("172.16.0.0/12"), ClassPrivate},         // RFC 1918
	{mustPrefix("192.0.0.0/24"), ClassIETFProtocol},     // IETF protocol assignments, RFC 6890 §2.2.2 (whole block)
	{mustPrefix("192.0.2.0/24"), ClassDocumentation},    // TEST-NET-1, RFC 5737
	{mustPrefix("192.88.99.0/24"), Class6to4Relay},      // deprecated 6to4 relay anycast, RFC 7526
	{mustPrefix("192.168.0.0/16"), ClassPrivate},        // RFC 1918
	{mustPrefix("198.18.0.0/15"), ClassBenchmarking},    // RFC 2544
	{mustPrefix("198.51.100.0/24"), ClassDocumentation}, // TEST-NET-2, RFC 5737
	{mustPrefix("203.0.113.0/24"), ClassDocumentation},  // TEST-NET-3, RFC 5737
	{mustPrefix("224.0.0.0/4"), ClassMulticast},         // RFC 5771
	{mustPrefix("255.255.255.255/32"), ClassBroadcast},  // limited broadcast, RFC 919, RFC 8190
	{mustPrefix("240.0.0.0/4"), ClassReserved},          // reserved for future use, RFC 1112 §4
	// Azure's platform "wire server": a public address reachable only from
	// inside Azure, serving instance metadata and agent traffic. It is the one
	// entry here that is not special-purpose; SSRF guards treat it as metadata.
	{mustPrefix("168.63.129.16/32"), ClassMetadata},
}

var ipv6Ranges = []rangeClass{
	{mustPrefix("::/128"), ClassUnspecified},          // RFC 4291 §2.5.2
	{mustPrefix("::1/128"), ClassLoopback},            // RFC 4291 §2.5.3
	{mustPrefix("::/96"), ClassIPv4Compatible},        // deprecated IPv4-compatible, RFC 4291 §2.5.5.1
	{mustPrefix("64:ff9b:1::/48"), ClassNAT64Local},   // local-use IPv4/IPv6 translation, RFC 8215
	{mustPrefix("100::/64"), ClassDiscard},            // discard-only, RFC 6666
	{mustPrefix("2001::/32"), ClassTeredo},            // Teredo, RFC 4380; the embedded addresses are obfuscated, so deny outright
	{mustPrefix("2001:2::/48"), ClassBenchmarking},    // RFC 5180
	{mustPrefix("2001:10::/28"), ClassORCHID},         // deprecated ORCHID, RFC 4843
	{mustPrefix("2001::/23"), ClassIETFProtocol},      // IETF protocol assignments, RFC 2928 (whole block, as 192.0.0.0/24)
	{mustPrefix("2001:db8::/32"), ClassDocumentation}, // RFC 3849
	{mustPrefix("3fff::/20"), ClassDocumentation},     // RFC 9637
	{mustPrefix("5f00::/16"), ClassSegmentRouting},    // SRv6 SIDs, RFC 9602
	{mustPrefix("fd00:ec2::254/128"), ClassMetadata},  // AWS instance metadata over IPv6
	{mustPrefix("fc00::/7"), ClassULA},                // unique local, RFC 4193
	{mustPrefix("fe80::/10"), ClassLinkLocal},         // RFC 4291 §2.5.6
	{mustPrefix("fec0::/10"), ClassSiteLocal},         // deprecated site-local, RFC 3879
	{mustPrefix("ff00::/8"), ClassMulticast},          // RFC 4291 §2.7
}

var (
	// Ranges whose addresses embed an IPv4 address; that address is
	// classified in turn.
	nat64WellKnown = mustPrefix("64:ff9b::/96") // RFC 6052 §2.1; v4 in the last 32 bits
	sixToFour      = mustPrefix("2002::/16")    // RFC 3056 §2; v4 in bits 16-47
	// Only 2000::/3 is allocated as global unicast (RFC 4291 §2.4, IANA IPv6
	// Address Space registry); anything else that no entry above named is
	// unassigned, so it is refused as reserved (fail closed).
	globalUnicast = mustPrefix("2000::/3")
)

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// classification is Classify's result with the details the dialer needs.
type classification struct {
	class    string
	denied   bool
	metadata bool       // a cloud metadata address: AllowPrivate does not lift it
	embedded netip.Addr // the IPv4 address inside a mapped/NAT64/6to4 address
}

// Classify reports the range a resolved address falls into ("" when public)
// and whether connecting to it is denied by default. IPv4-mapped addresses
// (::ffff:a.b.c.d) are classified exactly as their IPv4 form, since that is
// where a dual-stack socket connects. NAT64 (64:ff9b::/96) and 6to4
// (2002::/16) addresses are classified by the IPv4 address they embed:
// denied as "nat64:<class>" / "6to4:<class>" when it is denied, reported as
// "nat64" / "6to4" but not denied when it is public. An IPv6 zone is ignored.
func Classify(ip netip.Addr) (class string, denied bool) {
	c := classify(ip)
	return c.class, c.denied
}

func classify(ip netip.Addr) classification {
	if !ip.IsValid() {
		return classification{class: ClassInvalid, denied: true}
	}
	ip = ip.WithZone("")
	if ip.Is4In6() {
		// RFC 4291 §2.5.5.2: treat the mapped form as the IPv4 address.
		v4 := ip.Unmap()
		c := classify4(v4)
		c.embedded = v4
		return c
	}
	if ip.Is4() {
		return classify4(ip)
	}
	if nat64WellKnown.Contains(ip) {
		return classifyEmbedded(ClassNAT64, v4At(ip, 12))
	}
	if sixToFour.Contains(ip) {
		return classifyEmbedded(Class6to4, v4At(ip, 2))
	}
	for _, r := range ipv6Ranges {
		if r.prefix.Contains(ip) {
			return classification{class: r.class, denied: true, metadata: r.class == ClassMetadata}
		}
	}
	if !globalUnicast.Contains(ip) {
		return classification{class: ClassReserved, denied: true}
	}
	return classification{}
}

func classify4(ip netip.Addr) classification {
	for _, r := range ipv4Ranges {
		if r.prefix.Contains(ip) {
			return classification{class: r.class, denied: true, metadata: r.class == ClassMetadata}
		}
	}
	return classification{}
}

// classifyEmbedded classifies the IPv4 address v4 found inside a translation
// address of the given kind.
func classifyEmbedded(kind string, v4 netip.Addr) classification {
	c := classify4(v4)
	c.embedded = v4
	if c.denied {
		c.class = kind + ":" + c.class
	} else {
		c.class = kind
	}
	return c
}

// v4At returns the IPv4 address stored in bytes [i, i+4) of a 16-byte address.
func v4At(ip netip.Addr, i int) netip.Addr {
	b := ip.As16()
	return netip.AddrFrom4([4]byte{b[i], b[i+1], b[i+2], b[i+3]})
}
