package server

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/portcullis-dev/portcullis/internal/config"
)

// Each listener is bounded on its own (server.limits, docs/listeners.md):
// a connection cap, so a flood on one listener — idle connections on the
// internet-facing webhook port — cannot use up the file descriptors the
// others need to accept; header, idle and body deadlines, so a slow or
// silent client cannot hold a connection for ever.

// capListener accepts at most cap(sem) connections at once. When full it
// stops calling accept(2): the excess waits in the kernel's accept queue
// (somaxconn), where it holds no file descriptor of ours, until a
// connection closes.
//
// It is golang.org/x/net/netutil.LimitListener but for the type of the
// connections it returns: LimitListener wraps each in a struct holding a
// net.Conn interface, which hides *net.TCPConn's CloseWrite (the forward
// proxy half-closes CONNECT tunnels with it), ReadFrom and WriteTo
// (sendfile, splice). capConn embeds *net.TCPConn, so they stay.
type capListener struct {
	*net.TCPListener
	sem  chan struct{}
	done chan struct{}
	once sync.Once
	// full, if set, is called when an Accept finds the cap reached.
	full func()
}

// limitListener caps ln (a TCP listener from net.Listen) at n connections.
func limitListener(ln net.Listener, n int) (*capListener, error) {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return nil, fmt.Errorf("listener %s is not TCP", ln.Addr())
	}
	return &capListener{TCPListener: tl, sem: make(chan struct{}, n), done: make(chan struct{})}, nil
}

func (l *capListener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	default:
		if l.full != nil {
			l.full()
		}
		select {
		case <-l.done:
			return nil, net.ErrClosed
		case l.sem <- struct{}{}:
		}
	}
	c, err := l.AcceptTCP()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &capConn{TCPConn: c, release: func() { <-l.sem }}, nil
}

func (l *capListener) Close() error {
	err := l.TCPListener.Close()
	l.once.Do(func() { close(l.done) })
	return err
}

// capConn gives its place back to the listener when closed, including
// after a hijack (a CONNECT tunnel holds its place until it ends).
type capConn struct {
	*net.TCPConn
	once    sync.Once
	release func()
}

func (c *capConn) Close() error {
	err := c.TCPConn.Close()
	c.once.Do(c.release)
	return err
}

// watch logs, at most once a minute, that the listener is at its cap, and
// exports its open and maximum connections as gauges.
func (l *capListener) watch(name string, reg prometheus.Registerer, log *slog.Logger) {
	every := rate.Sometimes{Interval: time.Minute}
	l.full = func() {
		every.Do(func() {
			log.Warn("listener at max_conns: new connections wait in the kernel's accept queue",
				"listener", name, "max_conns", cap(l.sem), "path", "server.limits."+name+".max_conns")
		})
	}
	labels := prometheus.Labels{"listener": name}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "portcullis_listener_connections", ConstLabels: labels,
			Help: "Connections open on the listener (idle and hijacked included)."}, func() float64 { return float64(len(l.sem)) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "portcullis_listener_max_connections", ConstLabels: labels,
			Help: "The listener's server.limits max_conns."}, func() float64 { return float64(cap(l.sem)) }),
	)
}

// TCP returns the connection itself, for splice(2) between two sockets.
func (c *capConn) TCP() *net.TCPConn { return c.TCPConn }

// limitServer applies l's header and idle deadlines to s and wraps its
// handler with the body deadlines.
func limitServer(s *http.Server, l config.ListenerLimit) *http.Server {
	s.ReadHeaderTimeout = l.ReadHeaderTimeout.D
	s.IdleTimeout = l.IdleTimeout.D
	s.Handler = bodyDeadlines(s.Handler, l.ReadTimeout.D, l.BodyStallTimeout.D)
	return s
}

// bodyDeadlines bounds how long a request body may take to arrive: total
// from the end of the headers, stall between two reads (0: no bound).
//
// Why a read deadline per body read rather than http.Server.ReadTimeout:
// ReadTimeout counts from the first byte of the request and stays set on
// the connection while the handler runs; once the body is read, net/http
// waits in the background for the client hanging up, that read hits the
// deadline, and the request's context is cancelled — cutting every vendor
// call that outlives read_timeout. Here the deadline is set only while the
// body is read (http.ResponseController.SetReadDeadline) and cleared at
// its end.
func bodyDeadlines(next http.Handler, total, stall time.Duration) http.Handler {
	if total <= 0 && stall <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		b := &deadlineBody{body: r.Body, rc: http.NewResponseController(w), stall: stall}
		if total > 0 {
			b.end = time.Now().Add(total)
		}
		// Armed now, not at the first Read: net/http reads what the
		// handler left of the body after it returns, and that must not
		// wait on a slow client either.
		b.arm()
		r.Body = b
		next.ServeHTTP(w, r)
		switch {
		case b.cut:
			// Known slow: close now rather than wait for more of it.
			_ = b.rc.SetReadDeadline(time.Now())
		case !b.done:
			b.arm()
		}
	})
}

// deadlineBody is a request body read under deadlines. It is used by one
// handler goroutine, so it needs no lock.
type deadlineBody struct {
	body  io.ReadCloser
	rc    *http.ResponseController
	end   time.Time // zero: no total bound
	stall time.Duration
	done  bool // EOF seen and the deadline cleared
	cut   bool // a deadline expired
}

func (b *deadlineBody) arm() {
	d := b.end
	if b.stall > 0 {
		if s := time.Now().Add(b.stall); d.IsZero() || s.Before(d) {
			d = s
		}
	}
	// ErrNotSupported (a ResponseWriter wrapped by a test) leaves the
	// header and idle deadlines as the only bound.
	_ = b.rc.SetReadDeadline(d)
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	if b.done {
		return b.body.Read(p)
	}
	b.arm()
	n, err := b.body.Read(p)
	if errors.Is(err, io.EOF) {
		// The deadline stays on the connection otherwise, and the
		// background read net/http starts at EOF would trip on it.
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	} else if errors.Is(err, os.ErrDeadlineExceeded) {
		b.cut = true
	}
	return n, err
}

func (b *deadlineBody) Close() error { return b.body.Close() }

// checkFDs compares the file descriptors the listeners' caps may need with
// the process's open file limit: it refuses to start when the caps alone
// do not fit (then a flood on one listener can still starve the others),
// and warns when the caps plus one outbound connection per caller and
// webhook connection do not.
func checkFDs(cfg *config.Config, webhook bool, limit uint64, log *slog.Logger) error {
	b := cfg.Server.FDs(webhook)
	l := cfg.Server.Limits
	where := "server.limits"
	if line := cfg.Line(where); line > 0 {
		where = fmt.Sprintf("%s (line %d)", where, line)
	}
	sum := fmt.Sprintf("caller %d + admin %d", l.Caller.MaxConns, l.Admin.MaxConns)
	if webhook {
		sum += fmt.Sprintf(" + webhook %d", l.Webhook.MaxConns)
	}
	if limit < uint64(b.Inbound) {
		return fmt.Errorf("%s: the listeners may hold %s connections, and with %d more file descriptors for the gateway itself "+
			"that is %d, over the open file limit of %d (ulimit -n): lower the max_conns of server.limits.caller, .admin or .webhook, "+
			"or raise the limit (LimitNOFILE= in systemd, --ulimit nofile= in Docker)", where, sum, config.FDHeadroom, b.Inbound, limit)
	}
	if limit < uint64(b.WithOutbound) {
		log.Warn("open file limit is low for server.limits: busy listeners may use up file descriptors and make the others refuse connections",
			"open_file_limit", limit, "listener_max_conns", sum, "needed_with_outbound", b.WithOutbound, "path", "server.limits")
	}
	return nil
}
