package forward

import (
	"net/netip"
	"testing"
)

// TestIsSelfFollowsListenerChanges: the parse of SelfAddrs is reused, but a
// listener bound (or moved) after the last call is seen on the next one.
func TestIsSelfFollowsListenerChanges(t *testing.T) {
	addrs := []string{"127.0.0.1:8080", "not an address"}
	p := &Proxy{self: func() []string { return addrs }}
	lo := netip.MustParseAddr("127.0.0.1")
	other := netip.MustParseAddr("10.0.0.7")

	if !p.isSelf(lo, 8080, netip.Addr{}) {
		t.Fatal("127.0.0.1:8080 is a listener, not refused")
	}
	if p.isSelf(lo, 9090, netip.Addr{}) {
		t.Fatal("127.0.0.1:9090 refused before any listener is there")
	}
	// Same slice, element changed in place: must be re-parsed.
	addrs[0] = "0.0.0.0:9090"
	if !p.isSelf(lo, 9090, netip.Addr{}) || !p.isSelf(other, 9090, other) {
		t.Fatal("listener on 0.0.0.0:9090 not seen after the change")
	}
	if p.isSelf(lo, 8080, netip.Addr{}) {
		t.Fatal("the old listener 127.0.0.1:8080 still refused after it moved")
	}
	if p.isSelf(other, 9090, netip.Addr{}) {
		t.Fatal("10.0.0.7:9090 from another source address taken for this host")
	}
	addrs = append(addrs, "[::1]:7070")
	if !p.isSelf(netip.MustParseAddr("::1"), 7070, netip.Addr{}) {
		t.Fatal("listener added later not seen")
	}
}
