package store_test

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/store"
)

// BenchmarkAppendUsageStall appends batches of 500 usage records (the
// usage writer's batch) with GOMAXPROCS=1 while a probe goroutine wakes
// every 200µs, and reports how late the probe woke at worst: how long one
// batch held the only P, which a queued request would wait behind.
func BenchmarkAppendUsageStall(b *testing.B) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	e, err := store.OpenEmbedded(b.TempDir(), store.EmbeddedOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	batch := make([]store.UsageRecord, 500)
	now := time.Now()
	for i := range batch {
		batch[i] = store.UsageRecord{Time: now.Add(time.Duration(i) * time.Microsecond), Caller: "bench", Integration: "vendor",
			Route: "GET /v1/items/{id}", Method: "GET", Status: 200, LatencyMS: 0.734, CredentialVersion: "v1", Scopes: []string{"read"}}
	}
	var worst atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		const tick = 200 * time.Microsecond
		for {
			select {
			case <-stop:
				return
			default:
			}
			t0 := time.Now()
			time.Sleep(tick)
			if late := time.Since(t0) - tick; late > time.Duration(worst.Load()) {
				worst.Store(int64(late))
			}
		}
	}()
	for b.Loop() {
		for i := range batch {
			batch[i].Time = batch[i].Time.Add(time.Second)
		}
		if err := e.AppendUsage(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	close(stop)
	<-done
	b.ReportMetric(float64(worst.Load())/1e3, "max-stall-µs")
}
