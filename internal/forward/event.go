package forward

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/portcullis-dev/portcullis/internal/observe"
	"github.com/portcullis-dev/portcullis/internal/problem"
)

// Log keys of the forward proxy's line, in addition to observe's.
const (
	KeyKind        = "kind"         // connect | http
	KeyTarget      = "target"       // canonical host:port asked for
	KeyRemoteAddr  = "remote_addr"  // the vendor address actually connected to
	KeyDecision    = "decision"     // allow | report | open | deny
	KeyWouldDeny   = "would_deny"   // report mode: why enforce would refuse
	KeyCloseReason = "close_reason" // eof | idle_timeout | max_lifetime | error | shutdown | tls_handshake
	KeyInspect     = "inspect"      // true on the line of an inspected tunnel
	KeyRequests    = "requests"     // requests served inside an inspected tunnel (each has its own line too)
)

const (
	kindConnect = "connect"
	kindHTTP    = "http"

	headerRequestID   = "X-Request-Id"
	headerProxyAuthn  = "Proxy-Authenticate"
	proxyAuthenticate = `Basic realm="portcullis"`
)

// event is the one summary of a CONNECT or plain request, logged when it
// ends (for a tunnel: when the tunnel closes). It holds names, addresses
// and counts only: never header values, paths or credentials.
type event struct {
	kind        string
	start       time.Time
	requestID   string
	caller      string
	auth        string
	target      string
	integration string
	verdict     string
	wouldDeny   string
	remote      string
	status      int
	code        problem.Code
	cause       string
	bytesIn     int64 // caller → vendor
	bytesOut    int64 // vendor → caller
	closeReason string
	inspect     bool  // a tunnel of a proxy.inspect integration
	requests    int64 // requests served inside an inspected tunnel

	attrs [18]slog.Attr // the log line's attributes, built by logEvent
}

// fail writes a refusal (problem+json, X-Portcullis-Error) and notes it.
func (p *Proxy) fail(w http.ResponseWriter, ev *event, err error) {
	pe := problem.As(err)
	ev.code, ev.status = pe.Code, pe.Status()
	if ev.verdict == "" || pe.Status() == http.StatusForbidden {
		ev.verdict = VerdictDeny
	}
	if pe.Err != nil {
		ev.cause = pe.Err.Error()
	}
	h := w.Header()
	h.Set(headerRequestID, ev.requestID)
	if ev.status == http.StatusProxyAuthRequired {
		h.Set(headerProxyAuthn, proxyAuthenticate)
	}
	if ev.kind == kindConnect {
		// The client must not reuse a connection whose CONNECT failed.
		h.Set("Connection", "close")
	}
	problem.Write(w, ev.requestID, pe)
}

// finish logs the event and records its metrics.
//
// The attributes are built in ev.attrs, not in a local array: finish runs
// at the bottom of the connection goroutine's stack, under the server's
// handler chain and above slog's and the scrubbing handler's large
// frames, and an 800-byte array in this frame is what took that stack past
// 8 KiB and made the runtime copy it to a 16 KiB one on every tunnel.
func (p *Proxy) finish(ctx context.Context, ev *event) {
	d := p.now().Sub(ev.start)
	verdict := ev.verdict
	if verdict == "" {
		verdict = VerdictDeny
	}
	p.record(ev, verdict, d)
	p.logEvent(ctx, ev, verdict, d)
}

// record counts the event in the metrics.
func (p *Proxy) record(ev *event, verdict string, d time.Duration) {
	s := p.metrics.eventSeries(eventKey{ev.kind, ev.integration, ev.caller, verdict, string(ev.code), ev.closeReason})
	s.requests.Inc()
	if ev.closeReason != "" {
		s.duration.Observe(d.Seconds())
		s.closed.Inc()
		s.bytesIn.Add(float64(ev.bytesIn))
		s.bytesOut.Add(float64(ev.bytesOut))
	}
}

// logEvent writes the event's one log line.
func (p *Proxy) logEvent(ctx context.Context, ev *event, verdict string, d time.Duration) {
	level, msg := slog.LevelInfo, "proxy request"
	switch {
	case ev.kind == kindConnect && ev.closeReason != "":
		msg = "tunnel closed"
	case ev.code != "":
		level, msg = slog.LevelWarn, "proxy request refused"
	}
	a := &ev.attrs
	a[0] = slog.String(observe.KeyRequestID, ev.requestID)
	a[1] = slog.String(KeyKind, ev.kind)
	a[2] = slog.String(observe.KeyCaller, ev.caller)
	a[3] = slog.String(KeyTarget, ev.target)
	a[4] = slog.String(KeyDecision, verdict)
	a[5] = slog.Int(observe.KeyStatus, ev.status)
	a[6] = slog.Int64(observe.KeyDurationMS, d.Milliseconds())
	a[7] = slog.Int64(observe.KeyBytesIn, ev.bytesIn)
	a[8] = slog.Int64(observe.KeyBytesOut, ev.bytesOut)
	n := 9
	add := func(at slog.Attr) { a[n] = at; n++ }
	if ev.auth != "" {
		add(slog.String(observe.KeyAuth, ev.auth))
	}
	if ev.integration != "" {
		add(slog.String(observe.KeyIntegration, ev.integration))
	}
	if ev.wouldDeny != "" {
		add(slog.String(KeyWouldDeny, ev.wouldDeny))
	}
	if ev.remote != "" {
		add(slog.String(KeyRemoteAddr, ev.remote))
	}
	if ev.closeReason != "" {
		add(slog.String(KeyCloseReason, ev.closeReason))
	}
	if ev.inspect {
		add(slog.Bool(KeyInspect, true))
		add(slog.Int64(KeyRequests, ev.requests))
	}
	if ev.code != "" {
		add(slog.String(observe.KeyError, string(ev.code)))
	}
	if ev.cause != "" {
		add(slog.String(observe.KeyCause, ev.cause))
	}
	attrs := a[:n]
	// The gateway's JSON logger writes the line itself, without slog's
	// generic handler walk and the program counter LogAttrs takes (a
	// stack walk per tunnel); any line it does not format exactly as
	// slog would goes through the logger.
	if !observe.WriteLine(ctx, p.log, time.Now(), level, msg, attrs) {
		p.log.LogAttrs(ctx, level, msg, attrs...)
	}
}

// requestIDs makes request ids: a random prefix per Proxy and a counter,
// unique without a getrandom(2) call per tunnel.
type requestIDs struct {
	prefix string
	seq    atomic.Uint64
}

func newRequestIDs() *requestIDs {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return &requestIDs{prefix: strings.ToLower(base32.StdEncoding.EncodeToString(b[:])) + "-"}
}

// get keeps a caller's well-formed X-Request-Id (1-128 of A-Za-z0-9._-),
// as the reverse proxy does, or makes a new one.
func (g *requestIDs) get(in string) string {
	if len(in) > 0 && len(in) <= 128 && strings.Trim(in, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == "" {
		return in
	}
	return g.prefix + strconv.FormatUint(g.seq.Add(1), 36)
}
