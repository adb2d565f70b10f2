package dashboard

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/portcullis-dev/portcullis/internal/clock"
	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/internal/store"
)

func usage(at time.Time, name string, status int, failed bool, ms float64) store.UsageRecord {
	return store.UsageRecord{Time: at, Caller: "billing", Integration: name, Status: status, VendorFailed: failed, LatencyMS: ms}
}

func TestSLAMonthToDate(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 7, 14, 12, 0, 0, 0, time.UTC))
	st := store.NewMemory(clk)
	month := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	var recs []store.UsageRecord
	// Last month: must not count.
	recs = append(recs, usage(month.Add(-time.Hour), "payments", 500, true, 5000))
	// 985 good calls at 100 ms, 15 vendor failures at 2 s.
	for i := range 985 {
		recs = append(recs, usage(month.Add(time.Duration(i)*time.Minute), "payments", 200, false, 100))
	}
	for i := range 15 {
		recs = append(recs, usage(month.Add(time.Duration(i)*time.Hour), "payments", 502, true, 2000))
	}
	// Gateway refusals and vendor throttling: neither calls nor failures.
	recs = append(recs,
		usage(month.Add(time.Hour), "payments", 503, false, 1),
		usage(month.Add(time.Hour), "payments", 429, false, 1))
	if err := st.AppendUsage(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	tr := newSLATracker(st, clk)
	if err := tr.refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		sla  *config.SLA
		want SLAStatus
	}{
		{
			name: "met-uptime-missed-p99",
			sla:  &config.SLA{Uptime: 98, P99Latency: config.Duration{D: 800 * time.Millisecond}},
			want: SLAStatus{Since: month, Calls: 1000, Failed: 15, Availability: 98.5, TargetUptime: 98, TargetP99MS: 800,
				UptimeMet: ptr(true), P99Met: ptr(false)},
		},
		{
			name: "missed-uptime",
			sla:  &config.SLA{Uptime: 99.9},
			want: SLAStatus{Since: month, Calls: 1000, Failed: 15, Availability: 98.5, TargetUptime: 99.9, UptimeMet: ptr(false)},
		},
		{
			name: "no-sla",
			want: SLAStatus{Since: month, Calls: 1000, Failed: 15, Availability: 98.5},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tr.status("payments", tt.sla)
			// The 990th of 1000 sorted latencies (nearest rank) is a 2 s failure.
			tt.want.P99MS = 2000
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
	if got := tr.status("maps", nil); got.Calls != 0 || got.Availability != 100 {
		t.Errorf("integration without calls: %+v, want 0 calls at 100%%", got)
	}
}

func TestSLAIncremental(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 7, 14, 12, 0, 0, 0, time.UTC))
	st := store.NewMemory(clk)
	ctx := context.Background()
	tr := newSLATracker(st, clk)
	add := func(at time.Time, n int, failed bool) {
		t.Helper()
		recs := make([]store.UsageRecord, n)
		for i := range recs {
			recs[i] = usage(at, "payments", 200, failed, 50)
			if failed {
				recs[i].Status = 503
			}
		}
		if err := st.AppendUsage(ctx, recs); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		name       string
		do         func()
		wantCalls  uint64
		wantFailed uint64
	}{
		{"first-scan", func() { add(clk.Now().Add(-time.Hour), 10, false) }, 10, 0},
		{"rescan-same-data-no-double-count", func() {}, 10, 0},
		// A record stamped 30 s ago arrives late (usage is written in
		// batches): it lies in the re-scanned tail, so it is counted once.
		{"late-record-in-tail", func() { add(clk.Now().Add(-30*time.Second), 1, true) }, 11, 1},
		{"tail-settles", func() { clk.Advance(5 * time.Minute) }, 11, 1},
		{"new-records", func() { add(clk.Now(), 5, false) }, 16, 1},
		{"month-turns", func() {
			clk.Advance(18 * 24 * time.Hour) // 1 August
			add(clk.Now().Add(-time.Minute), 2, false)
		}, 2, 0},
	}
	for _, s := range steps {
		s.do()
		if err := tr.refresh(ctx); err != nil {
			t.Fatal(err)
		}
		got := tr.status("payments", nil)
		if got.Calls != s.wantCalls || got.Failed != s.wantFailed {
			t.Errorf("%s: %d calls, %d failed; want %d, %d", s.name, got.Calls, got.Failed, s.wantCalls, s.wantFailed)
		}
	}
}

// failingUsage is a store whose scans fail.
type failingUsage struct{ store.Usage }

var errScan = errors.New("disk on fire")

func (failingUsage) ScanUsage(context.Context, time.Time, time.Time, func(store.UsageRecord) error) error {
	return errScan
}

func TestSLAScanErrorKeepsLastResult(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 7, 14, 12, 0, 0, 0, time.UTC))
	tr := newSLATracker(failingUsage{}, clk)
	if err := tr.refresh(context.Background()); !errors.Is(err, errScan) {
		t.Fatalf("refresh error = %v, want wrapping %v", err, errScan)
	}
	if got := tr.status("payments", nil); got.Calls != 0 {
		t.Errorf("after a failed scan: %+v", got)
	}
}

func ptr[T any](v T) *T { return &v }
