package store_test

import (
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/store"
)

// usageBatch is one batch of the server's usage writer: 500 records of one
// second, shaped like the bench's calls.
func usageBatch(start time.Time, n int) []store.UsageRecord {
	recs := make([]store.UsageRecord, n)
	for i := range recs {
		recs[i] = store.UsageRecord{
			Time: start.Add(time.Duration(i) * 127 * time.Microsecond), Caller: "bench", Integration: "vendor",
			Route: "/v1/items/{id}", Method: "GET", Status: 200, LatencyMS: 0.412, CredentialVersion: "env:BENCH_VENDOR_KEY@1",
		}
	}
	return recs
}

// BenchmarkAppendUsage is one flush of the usage writer (500 records, one
// fsync'd transaction) into a file that already holds 0 or 500k records:
// the cost of a commit must not grow with the file.
func BenchmarkAppendUsage(b *testing.B) {
	for _, existing := range []int{0, 500_000} {
		b.Run(fmt.Sprintf("existing=%d", existing), func(b *testing.B) {
			e, err := store.OpenEmbedded(b.TempDir(), store.EmbeddedOptions{SweepInterval: -1})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = e.Close() })
			t := time.Now().Add(-time.Hour)
			for n := 0; n < existing; n += 50_000 {
				if err := e.AppendUsage(bg, usageBatch(t, 50_000)); err != nil {
					b.Fatal(err)
				}
				t = t.Add(10 * time.Second)
			}
			batches := make([][]store.UsageRecord, 64)
			for i := range batches {
				batches[i] = usageBatch(t, 500)
				t = t.Add(time.Second)
			}
			i := 0
			cpu0 := cpuTime()
			for b.Loop() {
				if err := e.AppendUsage(bg, batches[i%len(batches)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.StopTimer()
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(i), "cpu-ns/op")
			if fi, err := os.Stat(e.Path()); err == nil {
				b.ReportMetric(float64(fi.Size())/float64(existing+500*i), "filebytes/rec")
			}
		})
	}
}

// cpuTime is the process's user and system CPU time: AppendUsage's wall time
// is mostly the wait for fdatasync, while what it takes from the request
// path on a shared core is CPU.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
