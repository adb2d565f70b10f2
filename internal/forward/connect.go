package forward

import (
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/portcullis-dev/portcullis/internal/problem"
)

// Why a tunnel closed (log key close_reason, metrics label reason).
const (
	CloseEOF         = "eof"          // both sides finished
	CloseIdle        = "idle_timeout" // no byte from either side for idle_timeout
	CloseLifetime    = "max_lifetime" // open for max_lifetime
	CloseError       = "error"        // a read or write failed
	CloseShutdown    = "shutdown"     // Shutdown's deadline passed
	connectEstablish = "HTTP/1.1 200 Connection established\r\n\r\n"
)

// serveConnect authenticates, decides, dials, then hijacks the caller's
// connection and relays bytes until the tunnel closes. Everything that can
// be refused is refused before the hijack, so refusals are ordinary HTTP
// responses.
func (p *Proxy) serveConnect(w http.ResponseWriter, r *http.Request, ev *event) error {
	if r.ProtoMajor != 1 {
		// Hijacking needs HTTP/1; HTTP/2 extended CONNECT is not supported.
		return &problem.Error{Code: problem.BadRequestPath, Detail: "CONNECT is supported over HTTP/1.1 only", StatusOverride: http.StatusHTTPVersionNotSupported}
	}
	t, err := parseAuthority(r.RequestURI, "")
	if err != nil {
		// Authenticate first, so an unauthenticated client learns nothing.
		if _, _, ok := p.auth.Proxy(r); !ok {
			return proxyAuthRequired()
		}
		return problem.Wrap(problem.BadRequestPath, "malformed or ambiguous CONNECT target: want host:port with a DNS name, a dotted-decimal IPv4 address or a bracketed IPv6 address", err)
	}
	addr := t.addr()
	ev.target = addr
	a, err := p.admit(r, ev, t)
	if err != nil {
		return err
	}
	in := a.dec.in
	defer p.limits.release(a.caller, in)
	active := p.metrics.activeGauge(in.name, a.caller)
	active.Inc()
	defer active.Dec()
	if in.spec.Inspect {
		return p.serveInspect(w, r, ev, a, t)
	}

	dial := a.dial
	if dial == nil {
		dial = in.dial
	}
	up, err := dial(r.Context(), "tcp", addr)
	if err != nil {
		return dialProblem(t, err)
	}
	ev.remote = addrString(up.RemoteAddr())

	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		_ = up.Close()
		return problem.Wrap(problem.Internal, "could not take over the connection", err)
	}
	ev.status = http.StatusOK
	tn := &tunnel{client: conn, up: up, idle: in.spec.IdleTimeout.D, end: time.Now().Add(in.spec.MaxLifetime.D), bufs: p.bufs}
	// The caller side's write deadline is the end of the lifetime; the
	// read deadline is pipe's to set before its first read (the hijack
	// has cleared the server's).
	_ = conn.SetWriteDeadline(tn.end)
	if _, err := conn.Write(establishedLine); err != nil {
		_ = conn.Close()
		_ = up.Close()
		ev.closeReason = CloseError
		return nil
	}
	// A client may send its first bytes (a TLS ClientHello) right behind
	// the CONNECT without waiting for the answer; they are in brw.
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n)
		if _, err := up.Write(b); err != nil {
			_ = conn.Close()
			_ = up.Close()
			ev.closeReason = CloseError
			return nil
		}
		ev.bytesIn += int64(n)
	}
	p.track(tn)
	in1, out, why := tn.run()
	p.untrack(tn)
	ev.bytesIn += in1
	ev.bytesOut = out
	ev.closeReason = why
	return nil
}

// establishedLine is connectEstablish as the bytes written (no
// conversion per tunnel).
var establishedLine = []byte(connectEstablish)

// tunnel relays bytes between a hijacked caller connection and a vendor
// connection.
//
// Between two TCP sockets each direction starts by copying through a
// pooled buffer (read, write) and moves to splice(2) (io.Copy's fast path,
// which keeps the bytes in the kernel) once a read fills the buffer or the
// direction has been open for bufferedPhase. A short tunnel (one request
// and its answer) so costs a read and a write per chunk instead of two
// splices through a pipe, which cost more CPU for small chunks, while bulk
// transfers and long-lived tunnels get splice as before. The buffer is
// held only during that first phase, so idle tunnels hold none.
//
// Idle and lifetime limits are enforced with socket deadlines, not timers:
// each direction reads with a deadline of at most idle/4 (never past the
// end of the lifetime); when it expires, the tunnel closes if no byte has
// moved in either direction for idle_timeout, and reading resumes
// otherwise. So a tunnel closes between idle_timeout and 1.25×idle_timeout
// after its last byte. Writes carry the lifetime deadline only: a write
// interrupted by a deadline may lose data, which is acceptable only when
// the tunnel is ending anyway.
type tunnel struct {
	client, up net.Conn
	idle       time.Duration
	end        time.Time
	bufs       *sync.Pool

	last    atomic.Int64 // unix nanoseconds of the last byte relayed
	stopped atomic.Bool  // set by shutdown
	ended   atomic.Int32 // directions that reached EOF
	once    sync.Once

	// The caller → vendor direction runs on its own goroutine (relayIn)
	// and leaves its result here for run, which waits on inDone.
	inDone sync.WaitGroup
	inN    int64
	inWhy  string
}

// run relays until both directions finish or one fails, and reports bytes
// from the caller, bytes to the caller and why the tunnel closed.
func (t *tunnel) run() (in, out int64, reason string) {
	t.last.Store(time.Now().UnixNano())
	// The caller side's write deadline is set already (serveConnect).
	_ = t.up.SetWriteDeadline(t.end)
	t.inDone.Add(1)
	go t.relayIn()
	out, whyOut := t.pipe(t.client, t.up)
	t.inDone.Wait()
	t.closeAll()
	in, whyIn := t.inN, t.inWhy
	switch {
	case t.stopped.Load():
		reason = CloseShutdown
	case whyIn != "" && whyIn != CloseEOF:
		reason = whyIn
	case whyOut != "":
		reason = whyOut
	case whyIn != "":
		reason = whyIn
	default:
		reason = CloseError
	}
	return in, out, reason
}

// relayIn copies caller → vendor for run.
func (t *tunnel) relayIn() {
	defer t.inDone.Done()
	t.inN, t.inWhy = t.pipe(t.up, t.client)
}

func (t *tunnel) closeAll() {
	t.once.Do(func() {
		_ = t.client.Close()
		_ = t.up.Close()
	})
}

// shutdown ends the tunnel from another goroutine.
func (t *tunnel) shutdown() {
	t.stopped.Store(true)
	t.closeAll()
}

// pipe copies src to dst until EOF, an error, idleness or the end of the
// lifetime. On EOF it half-closes dst so the other side sees the end too,
// and the other direction carries on. It returns "" when the tunnel was
// closed by the other direction.
func (t *tunnel) pipe(dst, src net.Conn) (int64, string) {
	slice := t.idle / 4
	var total int64
	dt, dstTCP := tcpConn(dst)
	st, srcTCP := tcpConn(src)
	splice := dstTCP && srcTCP
	// buffered is the end of the buffered phase (see tunnel), zero once it
	// is over or when splice cannot be used.
	var buffered time.Time
	if splice {
		buffered = time.Now().Add(bufferedPhase)
	}
	for {
		now := time.Now()
		if !now.Before(t.end) {
			t.closeAll()
			return total, CloseLifetime
		}
		dl := now.Add(slice)
		if dl.After(t.end) {
			dl = t.end
		}
		if !buffered.IsZero() && !now.Before(buffered) {
			buffered = time.Time{}
		}
		if !buffered.IsZero() && buffered.Before(dl) {
			dl = buffered
		}
		_ = src.SetReadDeadline(dl)
		var n int64
		var err error
		switch {
		case !buffered.IsZero():
			var full bool
			n, full, err = copyBuffered(dst, src, t.bufs)
			if full {
				buffered = time.Time{}
				// The rest of a bulk transfer: splice. err is nil here.
				var m int64
				m, err = io.Copy(dt, st)
				n += m
			}
		case splice:
			n, err = io.Copy(dt, st)
		default:
			n, err = copyBuffer(dst, src, t.bufs)
		}
		total += n
		if n > 0 {
			t.last.Store(time.Now().UnixNano())
		}
		switch {
		case err == nil:
			// Half-close so the other side sees the end too; when the
			// other direction has already ended, the tunnel is done.
			if t.ended.Add(1) == 2 || !closeWrite(dst) {
				t.closeAll()
			}
			return total, CloseEOF
		case errors.Is(err, os.ErrDeadlineExceeded):
			now = time.Now()
			if !now.Before(t.end) {
				t.closeAll()
				return total, CloseLifetime
			}
			if now.Sub(time.Unix(0, t.last.Load())) >= t.idle {
				t.closeAll()
				return total, CloseIdle
			}
		case errors.Is(err, net.ErrClosed):
			return total, ""
		case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
			// A peer that resets instead of half-closing (common for TLS
			// clients tearing down an idle connection) has finished all the
			// same: count it as the end of the tunnel, not as a failure.
			t.closeAll()
			return total, CloseEOF
		default:
			t.closeAll()
			return total, CloseError
		}
	}
}

// bufferedPhase is how long a TCP-to-TCP direction copies through a
// buffer before it moves to splice(2) (see tunnel).
const bufferedPhase = time.Second

// copyBuffered copies src to dst through a pooled buffer until EOF (nil
// error), an error, or a read that fills the buffer (full: the caller
// goes on with splice). The buffer goes back to the pool on return.
func copyBuffered(dst, src net.Conn, bufs *sync.Pool) (n int64, full bool, err error) {
	bp := bufs.Get().(*[]byte)
	defer bufs.Put(bp)
	buf := *bp
	for {
		nr, rerr := src.Read(buf)
		if nr > 0 {
			nw, werr := dst.Write(buf[:nr])
			n += int64(nw)
			if werr != nil {
				return n, false, werr
			}
			if nr == len(buf) {
				return n, true, nil
			}
		}
		if rerr != nil {
			if rerr == io.EOF {
				return n, false, nil
			}
			return n, false, rerr
		}
	}
}

// copyBuffer copies src to dst through a pooled 32 KiB buffer, for
// connections splice(2) cannot serve (a TLS caller listener).
func copyBuffer(dst, src net.Conn, bufs *sync.Pool) (int64, error) {
	bp := bufs.Get().(*[]byte)
	defer bufs.Put(bp)
	return io.CopyBuffer(writerOnly{dst}, readerOnly{src}, *bp)
}

// tcpConn returns c's TCP socket: c itself, or the one inside the server
// listener's connection-cap wrapper (which has a TCP method).
func tcpConn(c net.Conn) (*net.TCPConn, bool) {
	switch c := c.(type) {
	case *net.TCPConn:
		return c, true
	case interface{ TCP() *net.TCPConn }:
		return c.TCP(), true
	}
	return nil, false
}

// newBufferPool returns a pool of 32 KiB copy buffers.
func newBufferPool() *sync.Pool {
	return &sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}
}

// writerOnly and readerOnly hide ReadFrom/WriteTo so io.CopyBuffer uses the
// pooled buffer instead of allocating its own.
type writerOnly struct{ io.Writer }
type readerOnly struct{ io.Reader }

// closeWrite half-closes c when it supports it (TCP, TLS).
func closeWrite(c net.Conn) bool {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite() == nil
	}
	return false
}
