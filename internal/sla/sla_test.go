package sla

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/internal/store"
)

var july = time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)

func call(at time.Time, status int, failed bool, ms float64) store.UsageRecord {
	return store.UsageRecord{Time: at, Integration: "payments", Status: status, VendorFailed: failed, LatencyMS: ms}
}

// calls is n records at july+offset, each with latency ms.
func calls(n, status int, failed bool, ms float64) []store.UsageRecord {
	out := make([]store.UsageRecord, n)
	for i := range out {
		out[i] = call(july.Add(time.Duration(i)*time.Minute), status, failed, ms)
	}
	return out
}

func cat(rs ...[]store.UsageRecord) []store.UsageRecord {
	var out []store.UsageRecord
	for _, r := range rs {
		out = append(out, r...)
	}
	return out
}

// measure is the Result of recs, all counted, against target.
func measure(recs []store.UsageRecord, target Target) Result {
	var t Tally
	for _, r := range recs {
		t.Add(r)
	}
	return t.Result(target)
}

func TestMeasure(t *testing.T) {
	target := Target{Uptime: 99, P99: 800 * time.Millisecond}
	tests := []struct {
		name   string
		recs   []store.UsageRecord
		target Target
		want   Result
	}{
		{
			name: "no-calls", target: target,
			want: Result{Uptime: 100, TargetUptime: 99, TargetP99MS: 800, UptimeMet: true, P99Met: true},
		},
		{
			name: "no-target", recs: calls(10, 200, false, 100),
			want: Result{Calls: 10, Uptime: 100, P99MS: 100, UptimeMet: true, P99Met: true},
		},
		{
			// 985 good at 100 ms, 15 failures at 2 s: the 990th sample is a failure.
			name: "uptime-missed-p99-missed", recs: cat(calls(985, 200, false, 100), calls(15, 502, true, 2000)), target: target,
			want: Result{Calls: 1000, Failed: 15, Uptime: 98.5, P99MS: 2000, TargetUptime: 99, TargetP99MS: 800},
		},
		{
			name: "exactly-at-target-is-met", recs: cat(calls(99, 200, false, 800), calls(1, 504, true, 900)), target: target,
			want: Result{Calls: 100, Failed: 1, Uptime: 99, P99MS: 800, TargetUptime: 99, TargetP99MS: 800, UptimeMet: true, P99Met: true},
		},
		{
			// The gateway's own 429/503 refusals are neither calls nor samples.
			name: "gateway-refusals-left-out", recs: cat(calls(10, 200, false, 50), calls(50, 503, false, 0), calls(50, 429, false, 0)), target: target,
			want: Result{Calls: 10, Uptime: 100, P99MS: 50, TargetUptime: 99, TargetP99MS: 800, UptimeMet: true, P99Met: true},
		},
		{
			// A 503 the vendor answered (VendorFailed) is a failure.
			name: "vendor-503-is-failure", recs: cat(calls(3, 200, false, 50), calls(1, 503, true, 60)),
			want: Result{Calls: 4, Failed: 1, Uptime: 75, P99MS: 60, UptimeMet: true, P99Met: true},
		},
		{
			// A vendor 4xx other than 429 is an answer, not an outage.
			name: "vendor-4xx-is-success", recs: calls(4, 404, false, 20),
			want: Result{Calls: 4, Uptime: 100, P99MS: 20, UptimeMet: true, P99Met: true},
		},
		{
			name: "unknown-latency-no-sample", recs: cat(calls(2, 200, false, 30), calls(2, 200, false, -1)),
			want: Result{Calls: 4, Uptime: 100, P99MS: 30, UptimeMet: true, P99Met: true},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if d := cmp.Diff(tc.want, measure(tc.recs, tc.target)); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestP99NearestRank(t *testing.T) {
	seq := func(n int) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = float64(n - i) // descending: Measure must sort
		}
		return v
	}
	tests := []struct {
		name string
		in   []float64
		want float64
	}{
		{"empty", nil, 0},
		{"one", []float64{7}, 7},
		{"hundred", seq(100), 99},
		{"hundred-one", seq(101), 100},
		{"thousand", seq(1000), 990},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var tl Tally
			for _, ms := range tc.in {
				tl.Add(store.UsageRecord{Status: 200, LatencyMS: ms})
			}
			if got := tl.Measure().P99MS; got != tc.want {
				t.Errorf("p99 = %v, want %v", got, tc.want)
			}
		})
	}
}

// Latencies count in buckets of four significant digits: the p99 is the
// bucket's upper bound, never below the exact value and at most 0.1 %
// above it, and a month of calls keeps a bounded number of buckets.
func TestP99Buckets(t *testing.T) {
	for _, tc := range []struct{ in, want float64 }{
		{634.21, 634.3}, {346.86, 346.9}, {1184.2, 1185}, {7290.6, 7291}, {97.7516, 97.76}, {0.5, 0.5}, {12345.6, 12350},
	} {
		var tl Tally
		tl.Add(store.UsageRecord{Status: 200, LatencyMS: tc.in})
		if got := tl.Measure().P99MS; got != tc.want {
			t.Errorf("p99 of one %v ms call = %v, want %v", tc.in, got, tc.want)
		}
	}
	var tl Tally
	for i := range 200_000 {
		tl.Add(store.UsageRecord{Status: 200, LatencyMS: float64(i%60_000) + 0.123})
	}
	if n := len(tl.buckets); n > 20_000 {
		t.Errorf("200,000 calls of 0–60 s kept %d buckets, want a bounded number (< 20,000)", n)
	}
}

func TestMergeEqualsWhole(t *testing.T) {
	recs := cat(calls(500, 200, false, 120), calls(7, 500, true, 3000), calls(20, 429, false, 0), calls(300, 200, false, 40))
	var whole, a, b Tally
	for i, r := range recs {
		whole.Add(r)
		if i%3 == 0 {
			a.Add(r)
		} else {
			b.Add(r)
		}
	}
	c := a.Clone()
	c.Merge(&b)
	if d := cmp.Diff(whole.Measure(), c.Measure()); d != "" {
		t.Errorf("merged halves differ from the whole (-whole +merged):\n%s", d)
	}
	if a.Calls+b.Calls != c.Calls || a.Calls == c.Calls {
		t.Errorf("Clone shares state: a %d + b %d, merged %d", a.Calls, b.Calls, c.Calls)
	}
}

func TestAgainstReplacesTarget(t *testing.T) {
	r := measure(calls(10, 200, false, 900), Target{Uptime: 99.9, P99: time.Second})
	if !r.Met() {
		t.Fatalf("%+v: want met", r)
	}
	r = r.Against(TargetOf(&config.SLA{P99Latency: config.Duration{D: 800 * time.Millisecond}}))
	want := Result{Calls: 10, Uptime: 100, P99MS: 900, TargetP99MS: 800, UptimeMet: true}
	if d := cmp.Diff(want, r); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	if got := TargetOf(nil); got != (Target{}) {
		t.Errorf("TargetOf(nil) = %+v", got)
	}
}

func TestMonthStart(t *testing.T) {
	at := time.Date(2026, 3, 31, 23, 30, 0, 0, time.FixedZone("", -2*3600)) // 1 April 01:30 UTC
	if got, want := MonthStart(at, 0), time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("MonthStart = %v, want %v (UTC months)", got, want)
	}
	if got, want := MonthStart(time.Date(2026, 2, 10, 0, 0, 0, 0, time.UTC), 2), time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("MonthStart back 2 = %v, want %v", got, want)
	}
}
