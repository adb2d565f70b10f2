package egress

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// countingListener accepts TCP connections on 127.0.0.1 and closes them,
// counting how many arrived.
type countingListener struct {
	net.Listener
	accepted atomic.Int64
}

func newCountingListener(t testing.TB) *countingListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingListener{Listener: ln}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			cl.accepted.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return cl
}

func (cl *countingListener) port() string {
	return fmt.Sprint(cl.Addr().(*net.TCPAddr).Port)
}

func mustPolicy(t testing.TB, c Config) *Policy {
	t.Helper()
	p, err := NewPolicy(c)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var cmpAddr = cmpopts.EquateComparable(netip.Addr{})

// TestDialDeniesResolvedLoopback is the DNS-rebinding case: the names are on
// the allowlist, but they resolve to loopback, where a listener is waiting.
// Without the dial-time check these dials would succeed.
func TestDialDeniesResolvedLoopback(t *testing.T) {
	ln := newCountingListener(t)
	port := ln.port()
	dns := newFakeDNS(t, map[string][]netip.Addr{
		"rebind.example": {netip.MustParseAddr("127.0.0.1")},
		"other.example":  {netip.MustParseAddr("127.0.0.2")},
		"mapped.example": {netip.MustParseAddr("::ffff:127.0.0.1")},
		"v6.example":     {netip.MustParseAddr("::1")},
		"dual.example":   {netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")},
	})
	allow := []string{}
	for _, h := range []string{"rebind.example", "other.example", "mapped.example", "v6.example", "dual.example", "localhost"} {
		allow = append(allow, h+":"+port)
	}
	withDNS := mustPolicy(t, Config{Allow: allow, Resolver: dns.resolver()})
	systemDNS := mustPolicy(t, Config{Allow: allow})

	tests := []struct {
		name    string
		policy  *Policy
		network string
		host    string
		wantIPs []string // any of these
	}{
		{"name-resolves-to-127-0-0-1", withDNS, "tcp", "rebind.example", []string{"127.0.0.1"}},
		{"name-resolves-to-127-0-0-2", withDNS, "tcp", "other.example", []string{"127.0.0.2"}},
		{"name-resolves-to-mapped-loopback", withDNS, "tcp", "mapped.example", []string{"127.0.0.1", "::ffff:127.0.0.1"}},
		{"name-resolves-to-ipv6-loopback", withDNS, "tcp", "v6.example", []string{"::1"}},
		{"name-resolves-to-both-loopbacks", withDNS, "tcp", "dual.example", []string{"127.0.0.1", "::1"}},
		{"uppercase-name-trailing-dot", withDNS, "tcp", "REBIND.example.", []string{"127.0.0.1"}},
		{"tcp4-network", withDNS, "tcp4", "rebind.example", []string{"127.0.0.1"}},
		{"localhost-via-system-resolver", systemDNS, "tcp", "localhost", []string{"127.0.0.1", "::1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := tc.policy.DialContext(context.Background(), tc.network, net.JoinHostPort(tc.host, port))
			if err == nil {
				conn.Close()
				t.Fatal("dial succeeded, want denied")
			}
			if !errors.Is(err, ErrDenied) {
				t.Fatalf("err = %v, want ErrDenied", err)
			}
			var de *DeniedError
			if !errors.As(err, &de) {
				t.Fatalf("err = %T, want *DeniedError", err)
			}
			if de.Reason != ClassLoopback {
				t.Errorf("Reason = %q, want %q", de.Reason, ClassLoopback)
			}
			ok := false
			for _, ip := range tc.wantIPs {
				ok = ok || de.IP == netip.MustParseAddr(ip)
			}
			if !ok {
				t.Errorf("IP = %v, want one of %v", de.IP, tc.wantIPs)
			}
		})
	}
	if n := ln.accepted.Load(); n != 0 {
		t.Errorf("listener accepted %d connections, want 0", n)
	}
}

func TestDialNotAllowlistedDoesNoDNS(t *testing.T) {
	dns := newFakeDNS(t, map[string][]netip.Addr{"api.example": {netip.MustParseAddr("127.0.0.1")}})
	p := mustPolicy(t, Config{Allow: []string{"api.example:443"}, Resolver: dns.resolver()})
	tests := []struct {
		name, network, addr string
		want                DeniedError
	}{
		{"other-host", "tcp", "evil.example:443", DeniedError{Host: "evil.example", Port: "443", Reason: ReasonNotAllowlisted}},
		{"other-port", "tcp", "api.example:80", DeniedError{Host: "api.example", Port: "80", Reason: ReasonNotAllowlisted}},
		{"service-name-port", "tcp", "api.example:https", DeniedError{Host: "api.example", Port: "https", Reason: ReasonNotAllowlisted}},
		{"udp-network", "udp", "api.example:443", DeniedError{Host: "api.example", Port: "443", Reason: `network "udp" not allowed`}},
		{"unix-network", "unix", "/run/docker.sock", DeniedError{Host: "/run/docker.sock", Reason: "malformed address"}},
		{"no-port", "tcp", "api.example", DeniedError{Host: "api.example", Reason: "malformed address"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := p.DialContext(context.Background(), tc.network, tc.addr)
			if err == nil {
				conn.Close()
				t.Fatal("dial succeeded, want denied")
			}
			var de *DeniedError
			if !errors.As(err, &de) {
				t.Fatalf("err = %v, want *DeniedError", err)
			}
			if diff := cmp.Diff(&tc.want, de, cmpAddr); diff != "" {
				t.Errorf("DeniedError mismatch (-want +got):\n%s", diff)
			}
		})
	}
	if n := dns.queries.Load(); n != 0 {
		t.Errorf("fake DNS got %d queries, want 0: the allowlist must be checked before resolving", n)
	}
}

func TestDialAllowPrivateReachesLoopback(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "vendor says hi")
	}))
	t.Cleanup(srv.Close)
	port := fmt.Sprint(srv.Listener.Addr().(*net.TCPAddr).Port)
	dns := newFakeDNS(t, map[string][]netip.Addr{"vendor.internal": {netip.MustParseAddr("127.0.0.1")}})

	tests := []struct {
		name      string
		cfg       Config
		url       string
		wantDeny  bool
		wantClass string
	}{
		{"ip-literal-allow-private", Config{Allow: []string{"127.0.0.1:" + port}, AllowPrivate: true},
			"http://127.0.0.1:" + port + "/", false, ""},
		{"name-allow-private", Config{Allow: []string{"vendor.internal:" + port}, AllowPrivate: true, Resolver: dns.resolver()},
			"http://vendor.internal:" + port + "/", false, ""},
		{"name-without-allow-private", Config{Allow: []string{"vendor.internal:" + port}, Resolver: dns.resolver()},
			"http://vendor.internal:" + port + "/", true, ClassLoopback},
		{"name-allow-cidr-exact", Config{Allow: []string{"vendor.internal:" + port}, AllowCIDRs: []string{"127.0.0.1/32"}, Resolver: dns.resolver()},
			"http://vendor.internal:" + port + "/", false, ""},
		{"name-allow-cidr-other-range", Config{Allow: []string{"vendor.internal:" + port}, AllowCIDRs: []string{"10.0.0.0/8"}, Resolver: dns.resolver()},
			"http://vendor.internal:" + port + "/", true, ClassLoopback},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := mustPolicy(t, tc.cfg).Transport()
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr}).Get(tc.url)
			if tc.wantDeny {
				if err == nil {
					resp.Body.Close()
					t.Fatal("request succeeded, want egress denied")
				}
				var de *DeniedError
				if !errors.As(err, &de) || de.Reason != tc.wantClass {
					t.Fatalf("err = %v, want *DeniedError with reason %q", err, tc.wantClass)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK || string(body) != "vendor says hi" {
				t.Errorf("got %d %q, want 200 %q", resp.StatusCode, body, "vendor says hi")
			}
		})
	}
}

// TestDialMixedAnswers checks a name resolving to a denied and an allowed
// address: the allowed one is used, and only it is ever connected to.
func TestDialMixedAnswers(t *testing.T) {
	ln := newCountingListener(t)
	port := ln.port()
	// A second listener on the denied address: a dial that skipped the check
	// would land here first.
	denied, err := net.Listen("tcp", "127.0.0.2:"+port)
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.2: %v", err)
	}
	deniedAccepts := make(chan struct{}, 1)
	go func() {
		if c, err := denied.Accept(); err == nil {
			c.Close()
			deniedAccepts <- struct{}{}
		}
	}()
	defer denied.Close()
	dns := newFakeDNS(t, map[string][]netip.Addr{
		"mixed.example": {netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.1")},
	})
	p := mustPolicy(t, Config{
		Allow:      []string{"mixed.example:" + port},
		AllowCIDRs: []string{"127.0.0.1/32"},
		Resolver:   dns.resolver(),
	})
	conn, err := p.DialContext(context.Background(), "tcp", "mixed.example:"+port)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	if got := conn.RemoteAddr().(*net.TCPAddr).AddrPort().Addr(); got != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("connected to %v, want 127.0.0.1", got)
	}
	select {
	case <-deniedAccepts:
		t.Error("a connection reached the denied address 127.0.0.2")
	default:
	}
}

// TestDialFailuresAreNotDenials keeps refused, timed-out and unresolvable
// dials distinguishable from policy refusals.
func TestDialFailuresAreNotDenials(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	dns := newFakeDNS(t, nil)
	p := mustPolicy(t, Config{
		Allow:        []string{"127.0.0.1:" + closedPort, "missing.example:443"},
		AllowPrivate: true,
		Resolver:     dns.resolver(),
	})
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()

	tests := []struct {
		name   string
		ctx    context.Context
		addr   string
		wantIs error
	}{
		{"connection-refused", context.Background(), "127.0.0.1:" + closedPort, syscall.ECONNREFUSED},
		{"deadline-exceeded", expired, "127.0.0.1:" + closedPort, context.DeadlineExceeded},
		{"no-such-host", context.Background(), "missing.example:443", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := p.DialContext(tc.ctx, "tcp", tc.addr)
			if err == nil {
				conn.Close()
				t.Fatal("dial succeeded, want an error")
			}
			if errors.Is(err, ErrDenied) {
				t.Fatalf("err = %v matches ErrDenied, want a plain dial error", err)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("err = %v, want errors.Is %v", err, tc.wantIs)
			}
			var dnsErr *net.DNSError
			if tc.wantIs == nil && (!errors.As(err, &dnsErr) || !dnsErr.IsNotFound) {
				t.Errorf("err = %v, want a not-found *net.DNSError", err)
			}
		})
	}
}

// BenchmarkDial compares DialContext (allowlist + dial-time check) with a
// plain net.Dialer, both to a loopback listener.
func BenchmarkDial(b *testing.B) {
	ln := newCountingListener(b)
	addr := "127.0.0.1:" + ln.port()
	p := mustPolicy(b, Config{Allow: []string{addr}, AllowPrivate: true})
	var plain net.Dialer
	dials := []struct {
		name string
		dial func(context.Context, string, string) (net.Conn, error)
	}{
		{"plain-net-dialer", plain.DialContext},
		{"policy-dial-context", p.DialContext},
	}
	ctx := context.Background()
	for _, d := range dials {
		b.Run(d.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c, err := d.dial(ctx, "tcp", addr)
				if err != nil {
					b.Fatal(err)
				}
				c.Close()
			}
		})
	}
}
