package observe

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/secret"
)

func TestLoggerScrubsKnownSecrets(t *testing.T) {
	const canary = "sk_live_CANARY_9f8e7d6c5b"
	sc := secret.NewScrubber()
	sc.Add(secret.New(canary))
	var buf bytes.Buffer
	log := NewLogger(&buf, "debug", "json", sc)
	log.Info("vendor said "+canary, "cause", errors.New("401: key "+canary+" revoked"),
		"url", "https://x.example/?key="+canary, slog.Group("g", "inner", canary), "list", []string{canary},
		"n", 3, "ok", true)
	log.With("attr", canary).Warn("with")
	out := buf.String()
	if strings.Contains(out, canary) {
		t.Fatalf("secret leaked into the log:\n%s", out)
	}
	if strings.Count(out, secret.Redacted) < 6 {
		t.Errorf("expected every occurrence replaced:\n%s", out)
	}
	buf.Reset()
	log.Info("clean", "route", "/v1/charges/{id}", "status", 200)
	if !strings.Contains(buf.String(), `"route":"/v1/charges/{id}"`) {
		t.Errorf("clean record altered: %s", buf.String())
	}
}

func BenchmarkRequestLogLine(b *testing.B) {
	sc := secret.NewScrubber()
	sc.Add(secret.New("sk_live_abcdefghijklmnop"), secret.New("another_secret_value_123"))
	log := NewLogger(discard{}, "info", "json", sc)
	r := &Record{RequestID: "abc", Integration: "payments", Caller: "billing", Method: "GET", Route: "/v1/charges/{id}", Status: 200}
	b.ReportAllocs()
	for b.Loop() {
		r.Log(b.Context(), log)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func TestBufferedWriterFlushes(t *testing.T) {
	var mu syncBuf
	w := NewBufferedWriter(&mu, 20*time.Millisecond)
	w.Write([]byte("line 1\n"))
	deadline := time.Now().Add(2 * time.Second)
	for mu.String() != "line 1\n" && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if mu.String() != "line 1\n" {
		t.Fatalf("periodic flush did not happen: %q", mu.String())
	}
	w.Write([]byte("line 2\n"))
	w.Close()
	if mu.String() != "line 1\nline 2\n" {
		t.Errorf("Close did not flush: %q", mu.String())
	}
}

type syncBuf struct {
	sync.Mutex
	b bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.Lock(); defer s.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.Lock(); defer s.Unlock(); return s.b.String() }

// benchRecord is a record shaped like the bench's calls: a vendor answer,
// a credential version, no error.
func benchRecord() *Record {
	return &Record{Start: time.Now(), RequestID: "01JEXAMPLE7Q3ZKJ8N4W2V5R6T", Integration: "vendor", Caller: "bench", Auth: "token",
		Method: "GET", Route: "/v1/items/{id}", Status: 200, UpstreamStatus: 200, UpstreamLatency: 412 * time.Microsecond,
		Attempts: 1, BytesOut: 245, CredVersion: "env:BENCH_VENDOR_KEY@1"}
}

// BenchmarkRecordLog is one request line of a bench-shaped call through the
// server's logger (JSON, scrubbing two secrets) into a discarding writer.
func BenchmarkRecordLog(b *testing.B) {
	sc := secret.NewScrubber()
	sc.Add(secret.New("sk_live_abcdefghijklmnop"), secret.New("another_secret_value_123"))
	log := NewLogger(discard{}, "info", "json", sc)
	r := benchRecord()
	b.ReportAllocs()
	for b.Loop() {
		r.Log(b.Context(), log)
	}
}
