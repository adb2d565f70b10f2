package main

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// Phases written by run.sh.
const (
	phasePeak        = "peak"
	phaseHalfPeak    = "half-peak"
	phaseConcurrency = "concurrency"
)

// Target names the report computes ratios against.
const (
	nameDirect     = "direct"
	nameNginx      = "nginx"
	nameBare       = "bare-go"
	namePortcullis = "portcullis"
)

// Issue 2's targets.
const (
	targetConcurrency = 10000
	targetRSSBytes    = 200e6
	targetAddedP99MS  = 1.0
	goalNginxRatio    = 0.8
)

// readResults decodes one Result per line.
func readResults(r io.Reader) ([]*Result, error) {
	var out []*Result
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var res Result
		if err := json.Unmarshal(sc.Bytes(), &res); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		out = append(out, &res)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read results: %w", err)
	}
	return out, nil
}

func writeJSONLine(w io.Writer, r *Result) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// summary is one target's rounds in one phase, reduced to the median round
// by some measure, with that measure's spread across rounds.
type summary struct {
	median   *Result
	min, max float64
	rounds   int
}

// summarize groups a phase's results by target, in first-seen order, and
// picks each target's median round by key (the lower middle for an even
// count).
func summarize(results []*Result, phase string, key func(*Result) float64) ([]string, map[string]summary) {
	byName := map[string][]*Result{}
	var order []string
	for _, r := range results {
		if r.Phase != phase {
			continue
		}
		if _, ok := byName[r.Name]; !ok {
			order = append(order, r.Name)
		}
		byName[r.Name] = append(byName[r.Name], r)
	}
	out := map[string]summary{}
	for name, rs := range byName {
		sorted := slices.Clone(rs)
		slices.SortStableFunc(sorted, func(a, b *Result) int { return cmp.Compare(key(a), key(b)) })
		out[name] = summary{median: sorted[(len(sorted)-1)/2], min: key(sorted[0]), max: key(sorted[len(sorted)-1]), rounds: len(sorted)}
	}
	return order, out
}

func rps(r *Result) float64   { return r.RPS }
func p99ms(r *Result) float64 { return r.P99MS }

// halfPeakRate is half the median peak throughput of name, or 0.
func halfPeakRate(results []*Result, name string) float64 {
	_, peaks := summarize(results, phasePeak, rps)
	if s, ok := peaks[name]; ok {
		return s.median.RPS / 2
	}
	return 0
}

func proc(r *Result, label string) (ProcUsage, bool) {
	for _, p := range r.Procs {
		if p.Label == label {
			return p, true
		}
	}
	return ProcUsage{}, false
}

// waitCell is the server's run-queue wait (see ProcUsage), or "-".
func waitCell(r *Result) string {
	if p, ok := proc(r, "server"); ok && p.RunQueueWaitPercent >= 0 {
		return fmt.Sprintf("%.1f%%", p.RunQueueWaitPercent)
	}
	return "-"
}

func cpuCell(r *Result, label string) string {
	if p, ok := proc(r, label); ok && p.CPUPercent >= 0 {
		return fmt.Sprintf("%.0f%%", p.CPUPercent)
	}
	return "-"
}

// perCore is throughput per core-second the server process used: on a
// shared machine where the server did not get a whole core, this is the
// comparable measure of what one core of each server can do.
func perCore(r *Result) float64 {
	if p, ok := proc(r, "server"); ok && p.CPUPercent > 0 {
		return r.RPS / (p.CPUPercent / 100)
	}
	return 0
}

func ratioCell(a, b float64) string {
	if a <= 0 || b <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", a/b)
}

func errorsCell(r *Result) string {
	s := fmt.Sprint(r.Errors)
	if r.DialErrors > 0 {
		s += fmt.Sprintf(" (+%d dial)", r.DialErrors)
	}
	return s
}

// writeReport prints the three sections and the targets.
func writeReport(w io.Writer, results []*Result) error {
	order, peaks := summarize(results, phasePeak, rps)
	if err := writePeak(w, order, peaks); err != nil {
		return err
	}
	halfOrder, half := summarize(results, phaseHalfPeak, p99ms)
	if err := writeHalfPeak(w, halfOrder, half); err != nil {
		return err
	}
	var conc []*Result
	for _, r := range results {
		if r.Phase == phaseConcurrency {
			conc = append(conc, r)
		}
	}
	writeConcurrency(w, conc)
	writeTargets(w, peaks, half, conc)
	writeTargets16(w, peaks, half, conc)
	return nil
}

func writePeak(w io.Writer, order []string, peaks map[string]summary) error {
	if len(order) == 0 {
		return nil
	}
	first := peaks[order[0]]
	fmt.Fprintf(w, "Peak throughput: closed loop, %d connections, %.0f s per round; each target's median round of %d by req/s\n",
		first.median.Conns, first.median.Seconds, first.rounds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\treq/s\tmin–max\tp50 ms\tp99 ms\terrors\tserver cpu\tupstream cpu\tloadgen cpu\t÷direct\t÷nginx\t÷bare-go\t")
	for _, name := range order {
		s := peaks[name]
		r := s.median
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f–%.0f\t%.2f\t%.2f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n",
			name, r.RPS, s.min, s.max, r.P50MS, r.P99MS, errorsCell(r),
			cpuCell(r, "server"), cpuCell(r, "upstream"), cpuCell(r, "loadgen"),
			ratioCell(r.RPS, medianRPS(peaks, nameDirect)), ratioCell(r.RPS, medianRPS(peaks, nameNginx)),
			ratioCell(r.RPS, medianRPS(peaks, nameBare)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, name := range order {
		for _, e := range peaks[name].median.TopErrors {
			fmt.Fprintf(w, "  %s error: %d × %s\n", name, e.Count, e.Error)
		}
	}

	fmt.Fprintln(w, "\nPer server core: the median round's req/s ÷ the CPU share the server process got (100% = one core)")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\treq/s per core\t÷direct\t÷nginx\t÷bare-go\t")
	for _, name := range order {
		pc := perCore(peaks[name].median)
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t%s\t\n", name, pc,
			ratioCell(pc, perCoreOf(peaks, nameDirect)), ratioCell(pc, perCoreOf(peaks, nameNginx)), ratioCell(pc, perCoreOf(peaks, nameBare)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	return nil
}

func medianRPS(m map[string]summary, name string) float64 {
	if s, ok := m[name]; ok {
		return s.median.RPS
	}
	return 0
}

func perCoreOf(m map[string]summary, name string) float64 {
	if s, ok := m[name]; ok {
		return perCore(s.median)
	}
	return 0
}

func writeHalfPeak(w io.Writer, order []string, half map[string]summary) error {
	if len(order) == 0 {
		return nil
	}
	first := half[order[0]]
	fmt.Fprintf(w, "Half of portcullis's peak: open loop at %.0f req/s, %.0f s per round, latency from each call's due time;\n"+
		"each target's median round of %d by p99\n", first.median.TargetRate, first.median.Seconds, first.rounds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\tdone req/s\tp50 ms\tp90 ms\tp99 ms\tp99 min–max\tmax ms\terrors\tserver cpu\tserver run-queue wait\t")
	for _, name := range order {
		s := half[name]
		r := s.median
		fmt.Fprintf(tw, "%s\t%.0f\t%.2f\t%.2f\t%.2f\t%.2f–%.2f\t%.2f\t%s\t%s\t%s\t\n", name, r.RPS, r.P50MS, r.P90MS, r.P99MS,
			s.min, s.max, r.MaxMS, errorsCell(r), cpuCell(r, "server"), waitCell(r))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "run-queue wait: time the server's threads were ready to run but waited for their core (behind\n"+
		"another process or another of the server's own threads), over wall time")
	fmt.Fprintln(w)
	return nil
}

func writeConcurrency(w io.Writer, conc []*Result) {
	for _, r := range conc {
		fmt.Fprintf(w, "Concurrency: %s, %d connections, vendor answers in 1 s, %.0f s closed loop\n", r.Name, r.Conns, r.Seconds)
		fmt.Fprintf(w, "  calls %d, errors %s, p50 %.0f ms, p99 %.0f ms, max %.0f ms", r.Requests, errorsCell(r), r.P50MS, r.P99MS, r.MaxMS)
		if p, ok := proc(r, "server"); ok {
			fmt.Fprintf(w, ", server peak RSS (VmHWM) %.1f MB", float64(p.PeakRSSBytes)/1e6)
		}
		fmt.Fprintf(w, "\n  cpu: server %s, upstream %s, loadgen %s\n", cpuCell(r, "server"), cpuCell(r, "upstream"), cpuCell(r, "loadgen"))
		for _, e := range r.TopErrors {
			fmt.Fprintf(w, "  error: %d × %s\n", e.Count, e.Error)
		}
	}
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

// writeTargets states each target of the issue and whether this run met it.
func writeTargets(w io.Writer, peaks, half map[string]summary, conc []*Result) {
	fmt.Fprintln(w, "\nTargets (issue 2), from this run:")
	pc, bare, ngx := medianRPS(peaks, namePortcullis), medianRPS(peaks, nameBare), medianRPS(peaks, nameNginx)
	pcCore, bareCore, ngxCore := perCoreOf(peaks, namePortcullis), perCoreOf(peaks, nameBare), perCoreOf(peaks, nameNginx)
	line := func(what string, a, b, core1, core2 float64, goal string, ok func(float64) bool) {
		if a > 0 && b > 0 {
			fmt.Fprintf(w, "  %-34s %.2f req/s, %s per core  (%s)  %s\n", what, a/b, ratioCell(core1, core2), goal, verdict(ok(a/b)))
		}
	}
	line("portcullis ÷ bare-go", pc, bare, pcCore, bareCore, "target ≥ 1.00", func(x float64) bool { return x >= 1 })
	line("portcullis ÷ nginx", pc, ngx, pcCore, ngxCore, fmt.Sprintf("goal %.2f", goalNginxRatio), func(x float64) bool { return x >= goalNginxRatio })
	if bare > 0 && ngx > 0 {
		fmt.Fprintf(w, "  %-34s %.2f req/s, %s per core  (the Go floor on this machine)\n", "bare-go ÷ nginx", bare/ngx, ratioCell(bareCore, ngxCore))
	}
	p, okP := half[namePortcullis]
	d, okD := half[nameDirect]
	if okP && okD {
		added := p.median.P99MS - d.median.P99MS
		fmt.Fprintf(w, "  %-34s %.2f ms  (target < %.0f ms)  %s\n", "added p99 at half peak (median p99s)", added, targetAddedP99MS, verdict(added < targetAddedP99MS))
	}
	for _, r := range conc {
		if r.Name != namePortcullis {
			continue
		}
		sp, _ := proc(r, "server")
		errs := r.Errors + int64(r.DialErrors)
		ok := errs == 0 && sp.PeakRSSBytes < targetRSSBytes
		v := verdict(ok && r.Conns >= targetConcurrency)
		if r.Conns < targetConcurrency {
			v = fmt.Sprintf("%s at %d (not run at %d here)", verdict(ok), r.Conns, targetConcurrency)
		}
		fmt.Fprintf(w, "  %-34s errors %d, peak RSS %.1f MB  (target %d calls, 0 errors, < %.0f MB)  %s\n",
			"concurrent 1 s calls", errs, float64(sp.PeakRSSBytes)/1e6, targetConcurrency, targetRSSBytes/1e6, v)
	}
}
