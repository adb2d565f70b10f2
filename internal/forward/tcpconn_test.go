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
