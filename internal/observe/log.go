// Package observe owns what the gateway says about itself: the slog setup
// (with a scrubbing handler as the last line of defence against leaked
// secrets), the one summary record logged per request, and the Prometheus
// metrics of the request path.
package observe

import (
	"context"
	"io"
	"log/slog"
	"strings"

	"github.com/portcullis-dev/portcullis/internal/secret"
)

// Log keys, snake_case, used across the gateway.
const (
	KeyRequestID       = "request_id"
	KeyCaller          = "caller"
	KeyIntegration     = "integration"
	KeyRoute           = "route"
	KeyMethod          = "method"
	KeyStatus          = "status"
	KeyUpstreamStatus  = "upstream_status"
	KeyDurationMS      = "duration_ms"
	KeyUpstreamMS      = "upstream_ms"
	KeyBytesIn         = "bytes_in"
	KeyBytesOut        = "bytes_out"
	KeyError           = "error_code"
	KeyCause           = "cause"
	KeyAttempts        = "attempts"
	KeyFallback        = "fallback"
	KeyCredVersion     = "credential_version"
	KeyScopes          = "granted_scopes"
	KeyVendorRateLimit = "vendor_ratelimit"
	KeyAuth            = "auth"
	KeyValidation      = "validation"
	KeyVia             = "via" // how the call arrived when not at /{integration}/…: "inspect" (an inspected forward-proxy tunnel)
)

// NewLogger returns a JSON (or text) logger at level whose every string
// value and error is passed through scrub.
func NewLogger(w io.Writer, level, format string, scrub *secret.Scrubber) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(strings.ToUpper(level)))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "text" {
		return slog.New(&scrubHandler{next: slog.NewTextHandler(w, opts), scrub: scrub})
	}
	// The request line is written by lineWriter, beside the handler: the
	// two must not interleave their writes.
	if _, ok := w.(*BufferedWriter); !ok {
		w = &lockedWriter{w: w}
	}
	return slog.New(&scrubHandler{next: slog.NewJSONHandler(w, opts), scrub: scrub,
		line: &lineWriter{w: w, scrub: scrub}})
}

// scrubHandler rewrites string-like attribute values through a Scrubber.
type scrubHandler struct {
	next  slog.Handler
	scrub *secret.Scrubber
	// line writes request lines for next, a JSONHandler with no
	// attributes or groups added; nil on every handler derived from it.
	line *lineWriter
}

func (h *scrubHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *scrubHandler) Handle(ctx context.Context, r slog.Record) error {
	if h.scrub == nil {
		return h.next.Handle(ctx, r)
	}
	// Fast path: most records hold no secret; pass them on untouched
	// instead of rebuilding every attribute.
	dirty := h.scrub.Scrub(r.Message) != r.Message
	if !dirty {
		r.Attrs(func(a slog.Attr) bool {
			dirty = h.needsScrub(a)
			return !dirty
		})
	}
	if !dirty {
		return h.next.Handle(ctx, r)
	}
	nr := slog.NewRecord(r.Time, r.Level, h.scrub.Scrub(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		nr.AddAttrs(h.attr(a))
		return true
	})
	return h.next.Handle(ctx, nr)
}

// needsScrub reports whether a would change under attr.
func (h *scrubHandler) needsScrub(a slog.Attr) bool {
	v := a.Value
	switch v.Kind() {
	case slog.KindString:
		s := v.String()
		return h.scrub.Scrub(s) != s
	case slog.KindGroup:
		for _, g := range v.Group() {
			if h.needsScrub(g) {
				return true
			}
		}
		return false
	case slog.KindInt64, slog.KindUint64, slog.KindFloat64, slog.KindBool, slog.KindDuration, slog.KindTime:
		return false
	}
	return true // groups, errors, LogValuers, anything else: take the slow path
}

func (h *scrubHandler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, h.scrub.Scrub(v.String()))
	case slog.KindGroup:
		as := v.Group()
		out := make([]any, len(as))
		for i, g := range as {
			out[i] = h.attr(g)
		}
		return slog.Group(a.Key, out...)
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return slog.String(a.Key, h.scrub.Scrub(err.Error()))
		}
		if ss, ok := v.Any().([]string); ok {
			out := make([]string, len(ss))
			for i, s := range ss {
				out[i] = h.scrub.Scrub(s)
			}
			return slog.Any(a.Key, out)
		}
		return slog.String(a.Key, h.scrub.Scrub(v.String()))
	}
	return slog.Attr{Key: a.Key, Value: v}
}

func (h *scrubHandler) WithAttrs(as []slog.Attr) slog.Handler {
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = h.attr(a)
	}
	return &scrubHandler{next: h.next.WithAttrs(out), scrub: h.scrub}
}

func (h *scrubHandler) WithGroup(name string) slog.Handler {
	return &scrubHandler{next: h.next.WithGroup(name), scrub: h.scrub}
}
