package observe

import (
	"bytes"
	"context"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/secret"
)

// bothLines formats r's request line at now with lineWriter and with slog
// (the scrubbing handler in front of a JSONHandler, the path every other
// line takes), and reports whether lineWriter took the line.
func bothLines(t testing.TB, r *Record, now time.Time, sc *secret.Scrubber) (fast, slow string, ok bool) {
	t.Helper()
	level := slog.LevelInfo
	if r.Status >= 500 {
		level = slog.LevelWarn
	}
	attrs := r.attrs(now)
	var fb, sb bytes.Buffer
	lw := &lineWriter{w: &fb, scrub: sc}
	ok = lw.write(now, level, requestMsg, attrs)
	h := &scrubHandler{next: slog.NewJSONHandler(&sb, &slog.HandlerOptions{Level: slog.LevelDebug}), scrub: sc}
	if err := h.Handle(context.Background(), requestRecord(now, level, attrs)); err != nil {
		t.Fatal(err)
	}
	return fb.String(), sb.String(), ok
}

func testScrubber() *secret.Scrubber {
	sc := secret.NewScrubber()
	sc.Add(secret.New("sk_live_CANARY_9f8e7d6c5b"), secret.New("another_secret_value_123"))
	return sc
}

func TestRequestLineMatchesSlog(t *testing.T) {
	now := time.Date(2026, 12, 3, 14, 5, 6, 789012345, time.FixedZone("X", 3600))
	full := &Record{Start: now.Add(-1500 * time.Microsecond), RequestID: "r1", Integration: "payments", Caller: "billing", Auth: "token",
		Method: "POST", Route: "/v1/charges/{id}", Status: 502, UpstreamStatus: 503, UpstreamLatency: 1234567 * time.Microsecond,
		Attempts: 3, BytesIn: 12, BytesOut: 99, ErrorCode: "upstream_error", Cause: "vendor answered 503", Fallback: "backup",
		CredVersion: "vault:kv/pay@7", Scopes: []string{"read", "write"}, Validation: "body: missing id",
		VendorRateLimit: "x-ratelimit-remaining=0; retry-after=3", Via: ViaInspect}
	cases := []struct {
		name string
		r    *Record
		now  time.Time
		fast bool // lineWriter is expected to take the line
	}{
		{"bench call", benchRecord(), time.Now(), true},
		{"every field", full, now, true},
		{"refused early", &Record{Start: now, Status: 401, ErrorCode: "unauthenticated"}, now.UTC(), true},
		{"zero start", &Record{RequestID: "x", Status: 200}, now, true},
		{"sub-microsecond", &Record{Start: now.Add(-time.Nanosecond), Status: 200}, now, true},
		{"quote in cause", &Record{Start: now, Status: 502, Cause: `dial "x": refused`}, now, false},
		{"newline in cause", &Record{Start: now, Status: 502, Cause: "a\nb"}, now, false},
		{"non-ASCII route", &Record{Start: now, Status: 200, Route: "/café/\u2028"}, now, false},
		{"invalid UTF-8", &Record{Start: now, Status: 200, Caller: "\xff"}, now, false},
		{"secret in cause", &Record{Start: now, Status: 502, Cause: "key sk_live_CANARY_9f8e7d6c5b revoked"}, now, false},
		{"secret in scope", &Record{Start: now, Status: 200, Scopes: []string{"a", "x another_secret_value_123"}}, now, false},
		{"year 10000", &Record{Status: 200}, time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), false},
		{"huge duration", &Record{Start: now, Status: 200, UpstreamLatency: math.MaxInt64, Attempts: 1}, now, true},
	}
	sc := testScrubber()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fast, slow, ok := bothLines(t, c.r, c.now, sc)
			if ok != c.fast {
				t.Fatalf("lineWriter took the line: %v, want %v\nslog: %s", ok, c.fast, slow)
			}
			if ok && fast != slow {
				t.Fatalf("lines differ\nfast: %s\nslog: %s", fast, slow)
			}
			if !ok && fast != "" {
				t.Fatalf("lineWriter wrote a line it gave back: %q", fast)
			}
			if strings.Contains(slow, "sk_live_CANARY") || strings.Contains(slow, "another_secret_value_123") {
				t.Fatalf("secret leaked: %s", slow)
			}
		})
	}
}

// TestRecordLogUsesLineWriter checks the server's logger end to end: the
// bench record is logged once, as slog would, with the secret-free values.
func TestRecordLogUsesLineWriter(t *testing.T) {
	var buf bytes.Buffer
	l := NewLogger(&buf, "info", "json", testScrubber())
	r := benchRecord()
	r.Log(context.Background(), l)
	r.Cause = "key sk_live_CANARY_9f8e7d6c5b revoked"
	r.Log(context.Background(), l)
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 lines, got %q", buf.String())
	}
	if !strings.Contains(lines[0], `"msg":"request","request_id":"01JEXAMPLE7Q3ZKJ8N4W2V5R6T","integration":"vendor","caller":"bench"`) {
		t.Errorf("first line: %s", lines[0])
	}
	if strings.Contains(lines[1], "CANARY") || !strings.Contains(lines[1], `"cause":"key `+secret.Redacted+` revoked"`) {
		t.Errorf("second line not scrubbed: %s", lines[1])
	}
}

func FuzzRequestLine(f *testing.F) {
	f.Add("01JEXAMPLE", "bench", "/v1/items/{id}", "dial tcp: refused", "read write", "sk_live_CANARY_9f8e7d6c5b", 200, int64(412000), int64(1500000), int64(245), 1)
	f.Add("r\"1", "b\\x", "/é", "a\nb\u2028", "", "0123456789ab", 503, int64(0), int64(-1), int64(-7), 0)
	f.Fuzz(func(t *testing.T, id, caller, route, cause, scopes, sec string, status int, upNS, durNS, bytesOut int64, attempts int) {
		sc := secret.NewScrubber()
		sc.Add(secret.New(sec))
		now := time.Date(2026, 12, 3, 14, 5, 6, int(upNS&0x3fffffff)%1e9, time.UTC)
		r := &Record{Start: now.Add(-time.Duration(durNS)), RequestID: id, Caller: caller, Integration: caller + "-i",
			Route: route, Method: "GET", Status: status, UpstreamLatency: time.Duration(upNS), Attempts: attempts,
			BytesOut: bytesOut, Cause: cause, CredVersion: sec}
		if attempts != 0 {
			r.UpstreamStatus = status
		}
		if scopes != "" {
			r.Scopes = strings.Split(scopes, " ")
		}
		fast, slow, ok := bothLines(t, r, now, sc)
		if ok && fast != slow {
			t.Fatalf("lines differ\nfast: %s\nslog: %s", fast, slow)
		}
		if !ok && fast != "" {
			t.Fatalf("lineWriter wrote a line it gave back: %q", fast)
		}
	})
}

// TestWriteLineMatchesSlog: WriteLine writes any message's line byte for
// byte as the scrubbing handler and JSONHandler would, and gives back (writes
// nothing for) the lines it cannot format or that hold a secret.
func TestWriteLineMatchesSlog(t *testing.T) {
	now := time.Date(2026, 12, 3, 14, 5, 6, 789012345, time.UTC)
	tunnel := []slog.Attr{slog.String("request_id", "r1"), slog.String("kind", "connect"), slog.String("target", "10.0.0.1:443"),
		slog.Int("status", 200), slog.Int64("duration_ms", 12), slog.Bool("inspect", true), slog.Bool("x", false)}
	cases := []struct {
		name  string
		msg   string
		attrs []slog.Attr
		fast  bool
	}{
		{"tunnel", "tunnel closed", tunnel, true},
		{"no attributes", "proxy request", nil, true},
		{"quote in message", `a "b"`, tunnel, false},
		{"secret in message", "sk_live_CANARY_9f8e7d6c5b", nil, false},
		{"secret in value", "tunnel closed", []slog.Attr{slog.String("cause", "x another_secret_value_123")}, false},
		{"duration value", "tunnel closed", []slog.Attr{slog.Duration("d", time.Second)}, false},
	}
	sc := testScrubber()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var fb, sb bytes.Buffer
			ok := WriteLine(context.Background(), NewLogger(&fb, "info", "json", sc), now, slog.LevelInfo, c.msg, c.attrs)
			rec := slog.NewRecord(now, slog.LevelInfo, c.msg, 0)
			rec.AddAttrs(c.attrs...)
			h := &scrubHandler{next: slog.NewJSONHandler(&sb, nil), scrub: sc}
			if err := h.Handle(context.Background(), rec); err != nil {
				t.Fatal(err)
			}
			if ok != c.fast {
				t.Fatalf("WriteLine took the line: %v, want %v\nslog: %s", ok, c.fast, sb.String())
			}
			if ok && fb.String() != sb.String() {
				t.Fatalf("lines differ\nfast: %s\nslog: %s", fb.String(), sb.String())
			}
			if !ok && fb.Len() != 0 {
				t.Fatalf("WriteLine wrote a line it gave back: %q", fb.String())
			}
		})
	}
	var buf bytes.Buffer
	if WriteLine(context.Background(), NewLogger(&buf, "warn", "json", sc), now, slog.LevelInfo, "tunnel closed", tunnel) || buf.Len() != 0 {
		t.Errorf("a line below the logger's level was written: %q", buf.String())
	}
	if WriteLine(context.Background(), NewLogger(&buf, "info", "text", sc), now, slog.LevelInfo, "tunnel closed", tunnel) || buf.Len() != 0 {
		t.Errorf("the text logger's line was written as JSON: %q", buf.String())
	}
}
