// Package testdns is a fake DNS server for tests that point vendor names at
// loopback addresses: a gateway under test resolves api.vendor.test through
// it, while real clients behind HTTPS_PROXY never resolve the name
// themselves. It is imported only from _test.go files.
package testdns

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// Start answers A and AAAA queries on a loopback UDP socket from records
// (NXDOMAIN for other names) until the test ends, and returns a resolver
// that asks it.
func Start(t testing.TB, records map[string][]netip.Addr) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); serve(pc, records) }()
	t.Cleanup(func() { pc.Close(); <-done })
	addr := pc.LocalAddr().String()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", addr)
	}}
}

func serve(pc net.PacketConn, records map[string][]netip.Addr) {
	buf := make([]byte, 1500)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		if out, err := reply(buf[:n], records); err == nil {
			_, _ = pc.WriteTo(out, from)
		}
	}
}

func reply(msg []byte, records map[string][]netip.Addr) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(msg)
	if err != nil {
		return nil, err
	}
	q, err := p.Question()
	if err != nil {
		return nil, err
	}
	addrs, ok := records[strings.TrimSuffix(strings.ToLower(q.Name.String()), ".")]
	hdr := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true}
	if !ok {
		hdr.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, hdr)
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	rh := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET}
	for _, a := range addrs {
		switch {
		case q.Type == dnsmessage.TypeA && a.Is4():
			err = b.AResource(rh, dnsmessage.AResource{A: a.As4()})
		case q.Type == dnsmessage.TypeAAAA && a.Is6():
			err = b.AAAAResource(rh, dnsmessage.AAAAResource{AAAA: a.As16()})
		}
		if err != nil {
			return nil, err
		}
	}
	return b.Finish()
}
