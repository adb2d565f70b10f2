package forward

import (
	"net"
	"testing"
)

type wrappedTCP struct{ *net.TCPConn }

func (w wrappedTCP) TCP() *net.TCPConn { return w.TCPConn }

// TestTCPConnUnwrapsListenerCap: a caller connection from a capped server
// listener (which exposes TCP()) still gets splice(2); a TLS or other
// connection does not.
func TestTCPConnUnwrapsListenerCap(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	raw := c.(*net.TCPConn)
	if got, ok := tcpConn(raw); !ok || got != raw {
		t.Error("a *net.TCPConn is not used as is")
	}
	if got, ok := tcpConn(wrappedTCP{raw}); !ok || got != raw {
		t.Error("a capped listener's connection is not unwrapped")
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if _, ok := tcpConn(a); ok {
		t.Error("a pipe counted as TCP")
	}
}

// TestAddrStringMatchesTCPAddr: the remote_addr of the log line is what
// net.TCPAddr.String writes, for every kind of address a socket reports.
func TestAddrStringMatchesTCPAddr(t *testing.T) {
	for _, a := range []net.Addr{
		&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 443},
		&net.TCPAddr{IP: net.IP{10, 1, 2, 3}, Port: 8080},
		&net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 1},
		&net.TCPAddr{IP: net.ParseIP("::1"), Port: 65535},
		&net.TCPAddr{IP: net.ParseIP("::102:304"), Port: 80},
		&net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 80, Zone: "eth0"},
		&net.TCPAddr{Port: 80},
		&net.UnixAddr{Name: "/x", Net: "unix"},
	} {
		if got, want := addrString(a), a.String(); got != want {
			t.Errorf("addrString(%#v) = %q, want %q", a, got, want)
		}
	}
}
