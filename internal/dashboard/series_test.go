package dashboard

import (
	"math"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/portcullis-dev/portcullis/internal/clock"
	"github.com/portcullis-dev/portcullis/internal/observe"
)

// t0 is 02:00:00 UTC, the start of a bucket.
var t0 = time.Date(2026, 7, 14, 2, 0, 0, 0, time.UTC)

func TestLatencyBins(t *testing.T) {
	tests := []struct {
		name string
		d    time.Duration
		want int
	}{
		{"zero", 0, 0},
		{"sub-millisecond", 300 * time.Microsecond, 0},
		{"one-millisecond", time.Millisecond, 0},
		{"just-over-one", 1100 * time.Microsecond, 1},
		{"exact-bound", time.Duration(latBound(10) * float64(time.Millisecond)), 10},
		{"huge", time.Hour, latBins - 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := latBin(tt.d); got != tt.want {
				t.Errorf("latBin(%v) = %d, want %d", tt.d, got, tt.want)
			}
		})
	}
}

func TestQuantileAccuracy(t *testing.T) {
	// 1..1000 ms uniformly: p50 ≈ 500, p99 ≈ 990. A log histogram with
	// 20 % bins and interpolation should land within 5 %.
	var h histogram
	for ms := 1; ms <= 1000; ms++ {
		h[latBin(time.Duration(ms)*time.Millisecond)]++
	}
	for _, tt := range []struct {
		q, want float64
	}{{0.5, 500}, {0.9, 900}, {0.99, 990}} {
		got := h.quantile(tt.q)
		if math.Abs(got-tt.want)/tt.want > 0.05 {
			t.Errorf("q%.2f = %.1f ms, want %.0f ± 5%%", tt.q, got, tt.want)
		}
	}
	var empty histogram
	if got := empty.quantile(0.99); got != 0 {
		t.Errorf("empty histogram p99 = %v, want 0", got)
	}
}

func TestSeriesWindow(t *testing.T) {
	clk := clock.NewFake(t0)
	s := NewSeries(clk)
	recs := []observe.Record{
		{Integration: "payments", Status: 200, Attempts: 1, UpstreamLatency: 40 * time.Millisecond},
		{Integration: "payments", Status: 200, Attempts: 1, UpstreamLatency: 60 * time.Millisecond},
		{Integration: "payments", Status: 404, Attempts: 1, UpstreamLatency: 30 * time.Millisecond},
		{Integration: "payments", Status: 502, Attempts: 3, UpstreamLatency: 900 * time.Millisecond},
		{Integration: "payments", Status: 503, ErrorCode: "circuit_open"},
		{Integration: "payments", Status: 200, Fallback: "stale", ErrorCode: ""},
		{Integration: "", Status: 404, ErrorCode: "unknown_integration"},
		{Integration: "maps", Status: 200, Attempts: 1, UpstreamLatency: time.Millisecond},
	}
	for i := range recs {
		s.Observe(&recs[i])
	}
	clk.Advance(15 * time.Second)
	got := s.Snapshot("payments").Minute
	want := Window{
		Seconds: 45, Requests: 6, RPS: round2(6.0 / 45), Rate4xx: round4(1.0 / 6), Rate5xx: round4(2.0 / 6),
		Fallback: 1, Refused: 1, Errors4xx: 1, Errors5xx: 2, VendorCalls: 4,
	}
	got.P50MS, got.P99MS = 0, 0 // checked below
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("last minute (-want +got):\n%s", d)
	}
	w := s.Snapshot("payments").Minute
	// Four vendor calls: 30, 40, 60, 900 ms. Each estimate lies in the
	// histogram bin of the true value (bins are 20 % wide).
	if w.P50MS < 33 || w.P50MS > 60 || w.P99MS < 853 || w.P99MS > 1025 {
		t.Errorf("p50 %.1f ms, p99 %.1f ms; want about 40 and 900", w.P50MS, w.P99MS)
	}
	if n := s.Snapshot("never-seen").Minute.Requests; n != 0 {
		t.Errorf("unknown integration has %d requests", n)
	}
}

func TestSeriesAgesOut(t *testing.T) {
	clk := clock.NewFake(t0)
	s := NewSeries(clk)
	rec := &observe.Record{Integration: "payments", Status: 500, Attempts: 1, UpstreamLatency: time.Millisecond}
	s.Observe(rec)
	steps := []struct {
		name       string
		advance    time.Duration
		wantMinute uint64
		wantHour   uint32
	}{
		{"now", 0, 1, 1},
		{"after-45s", 45 * time.Second, 1, 1},
		{"after-61s", 16 * time.Second, 0, 1},
		{"after-59m", 58 * time.Minute, 0, 1},
		{"after-61m", 2 * time.Minute, 0, 0},
	}
	for _, st := range steps {
		clk.Advance(st.advance)
		snap := s.Snapshot("payments")
		var hour uint32
		for _, n := range snap.Sparks.C5xx {
			hour += n
		}
		if snap.Minute.Errors5xx != st.wantMinute || hour != st.wantHour {
			t.Errorf("%s: minute 5xx %d (want %d), hour 5xx %d (want %d)", st.name, snap.Minute.Errors5xx, st.wantMinute, hour, st.wantHour)
		}
	}
	// A slot reused after an hour starts from zero.
	s.Observe(rec)
	if n := s.Snapshot("payments").Minute.Errors5xx; n != 1 {
		t.Errorf("reused slot: %d 5xx, want 1", n)
	}
}

func TestSeriesSparksOrder(t *testing.T) {
	clk := clock.NewFake(t0)
	s := NewSeries(clk)
	for i := range 3 {
		for range i + 1 {
			s.Observe(&observe.Record{Integration: "maps", Status: 200, Attempts: 1})
		}
		clk.Advance(BucketWidth)
	}
	sp := s.Snapshot("maps").Sparks
	if len(sp.Requests) != Buckets {
		t.Fatalf("%d buckets, want %d", len(sp.Requests), Buckets)
	}
	// Oldest first; the last bucket is the current (empty) one.
	if d := cmp.Diff([]uint32{1, 2, 3, 0}, sp.Requests[Buckets-4:]); d != "" {
		t.Errorf("last buckets (-want +got):\n%s", d)
	}
}

func TestObserveDoesNotAllocate(t *testing.T) {
	s := NewSeries(nil)
	rec := &observe.Record{Integration: "payments", Status: 200, Attempts: 1, UpstreamLatency: 12 * time.Millisecond}
	s.Observe(rec)
	if n := testing.AllocsPerRun(1000, func() { s.Observe(rec) }); n != 0 {
		t.Errorf("Observe allocates %.1f times per call", n)
	}
}

func TestSeriesConcurrent(t *testing.T) {
	s := NewSeries(nil)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := []string{"a", "b"}[g%2]
			for range 1000 {
				s.Observe(&observe.Record{Integration: name, Status: 200, Attempts: 1})
				if g == 0 {
					_ = s.Snapshot("a")
				}
			}
		}()
	}
	wg.Wait()
	// Near a bucket edge the first minute may not hold everything; the
	// hour always does.
	var total uint32
	for _, name := range []string{"a", "b"} {
		for _, n := range s.Snapshot(name).Sparks.Requests {
			total += n
		}
	}
	if total != 8000 {
		t.Errorf("%d requests counted, want 8000", total)
	}
}

func BenchmarkObserve(b *testing.B) {
	s := NewSeries(nil)
	rec := &observe.Record{Integration: "payments", Status: 200, Attempts: 1, UpstreamLatency: 12 * time.Millisecond}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.Observe(rec)
		}
	})
}
