package observe

import (
	"context"
	"io"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/portcullis-dev/portcullis/internal/secret"
)

// lineWriter writes the request line (Record.Log) of the JSON logger
// without slog's JSONHandler. Under load that handler was the largest cost
// of the request path that a bare reverse proxy does not pay (about 7 µs of
// CPU per request in the admin listener's CPU profile): its generic walk of
// the attributes (Record.Attrs, appendNonBuiltIns, appendAttr), a
// json.Marshal per float, and the scrubbing handler's check of every value
// in front of it. No JSON logging library could take its place on this
// line: zap, zerolog and encoding/json/v2 each format times, floats or
// escapes differently from slog, and the line's bytes are a contract that
// users parse (DESIGN.md).
//
// So write formats only what it can format exactly as slog does: strings
// that need no JSON escaping, integers, floats that strconv formats as
// encoding/json does, and lists of such strings. For any other line, or
// when a value holds a known secret, it answers false without writing and
// the record takes the slog path (the scrubbing handler, then
// JSONHandler). TestRequestLineMatchesSlog and FuzzRequestLine check that
// both paths write the same bytes.
type lineWriter struct {
	w     io.Writer // safe for concurrent writes (see NewLogger)
	scrub *secret.Scrubber
}

var linePool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// write writes one line with message msg at now and reports whether it
// did.
func (lw *lineWriter) write(now time.Time, level slog.Level, msg string, attrs []slog.Attr) bool {
	if y := now.Year(); y < 0 || y >= 10000 {
		return false // slog appends an error to such a time
	}
	if !lw.clean(msg) {
		return false
	}
	bp := linePool.Get().(*[]byte)
	b, ok := lw.appendLine((*bp)[:0], now, level, msg, attrs)
	if ok {
		_, _ = lw.w.Write(b) // slog's handlers do not report write errors either (Record.Log drops them)
	}
	if cap(b) <= 16<<10 {
		*bp = b
		linePool.Put(bp)
	}
	return ok
}

func (lw *lineWriter) appendLine(b []byte, now time.Time, level slog.Level, msg string, attrs []slog.Attr) ([]byte, bool) {
	b = append(b, `{"time":"`...)
	b = now.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"`...)
	b = append(b, level.String()...)
	b = append(b, `","msg":"`...)
	b = append(b, msg...)
	b = append(b, '"')
	for _, a := range attrs {
		if a.Key == "" || !plainJSON(a.Key) {
			return b, false
		}
		b = append(b, `,"`...)
		b = append(b, a.Key...)
		b = append(b, `":`...)
		v := a.Value
		switch v.Kind() {
		case slog.KindString:
			s := v.String()
			if !lw.clean(s) {
				return b, false
			}
			b = append(b, '"')
			b = append(b, s...)
			b = append(b, '"')
		case slog.KindInt64:
			b = strconv.AppendInt(b, v.Int64(), 10)
		case slog.KindBool:
			b = strconv.AppendBool(b, v.Bool())
		case slog.KindFloat64:
			f := v.Float64()
			// encoding/json (which slog calls for floats) uses strconv's
			// shortest 'f' form in this range and an exponent outside it.
			if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) || math.IsNaN(f) {
				return b, false
			}
			b = strconv.AppendFloat(b, f, 'f', -1, 64)
		case slog.KindAny:
			ss, ok := v.Any().([]string)
			if !ok || ss == nil {
				return b, false
			}
			b = append(b, '[')
			for i, s := range ss {
				if !lw.clean(s) {
					return b, false
				}
				if i > 0 {
					b = append(b, ',')
				}
				b = append(b, '"')
				b = append(b, s...)
				b = append(b, '"')
			}
			b = append(b, ']')
		default:
			return b, false
		}
	}
	return append(b, "}\n"...), true
}

// WriteLine writes one line of l at now through the JSON logger's own
// writer (see lineWriter), as l.LogAttrs(ctx, level, msg, attrs...) would
// write it at now, and reports whether it did. It answers false, having
// written nothing, when l is not NewLogger's JSON logger, when level is
// not enabled, or for a line lineWriter does not format; the caller then
// logs the line through l. For lines written often, such as the forward
// proxy's one line per tunnel.
func WriteLine(ctx context.Context, l *slog.Logger, now time.Time, level slog.Level, msg string, attrs []slog.Attr) bool {
	sh, ok := l.Handler().(*scrubHandler)
	if !ok || sh.line == nil || !sh.Enabled(ctx, level) {
		return false
	}
	return sh.line.write(now, level, msg, attrs)
}

// clean reports whether s goes into the line as it is: no secret to scrub
// and nothing to escape.
func (lw *lineWriter) clean(s string) bool {
	return plainJSON(s) && lw.scrub.Scrub(s) == s
}

// plainJSON reports whether s is printable ASCII with no '"' or '\\': a JSON
// string body that slog writes unescaped.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// lockedWriter serialises writes to a writer that may not be safe for
// concurrent use: JSONHandler and lineWriter both write to it.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
