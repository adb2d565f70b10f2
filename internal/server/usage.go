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
type usageWriter struct {
	st      store.Usage
	log     *slog.Logger
	ch      chan store.UsageRecord
	dropped atomic.Int64 // records refused by a full buffer, not yet logged
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

const usageBuffer = 10000

func newUsageWriter(st store.Usage, log *slog.Logger) *usageWriter {
	u := &usageWriter{st: st, log: log, ch: make(chan store.UsageRecord, usageBuffer), stop: make(chan struct{}), done: make(chan struct{})}
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
	select {
	case u.ch <- rec:
	default:
		u.dropped.Add(1)
	}
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
	var batch []store.UsageRecord
	flush := func() {
		u.logDropped()
		if len(batch) == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := u.st.AppendUsage(ctx, batch); err != nil {
			u.log.Warn("usage records not stored", "records", len(batch), "cause", err)
		}
		cancel()
		batch = batch[:0]
	}
	for {
		select {
		case <-u.stop:
			for {
				select {
				case r := <-u.ch:
					batch = append(batch, r)
				default:
					flush()
					return
				}
			}
		case r := <-u.ch:
			batch = append(batch, r)
			if len(batch) >= 500 {
				flush()
			}
		case <-tick.C:
			flush()
		}
	}
}

func (u *usageWriter) close() {
	// The channel is never closed: a late request may still record.
	u.once.Do(func() { close(u.stop) })
	<-u.done
}
