package observe

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Record is the one summary of a request, filled in by each layer as the
// request passes and logged once at the end. It travels in the context.
// Fields hold only structural values: the route template, never the raw
// path or query; header names, never values (except the allow-listed
// vendor rate-limit headers).
type Record struct {
	Start           time.Time
	RequestID       string
	Caller          string
	Auth            string
	Integration     string
	Route           string
	Method          string
	Status          int
	UpstreamStatus  int
	UpstreamLatency time.Duration
	BytesIn         int64
	BytesOut        int64
	ErrorCode       string
	Cause           string // private; scrubbed; never sent to the caller
	Attempts        int
	Fallback        string
	CredVersion     string
	Scopes          []string
	VendorRateLimit string
	Validation      string // public text of a response validation failure
	Via             string // "" (reverse mode) or ViaInspect

	mu sync.Mutex // guards the fields set from the transport goroutine
}

// maxLineAttrs bounds the attributes of a request line (appendAttrs).
const maxLineAttrs = 20

// ViaInspect is Record.Via for a call that came through an inspected
// forward-proxy tunnel (proxy.inspect) rather than to /{integration}/….
const ViaInspect = "inspect"

// RecordKey is the context key of a request's *Record. The gateway's
// per-request context answers it from its Value method (it carries the
// record, the credential call and its own data as one value).
type RecordKey struct{}

// RecordFrom returns the request's record, or a throwaway one.
func RecordFrom(ctx context.Context) *Record {
	if r, ok := ctx.Value(RecordKey{}).(*Record); ok {
		return r
	}
	return &Record{}
}

// SetUpstream records one vendor answer (the last attempt wins).
func (r *Record) SetUpstream(status int, latency time.Duration) {
	r.mu.Lock()
	r.UpstreamStatus = status
	r.UpstreamLatency += latency
	r.Attempts++
	r.mu.Unlock()
}

// vendorRateLimitHeaders are the only response header values ever logged.
var vendorRateLimitHeaders = []string{
	"X-Ratelimit-Remaining", "X-Ratelimit-Limit", "X-Ratelimit-Reset",
	"Ratelimit", "Ratelimit-Policy", "Ratelimit-Remaining", "Ratelimit-Reset", "Retry-After",
}

// NoteVendorRateLimit keeps the vendor's rate-limit headers for the log.
func (r *Record) NoteVendorRateLimit(h http.Header) {
	var b strings.Builder
	for _, k := range vendorRateLimitHeaders {
		if v := h.Get(k); v != "" {
			if b.Len() > 0 {
				b.WriteString("; ")
			}
			b.WriteString(strings.ToLower(k))
			b.WriteString("=")
			if len(v) > 64 {
				v = v[:64]
			}
			b.WriteString(v)
		}
	}
	if b.Len() > 0 {
		r.mu.Lock()
		r.VendorRateLimit = b.String()
		r.mu.Unlock()
	}
}

// Log writes the record as one line.
func (r *Record) Log(ctx context.Context, l *slog.Logger) {
	r.mu.Lock()
	defer r.mu.Unlock()
	level := slog.LevelInfo
	if r.Status >= 500 {
		level = slog.LevelWarn
	}
	if !l.Enabled(ctx, level) {
		return
	}
	now := time.Now()
	// The attributes are built on the stack, not in the record (which
	// lives as long as the call) nor in the slog.Record's own overflow
	// slice (which slog allocates for every line of more than five).
	var buf [maxLineAttrs]slog.Attr
	attrs := r.appendAttrs(buf[:0], now)
	// The server's JSON logger writes the line itself (see lineWriter);
	// it answers false for any line it does not format exactly as slog
	// would, and that line takes the handler below, with a copy of the
	// attributes on the heap (a handler may keep them).
	h := l.Handler()
	if sh, ok := h.(*scrubHandler); ok && sh.line != nil && sh.line.write(now, level, requestMsg, attrs) {
		return
	}
	// The handler is called directly, not through l.LogAttrs: the logger
	// would take the caller's program counter (runtime.Callers, a stack
	// walk per request) for a source location this line never prints.
	//
	// The attributes go in as one group with an empty key, which every
	// slog handler inlines: the line is the same as with the attributes
	// added one by one.
	_ = h.Handle(ctx, requestRecord(now, level, slices.Clone(attrs)))
}

// requestRecord is the slog record of a request line.
func requestRecord(now time.Time, level slog.Level, attrs []slog.Attr) slog.Record {
	rec := slog.NewRecord(now, level, requestMsg, 0)
	rec.AddAttrs(slog.Attr{Value: slog.GroupValue(attrs...)})
	return rec
}

// requestMsg is the message of every request line.
const requestMsg = "request"

// attrs returns the attributes of the log line at now.
func (r *Record) attrs(now time.Time) []slog.Attr {
	return r.appendAttrs(make([]slog.Attr, 0, maxLineAttrs), now)
}

// appendAttrs appends the attributes of the log line at now to dst.
func (r *Record) appendAttrs(dst []slog.Attr, now time.Time) []slog.Attr {
	attrs := append(dst,
		slog.String(KeyRequestID, r.RequestID),
		slog.String(KeyIntegration, r.Integration),
		slog.String(KeyCaller, r.Caller),
		slog.String(KeyMethod, r.Method),
		slog.String(KeyRoute, r.Route),
		slog.Int(KeyStatus, r.Status),
		slog.Float64(KeyDurationMS, ms(now.Sub(r.Start))),
		slog.Int64(KeyBytesIn, r.BytesIn),
		slog.Int64(KeyBytesOut, r.BytesOut),
	)
	if r.Auth != "" {
		attrs = append(attrs, slog.String(KeyAuth, r.Auth))
	}
	if r.UpstreamStatus != 0 || r.Attempts > 0 {
		attrs = append(attrs,
			slog.Int(KeyUpstreamStatus, r.UpstreamStatus),
			slog.Float64(KeyUpstreamMS, ms(r.UpstreamLatency)),
			slog.Int(KeyAttempts, r.Attempts))
	}
	if r.ErrorCode != "" {
		attrs = append(attrs, slog.String(KeyError, r.ErrorCode))
	}
	if r.Cause != "" {
		attrs = append(attrs, slog.String(KeyCause, r.Cause))
	}
	if r.Fallback != "" {
		attrs = append(attrs, slog.String(KeyFallback, r.Fallback))
	}
	if r.CredVersion != "" {
		attrs = append(attrs, slog.String(KeyCredVersion, r.CredVersion))
	}
	if len(r.Scopes) > 0 {
		attrs = append(attrs, slog.Any(KeyScopes, r.Scopes))
	}
	if r.Validation != "" {
		attrs = append(attrs, slog.String(KeyValidation, r.Validation))
	}
	if r.VendorRateLimit != "" {
		attrs = append(attrs, slog.String(KeyVendorRateLimit, r.VendorRateLimit))
	}
	if r.Via != "" {
		attrs = append(attrs, slog.String(KeyVia, r.Via))
	}
	return attrs
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
