package main

import (
	"fmt"
	"io"
)

// Issue 16's targets for the request path (rows 1–3 of its table; row 4,
// allocations per request, comes from `go test -bench RequestPath`, and
// run.sh prints it after this report).
const (
	targetBareRatio16  = 0.95
	targetAddedP99MS16 = 1.0
	targetRSSOverBare  = 1.05
)

// writeTargets16 prints issue 16's rows 1–3 as measured in this run.
func writeTargets16(w io.Writer, peaks, half map[string]summary, conc []*Result) {
	fmt.Fprintln(w, "\nTargets (issue 16, request path), from this run:")
	pc, bare := medianRPS(peaks, namePortcullis), medianRPS(peaks, nameBare)
	if pc > 0 && bare > 0 {
		r := pc / bare
		fmt.Fprintf(w, "  %-44s %.2f (%s per core)  (target ≥ %.2f)  %s\n", "peak req/s, portcullis ÷ bare-go",
			r, ratioCell(perCoreOf(peaks, namePortcullis), perCoreOf(peaks, nameBare)), targetBareRatio16, verdict(r >= targetBareRatio16))
	}
	p, okP := half[namePortcullis]
	d, okD := half[nameDirect]
	if okP && okD {
		added := p.median.P99MS - d.median.P99MS
		fmt.Fprintf(w, "  %-44s %.2f ms (p50 %.2f, p90 %.2f, p99 %.2f vs direct %.2f)  (target ≤ %.0f ms)  %s\n",
			"p99 added over direct at half peak", added, p.median.P50MS, p.median.P90MS, p.median.P99MS, d.median.P99MS,
			targetAddedP99MS16, verdict(added <= targetAddedP99MS16))
		if b, ok := half[nameBare]; ok {
			// Not a target: what the bare proxy adds at the same rate,
			// the floor a Go proxy on this machine starts from.
			fmt.Fprintf(w, "  %-44s %.2f ms (p99 %.2f), for reference\n", "  bare-go's p99 over direct at that rate", b.median.P99MS-d.median.P99MS, b.median.P99MS)
		}
	}
	var pcRun, bareRun *Result
	for _, r := range conc {
		switch r.Name {
		case namePortcullis:
			pcRun = r
		case nameBare:
			bareRun = r
		}
	}
	if pcRun == nil {
		return
	}
	ps, _ := proc(pcRun, "server")
	line := fmt.Sprintf("%d in-flight 1 s calls: peak RSS", pcRun.Conns)
	errs := pcRun.Errors + int64(pcRun.DialErrors)
	if bareRun == nil {
		fmt.Fprintf(w, "  %-44s %.1f MB, %s MB per 1,000 calls, errors %d  (no bare-go run to compare)\n",
			line, mb(ps.PeakRSSBytes), perThousand(pcRun, ps), errs)
		return
	}
	bs, _ := proc(bareRun, "server")
	ok := errs == 0 && ps.PeakRSSBytes > 0 && float64(ps.PeakRSSBytes) <= targetRSSOverBare*float64(bs.PeakRSSBytes)
	fmt.Fprintf(w, "  %-44s %.1f MB (bare-go %.1f MB, ×%s), %s MB per 1,000 calls (bare-go %s), errors %d  (target ≤ bare-go + 5 %%, 0 errors)  %s\n",
		line, mb(ps.PeakRSSBytes), mb(bs.PeakRSSBytes), ratioCell(float64(ps.PeakRSSBytes), float64(bs.PeakRSSBytes)),
		perThousand(pcRun, ps), perThousand(bareRun, bs), errs, verdict(ok))
}

func mb(b uint64) float64 { return float64(b) / 1e6 }

// perThousand is the peak RSS the run added over the idle process, per
// 1,000 connections held.
func perThousand(r *Result, p ProcUsage) string {
	if r.Conns <= 0 || p.StartRSSBytes == 0 || p.PeakRSSBytes < p.StartRSSBytes {
		return "-"
	}
	return fmt.Sprintf("%.1f", mb(p.PeakRSSBytes-p.StartRSSBytes)/(float64(r.Conns)/1000))
}
