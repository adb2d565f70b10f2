package server

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/observe"
	"github.com/portcullis-dev/portcullis/internal/store"
)

// stalledUsage is a store whose AppendUsage waits until released: a disk
// that has fallen behind.
type stalledUsage struct {
	*store.Memory
	release chan struct{}
}

func (s *stalledUsage) AppendUsage(ctx context.Context, recs []store.UsageRecord) error {
	<-s.release
	return s.Memory.AppendUsage(ctx, recs)
}

// TestUsageWriterCountsDrops: records the full buffer refuses are counted
// in the log, and every other record reaches the store.
func TestUsageWriterCountsDrops(t *testing.T) {
	st := &stalledUsage{Memory: store.NewMemory(nil), release: make(chan struct{})}
	var logBuf bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewJSONHandler(&lockedBuf{b: &logBuf, mu: &mu}, nil))
	u := newUsageWriter(st, log)
	start := time.Now()
	const extra = 7
	for i := range usageBuffer + 500 + extra + 1 {
		u.record(&observe.Record{Start: start.Add(time.Duration(i)), Caller: "c", Integration: "i", Status: 200})
	}
	// The writer holds one batch of 500 (its AppendUsage is stalled) and the
	// channel holds usageBuffer, so at least extra records were refused.
	dropped := u.dropped.Load()
	if dropped < extra {
		t.Fatalf("dropped = %d, want at least %d", dropped, extra)
	}
	close(st.release)
	u.close()
	n := 0
	if err := st.ScanUsage(context.Background(), start.Add(-time.Second), start.Add(time.Hour), func(store.UsageRecord) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	out := logBuf.String()
	mu.Unlock()
	if int64(n)+dropped != usageBuffer+500+extra+1 {
		t.Errorf("stored %d + dropped %d, want %d", n, dropped, usageBuffer+500+extra+1)
	}
	if !strings.Contains(out, `"msg":"usage records dropped`) || !strings.Contains(out, `"records":`) {
		t.Errorf("drops not logged: %s", out)
	}
}

type lockedBuf struct {
	b  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
