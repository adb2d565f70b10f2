package main

import (
	"cmp"
	"slices"
	"time"
)

// Result is one run, written as one JSON line for `loadgen report`.
type Result struct {
	Name  string `json:"name"`
	Phase string `json:"phase"`
	Round int    `json:"round"`
	// Mode is closed (N connections back to back) or open (fixed rate).
	Mode       string  `json:"mode"`
	Conns      int     `json:"conns"`
	TargetRate float64 `json:"target_rate,omitempty"`
	Seconds    float64 `json:"seconds"`
	// Requests counts the calls that started (closed) or were due (open)
	// inside the measured window, failed ones included.
	Requests int64 `json:"requests"`
	Errors   int64 `json:"errors"`
	// DialErrors counts connections that could not be opened before the
	// clock started (they are retried, and then count in Errors).
	DialErrors int          `json:"dial_errors"`
	TopErrors  []ErrorCount `json:"top_errors,omitempty"`
	RPS        float64      `json:"rps"`
	// Latency percentiles of the successful calls, in milliseconds
	// (nearest rank).
	P50MS float64 `json:"p50_ms"`
	P90MS float64 `json:"p90_ms"`
	P99MS float64 `json:"p99_ms"`
	MaxMS float64 `json:"max_ms"`
	// Samples is how many latencies the percentiles are over; fewer than
	// the successful requests when -max-samples capped them.
	Samples int         `json:"samples"`
	Procs   []ProcUsage `json:"procs"`
}

// ErrorCount is one kind of failure and how often it happened.
type ErrorCount struct {
	Error string `json:"error"`
	Count int    `json:"count"`
}

func summarizeRun(p plan, workers []*worker, dialErrs int, procs []ProcUsage) *Result {
	r := &Result{Name: p.name, Phase: p.phase, Mode: "closed", Conns: p.conns, Seconds: p.duration.Seconds(),
		DialErrors: dialErrs, Procs: procs}
	if p.rate > 0 {
		r.Mode, r.TargetRate = "open", p.rate
	}
	var all []time.Duration
	kinds := map[string]int{}
	for _, w := range workers {
		r.Requests += w.count
		r.Errors += w.errs
		all = append(all, w.lat...)
		for k, n := range w.errKinds {
			kinds[k] += n
		}
	}
	for k, n := range kinds {
		r.TopErrors = append(r.TopErrors, ErrorCount{Error: k, Count: n})
	}
	slices.SortFunc(r.TopErrors, func(a, b ErrorCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Error, b.Error))
	})
	if len(r.TopErrors) > 3 {
		r.TopErrors = r.TopErrors[:3]
	}
	if r.Seconds > 0 {
		r.RPS = float64(r.Requests-r.Errors) / r.Seconds
	}
	slices.Sort(all)
	r.Samples = len(all)
	r.P50MS = millis(percentile(all, 50))
	r.P90MS = millis(percentile(all, 90))
	r.P99MS = millis(percentile(all, 99))
	if len(all) > 0 {
		r.MaxMS = millis(all[len(all)-1])
	}
	return r
}

// percentile is the nearest-rank percentile of sorted samples: the smallest
// value with at least q% of the samples at or below it. Zero when empty.
func percentile(sorted []time.Duration, q float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(q / 100 * float64(n))
	if float64(rank) < q/100*float64(n) {
		rank++
	}
	rank = max(rank, 1)
	return sorted[min(rank, n)-1]
}

func millis(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }
