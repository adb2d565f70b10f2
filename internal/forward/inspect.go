package forward

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis-dev/portcullis/internal/problem"
)

// CloseTLS is the close_reason of an inspected tunnel whose TLS handshake
// failed or was refused: no SNI, an SNI that is not the CONNECT host, a
// client that does not trust the inspect CA, or no certificate for the host.
const CloseTLS = "tls_handshake"

// Inspect is how a Proxy serves the tunnels of integrations with
// proxy.inspect: true. Such a tunnel is not relayed to the vendor: after
// the CONNECT is admitted (authentication, allowlist, limits, exactly as
// for a plain tunnel) the gateway answers 200, terminates the caller's TLS
// on the hijacked connection with a certificate for the CONNECT host
// (Leaf), and serves the HTTP/1.1 requests inside with Handler, which
// calls the vendor through the gateway's own egress.
type Inspect struct {
	// Leaf returns the certificate for a CONNECT host (canonical: lower
	// case, no trailing dot; an IP literal without brackets). In serve it
	// is mint.Authority.Leaf.
	Leaf func(host string) (*tls.Certificate, error)
	// Handler serves each request inside an inspected tunnel;
	// TunnelFrom(r.Context()) says whose tunnel it is. In serve it ends in
	// gateway.ServeTunneled.
	Handler http.Handler
	// ReadHeaderTimeout bounds the TLS handshake and each request's
	// headers, as on the caller listener. Default 10s.
	ReadHeaderTimeout time.Duration
	// MaxHeaderBytes bounds a request's headers, as on the caller
	// listener. Default 64 KiB.
	MaxHeaderBytes int
	// ErrorLog receives net/http's own messages (malformed requests);
	// nil discards them.
	ErrorLog *log.Logger
}

// TunnelInfo is what the Handler of an inspected tunnel learns about the
// tunnel a request came through: the integration its CONNECT was admitted
// to, the caller authenticated from that CONNECT, and the canonical
// CONNECT host and port.
type TunnelInfo struct {
	Integration string
	Caller      string
	Auth        string // identity.Method
	Host        string
	Port        string
}

type tunnelKey struct{}

// TunnelFrom returns the tunnel of a request served by Inspect.Handler.
func TunnelFrom(ctx context.Context) (TunnelInfo, bool) {
	t, ok := ctx.Value(tunnelKey{}).(*TunnelInfo)
	if !ok {
		return TunnelInfo{}, false
	}
	return *t, true
}

// Refusals of inspect mode, wrapped in the caller's answer or the log's cause.
var (
	// ErrNotInspectable: the CONNECT target of an inspect integration is not its upstream.
	ErrNotInspectable = errors.New("only the upstream of an integration with proxy.inspect can be reached through its tunnels")
	// ErrNoInspector: the gateway runs without server.inspect_ca.
	ErrNoInspector = errors.New("proxy.inspect is on but the gateway has no inspect CA")
	// ErrSNI: the ClientHello's server name is missing or is not the CONNECT host.
	ErrSNI = errors.New("TLS server name (SNI) does not match the CONNECT host")
)

// inspectTarget is the only host:port that tunnels of an integration with
// proxy.inspect may reach: its upstream's, canonical. An upstream that is
// not https, or whose host the forward proxy would not accept as a CONNECT
// target, cannot be inspected.
func inspectTarget(upstream string) (target, error) {
	u, err := url.Parse(upstream)
	if err != nil {
		return target{}, fmt.Errorf("upstream: %w", err)
	}
	if u.Scheme != "https" {
		return target{}, fmt.Errorf("proxy.inspect needs an https:// upstream, not %q", upstream)
	}
	port := u.Port()
	if port == "" {
		port = "443"
	}
	host := u.Hostname()
	if u.Host != "" && u.Host[0] == '[' {
		host = "[" + host + "]"
	}
	t, err := parseAuthority(host+":"+port, "")
	if err != nil {
		return target{}, fmt.Errorf("upstream host: %w", err)
	}
	return t, nil
}

// serveInspect serves an admitted CONNECT of an inspect integration. It
// refuses (before the 200) a target that is not the upstream, then
// terminates TLS and serves HTTP/1.1 until the tunnel closes.
func (p *Proxy) serveInspect(w http.ResponseWriter, r *http.Request, ev *event, a admission, t target) error {
	in := a.dec.in
	ev.inspect = true
	if p.inspect == nil || p.inspect.Leaf == nil || p.inspect.Handler == nil {
		return problem.Wrap(problem.Internal, "inspect mode is not available on this gateway", ErrNoInspector)
	}
	if a.dec.Verdict != VerdictAllow || t != in.inspect {
		return deny(problem.EgressDenied, fmt.Sprintf("integration %s inspects its tunnels: only %s can be reached through them", in.name, in.inspect.addr()), ErrNotInspectable)
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return problem.Wrap(problem.Internal, "could not take over the connection", err)
	}
	ev.status = http.StatusOK
	_ = conn.SetDeadline(time.Time{})
	if _, err := io.WriteString(conn, connectEstablish); err != nil {
		_ = conn.Close()
		ev.closeReason = CloseError
		return nil
	}
	it := &inspected{}
	it.conn.Conn = conn
	// A client may send its ClientHello right behind the CONNECT.
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n)
		it.conn.pre = append([]byte(nil), b...)
	}
	p.track(it)
	defer p.untrack(it)
	it.serve(p.inspect, in.spec.IdleTimeout.D, time.Now().Add(in.spec.MaxLifetime.D), &TunnelInfo{
		Integration: in.name, Caller: a.caller, Auth: ev.auth, Host: t.host, Port: t.port,
	})
	ev.bytesIn, ev.bytesOut = it.conn.in.Load(), it.conn.out.Load()
	ev.requests = it.requests.Load()
	ev.closeReason = it.reason()
	if it.tlsErr != nil {
		ev.cause = it.tlsErr.Error()
	}
	return nil
}

// inspected is one inspected tunnel: its connection, the http.Server that
// serves it, and how it ended.
type inspected struct {
	conn     countConn
	srv      atomic.Pointer[http.Server] // set once the handshake is done
	requests atomic.Int64
	handlers sync.WaitGroup
	tlsErr   error        // set before srv runs
	why      atomic.Value // string: CloseLifetime or CloseShutdown, set by whoever ended the tunnel
	idleFrom atomic.Int64 // unix nanoseconds the connection went idle; 0 while a request runs
	idle     time.Duration
}

func (it *inspected) serve(o *Inspect, idle time.Duration, end time.Time, info *TunnelInfo) {
	it.idle = idle
	hdrTimeout := o.ReadHeaderTimeout
	if hdrTimeout <= 0 {
		hdrTimeout = 10 * time.Second
	}
	tc := tls.Server(&it.conn, &tls.Config{
		MinVersion: tls.VersionTLS12,
		// HTTP/2 is not served inside a tunnel: clients that offer h2
		// negotiate HTTP/1.1, as with a server that never heard of h2.
		NextProtos: []string{"http/1.1"},
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			// Called before any resumption, so every handshake is checked.
			return nil, checkSNI(hello.ServerName, info.Host)
		},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			// For exactly the CONNECT host, which checkSNI tied the SNI to.
			return o.Leaf(info.Host)
		},
	})
	// The handshake is done here rather than by net/http, so a refusal
	// is this tunnel's close_reason and cause.
	_ = tc.SetDeadline(time.Now().Add(min(hdrTimeout, time.Until(end))))
	if err := tc.Handshake(); err != nil {
		it.tlsErr = err
		_ = tc.Close()
		return
	}
	_ = tc.SetDeadline(time.Time{})

	ln := &oneConn{conn: tc, done: make(chan struct{})}
	it.conn.onClose = ln.close
	errLog := o.ErrorLog
	if errLog == nil {
		errLog = log.New(io.Discard, "", 0)
	}
	maxHdr := o.MaxHeaderBytes
	if maxHdr <= 0 {
		maxHdr = 64 << 10
	}
	var protos http.Protocols
	protos.SetHTTP1(true)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			it.handlers.Add(1)
			defer it.handlers.Done()
			o.Handler.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: hdrTimeout,
		IdleTimeout:       idle,
		MaxHeaderBytes:    maxHdr,
		ErrorLog:          errLog,
		Protocols:         &protos,
		TLSNextProto:      map[string]func(*http.Server, *tls.Conn, http.Handler){},
		BaseContext: func(net.Listener) context.Context {
			return context.WithValue(context.Background(), tunnelKey{}, info)
		},
		ConnState: func(_ net.Conn, s http.ConnState) {
			switch s {
			case http.StateActive:
				it.requests.Add(1)
				it.idleFrom.Store(0)
			case http.StateIdle:
				it.idleFrom.Store(time.Now().UnixNano())
			case http.StateClosed:
				ln.close()
			}
		},
	}
	it.srv.Store(srv)
	if _, ended := it.why.Load().(string); ended {
		_ = tc.Close() // ended while the handshake ran
	}
	life := time.AfterFunc(time.Until(end), func() { it.end(CloseLifetime) })
	_ = srv.Serve(ln)
	life.Stop()
	it.handlers.Wait()
}

// end closes the tunnel from another goroutine, noting why.
func (it *inspected) end(why string) {
	it.why.CompareAndSwap(nil, why)
	if srv := it.srv.Load(); srv != nil {
		_ = srv.Close()
	}
	_ = it.conn.Close()
}

// shutdown is Proxy.Shutdown's deadline passing.
func (it *inspected) shutdown() { it.end(CloseShutdown) }

func (it *inspected) reason() string {
	if why, ok := it.why.Load().(string); ok {
		return why
	}
	if it.tlsErr != nil {
		return CloseTLS
	}
	if from := it.idleFrom.Load(); from != 0 && it.idle > 0 && time.Since(time.Unix(0, from)) >= it.idle {
		return CloseIdle
	}
	return CloseEOF
}

// checkSNI accepts the ClientHello's server name when it is the CONNECT
// host (compared canonically: case and one trailing dot do not matter).
// For an IP-literal CONNECT host it accepts no server name (clients send
// none for an IP, RFC 6066) or that same IP; a DNS name never matches an
// IP, nor an IP a name.
func checkSNI(sni, host string) error {
	hostIP, err := netip.ParseAddr(host)
	isIP := err == nil
	switch {
	case sni == "" && isIP:
		return nil
	case sni == "":
		return fmt.Errorf("%w: the client sent none, CONNECT %s", ErrSNI, host)
	case isIP:
		if ip, err := netip.ParseAddr(strings.Trim(sni, "[]")); err == nil && ip.Unmap() == hostIP {
			return nil
		}
	default:
		if name, err := canonicalName(sni); err == nil && name == host {
			return nil
		}
	}
	return fmt.Errorf("%w: %q, CONNECT %s", ErrSNI, sni, host)
}

// countConn is the caller's side of an inspected tunnel: it replays bytes
// the client sent behind its CONNECT, counts bytes both ways, and tells
// the one-connection listener when the connection is closed.
type countConn struct {
	net.Conn
	pre     []byte
	in, out atomic.Int64
	onClose func()
	once    sync.Once
}

func (c *countConn) Read(b []byte) (int, error) {
	if len(c.pre) > 0 {
		n := copy(b, c.pre)
		c.pre = c.pre[n:]
		c.in.Add(int64(n))
		return n, nil
	}
	n, err := c.Conn.Read(b)
	c.in.Add(int64(n))
	return n, err
}

func (c *countConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.out.Add(int64(n))
	return n, err
}

func (c *countConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		if c.onClose != nil {
			c.onClose()
		}
	})
	return err
}

// oneConn is a net.Listener that accepts one connection, then blocks until
// it is closed, so http.Server.Serve serves exactly that connection and
// returns when it ends.
type oneConn struct {
	conn     net.Conn
	accepted bool // only Serve's goroutine calls Accept
	done     chan struct{}
	once     sync.Once
}

func (l *oneConn) Accept() (net.Conn, error) {
	if !l.accepted {
		l.accepted = true
		return l.conn, nil
	}
	<-l.done
	return nil, net.ErrClosed
}

func (l *oneConn) close() { l.once.Do(func() { close(l.done) }) }

func (l *oneConn) Close() error   { l.close(); return nil }
func (l *oneConn) Addr() net.Addr { return l.conn.LocalAddr() }
