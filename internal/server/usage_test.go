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
	// The writer holds one batch (its AppendUsage is stalled), full
	// batches wait up to usageBuffer, and one batch is being filled: the
	// batch after those is refused whole, the extra ones wait in the next.
	const extra = 7
	const total = usageBatch + usageBuffer + 2*usageBatch + extra
	for i := range total {
		u.record(&observe.Record{Start: start.Add(time.Duration(i)), Caller: "c", Integration: "i", Status: 200})
	}
	dropped := u.dropped.Load()
	if dropped < usageBatch {
		t.Fatalf("dropped = %d, want at least %d", dropped, usageBatch)
	}
	if dropped > total-usageBuffer {
		t.Fatalf("dropped = %d of %d: the buffer kept fewer than %d", dropped, total, usageBuffer)
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
	if int64(n)+dropped != total {
		t.Errorf("stored %d + dropped %d, want %d", n, dropped, total)
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
