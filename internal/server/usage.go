package server

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis-dev/portcullis/internal/observe"
	"github.com/portcullis-dev/portcullis/internal/store"
)

// usageWriter turns request records into usage records for `audit` and
// writes them in batches off the request path. When the store falls behind
// the buffer is bounded: records are dropped (and counted in the log)
// rather than slowing callers down.
//
// A request appends its record to the batch being filled, under a mutex;
// only a full batch is handed to the writing goroutine. A channel send per
// record would wake that goroutine for every request, and with one P that
// switch is paid on the request path.
type usageWriter struct {
	st  store.Usage
	log *slog.Logger

	mu      sync.Mutex
	filling []store.UsageRecord // at most usageBatch; nil until the first record

	full    chan []store.UsageRecord // batches waiting for the store
	free    chan []store.UsageRecord // stored batches, emptied for reuse
	dropped atomic.Int64             // records refused by a full buffer, not yet logged
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

const (
	// usageBatch records go to the store in one AppendUsage (one
	// transaction); a batch that is not full is written after a second.
	usageBatch = 500
	// usageBuffer is how many records wait in full batches while the
	// store is behind; beyond them whole batches are dropped. One batch
	// being written and one being filled come on top.
	usageBuffer = 10000
)

func newUsageWriter(st store.Usage, log *slog.Logger) *usageWriter {
	u := &usageWriter{
		st: st, log: log,
		full: make(chan []store.UsageRecord, usageBuffer/usageBatch),
		free: make(chan []store.UsageRecord, 2),
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	go u.loop()
	return u
}

func (u *usageWriter) record(r *observe.Record) {
	if r.Integration == "" || r.Caller == "" {
		return // refused before we knew who called what: nothing to audit
	}
	rec := store.UsageRecord{
		Time: r.Start, Caller: r.Caller, Integration: r.Integration, Route: r.Route, Method: r.Method,
		Status: r.Status, LatencyMS: float64(time.Since(r.Start).Microseconds()) / 1000,
		VendorFailed:      r.UpstreamStatus >= 500 || r.ErrorCode == "upstream_timeout" || r.ErrorCode == "upstream_unreachable",
		CredentialVersion: r.CredVersion, Scopes: r.Scopes,
	}
	u.mu.Lock()
	if u.filling == nil {
		u.filling = u.newBatch()
	}
	u.filling = append(u.filling, rec)
	var ready []store.UsageRecord
	if len(u.filling) >= usageBatch {
		ready, u.filling = u.filling, nil
	}
	u.mu.Unlock()
	if ready != nil {
		u.hand(ready)
	}
}

// newBatch returns an empty batch, reusing a stored one when there is one.
func (u *usageWriter) newBatch() []store.UsageRecord {
	select {
	case b := <-u.free:
		return b
	default:
		return make([]store.UsageRecord, 0, usageBatch)
	}
}

// hand gives a batch to the writing goroutine, or drops it when the
// buffer is full.
func (u *usageWriter) hand(b []store.UsageRecord) {
	select {
	case u.full <- b:
	default:
		u.dropped.Add(int64(len(b)))
		u.recycle(b)
	}
}

// recycle empties b (dropping its strings for the GC) and keeps it for
// reuse if the free list has room.
func (u *usageWriter) recycle(b []store.UsageRecord) {
	clear(b)
	select {
	case u.free <- b[:0]:
	default:
	}
}

// takeFilling returns the batch being filled and starts a new one.
func (u *usageWriter) takeFilling() []store.UsageRecord {
	u.mu.Lock()
	b := u.filling
	u.filling = nil
	u.mu.Unlock()
	return b
}

// logDropped logs the records the full buffer refused since the last call.
func (u *usageWriter) logDropped() {
	if n := u.dropped.Swap(0); n > 0 {
		u.log.Warn("usage records dropped: the store fell behind and the buffer was full", "records", n, "buffer", usageBuffer)
	}
}

func (u *usageWriter) loop() {
	defer close(u.done)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	write := func(b []store.UsageRecord) {
		u.logDropped()
		if len(b) == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := u.st.AppendUsage(ctx, b); err != nil {
			u.log.Warn("usage records not stored", "records", len(b), "cause", err)
		}
		cancel()
		u.recycle(b)
	}
	for {
		select {
		case <-u.stop:
			for {
				select {
				case b := <-u.full:
					write(b)
				default:
					write(u.takeFilling())
					return
				}
			}
		case b := <-u.full:
			write(b)
		case <-tick.C:
			write(u.takeFilling())
		}
	}
}

func (u *usageWriter) close() {
	// Nothing is closed to senders: a late request may still record, into
	// a batch nobody writes.
	u.once.Do(func() { close(u.stop) })
	<-u.done
}
