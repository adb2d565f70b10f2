// Package sla is the one computation of a vendor's SLA attainment from the
// gateway's usage records, shared by `portcullis audit` (per month) and
// the dashboard (month to date), so both report the same numbers for the
// same records.
//
// What counts: a usage record does not say whether the vendor was reached.
// Records answered 429 or 503 without a vendor failure are left out: they
// are the gateway's own refusals (rate limit, kill switch, open breaker,
// bulkhead, credential unavailable) or the vendor throttling, neither an
// outage nor a latency sample. Every other record is a call; it failed when
// the vendor answered 5xx, timed out or could not be reached
// (UsageRecord.VendorFailed).
//
// Uptime is the share of calls not failed, in percent (100 without calls).
// P99 is the nearest-rank 99th percentile of the calls' latencies (the
// whole call as the gateway measured it, retries included); a negative
// latency means unknown and is no sample. A target is met when uptime is at
// least the promised uptime and p99 at most the promised p99 latency.
//
// Months are UTC calendar months (MonthStart). The package never reads the
// time itself, and a Tally counts every record it is given: the caller
// picks the records of the window (audit by month, the dashboard by its
// scan of the month to date on its clock).
package sla

import (
	"maps"
	"math"
	"slices"
	"time"

	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/internal/store"
)

// MonthStart is the first instant (UTC) of t's month, back months earlier.
func MonthStart(t time.Time, back int) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month()-time.Month(back), 1, 0, 0, 0, 0, time.UTC)
}

// Target is what the vendor promised; zero fields promise nothing.
type Target struct {
	Uptime float64 // percent
	P99    time.Duration
}

// TargetOf is the target of a vendor.sla block (nil: none).
func TargetOf(s *config.SLA) Target {
	if s == nil {
		return Target{}
	}
	return Target{Uptime: s.Uptime, P99: s.P99Latency.D}
}

// Result is one window's attainment against a target.
type Result struct {
	Calls  int
	Failed int
	// Uptime is the share of calls not failed, in percent; 100 without calls.
	Uptime float64
	// P99MS is the nearest-rank 99th percentile latency in ms; 0 without samples.
	P99MS float64
	// TargetUptime and TargetP99MS are the target; zero when none.
	TargetUptime float64
	TargetP99MS  float64
	// UptimeMet and P99Met are true when kept or when no target was set.
	UptimeMet, P99Met bool
}

// Met reports whether both promises were kept.
func (r Result) Met() bool { return r.UptimeMet && r.P99Met }

// Counts reports whether r is a call for SLA purposes and whether it failed.
func Counts(r store.UsageRecord) (call, failed bool) {
	if !r.VendorFailed && (r.Status == 429 || r.Status == 503) {
		return false, false
	}
	return true, r.VendorFailed
}

// Tally accumulates records; the zero value is empty. Tallies of disjoint
// record sets merge into the tally of their union. Latencies are counted
// in buckets of four significant digits (634.21 ms counts as 634.3 ms), so a
// tally's memory is bounded (under 10,000 buckets per decade of latency)
// however many calls a month holds, and the p99 is exact to 0.01 %: the
// dashboard keeps one tally per integration for the month to date.
type Tally struct {
	Calls, Failed int
	samples       int
	buckets       map[float64]int // bucket's upper bound in ms → samples
}

// bucket is the upper bound, in four significant digits, of the bucket
// holding a latency of ms.
func bucket(ms float64) float64 {
	if ms <= 0 {
		return 0
	}
	// A whole number of units divided by a power of ten, so that 346.9
	// prints as 346.9, not 346.90000000000003.
	e := math.Floor(math.Log10(ms)) - 3
	if e < 0 {
		p := math.Pow(10, -e)
		return math.Ceil(ms*p) / p
	}
	p := math.Pow(10, e)
	return math.Ceil(ms/p) * p
}

// Add counts r (without looking at its time).
func (t *Tally) Add(r store.UsageRecord) {
	call, failed := Counts(r)
	if !call {
		return
	}
	t.Calls++
	if failed {
		t.Failed++
	}
	if r.LatencyMS >= 0 {
		t.addSamples(bucket(r.LatencyMS), 1)
	}
}

func (t *Tally) addSamples(b float64, n int) {
	if t.buckets == nil {
		t.buckets = map[float64]int{}
	}
	t.buckets[b] += n
	t.samples += n
}

// Merge adds o's counts and samples to t.
func (t *Tally) Merge(o *Tally) {
	t.Calls += o.Calls
	t.Failed += o.Failed
	for b, n := range o.buckets {
		t.addSamples(b, n)
	}
}

// Clone is an independent copy of t.
func (t *Tally) Clone() *Tally {
	return &Tally{Calls: t.Calls, Failed: t.Failed, samples: t.samples, buckets: maps.Clone(t.buckets)}
}

// Measure is t's uptime and p99 without a target (both met).
func (t *Tally) Measure() Result {
	r := Result{Calls: t.Calls, Failed: t.Failed, Uptime: 100, UptimeMet: true, P99MS: 0, P99Met: true}
	if t.Calls > 0 {
		r.Uptime = 100 * float64(t.Calls-t.Failed) / float64(t.Calls)
	}
	if t.samples > 0 {
		// Nearest rank: the smallest sample with at least 99 % of the
		// samples at or below it.
		rank, seen := max(int(math.Ceil(0.99*float64(t.samples))), 1), 0
		for _, b := range slices.Sorted(maps.Keys(t.buckets)) {
			if seen += t.buckets[b]; seen >= rank {
				r.P99MS = b
				break
			}
		}
	}
	return r
}

// Against is r judged against target (its previous target dropped).
func (r Result) Against(target Target) Result {
	r.TargetUptime, r.TargetP99MS, r.UptimeMet, r.P99Met = 0, 0, true, true
	if target.Uptime > 0 {
		r.TargetUptime = target.Uptime
		r.UptimeMet = r.Uptime >= target.Uptime
	}
	if target.P99 > 0 {
		r.TargetP99MS = float64(target.P99) / float64(time.Millisecond)
		r.P99Met = r.P99MS <= r.TargetP99MS
	}
	return r
}

// Result is Measure judged against target.
func (t *Tally) Result(target Target) Result { return t.Measure().Against(target) }
