package audit

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteJSON writes the report as indented JSON.
func WriteJSON(w io.Writer, r Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	e, wn, i := r.Counts()
	return enc.Encode(struct {
		Report
		Errors   int `json:"errors"`
		Warnings int `json:"warnings"`
		Infos    int `json:"infos"`
	}{r, e, wn, i})
}

func (r Report) header() (title, usage, counts string) {
	title = fmt.Sprintf("Portcullis audit of %s on %s", r.Config, date(r.GeneratedAt))
	src := r.UsageSource
	if src == "" {
		src = "no usage source"
	}
	usage = fmt.Sprintf("Usage: %d records (%s); unused-access window %d days, %s to %s", r.Records, src, r.UnusedDays, date(r.UnusedSince), date(r.GeneratedAt))
	e, wn, i := r.Counts()
	counts = fmt.Sprintf("%d error(s), %d warning(s), %d info", e, wn, i)
	return
}

func (r Report) location(f Finding) string {
	if f.Line > 0 {
		return fmt.Sprintf("%s:%d", r.Config, f.Line)
	}
	return ""
}

// WriteTable writes the report for a terminal: the findings, then the
// credential, access and SLA tables.
func WriteTable(w io.Writer, r Report) error {
	ew := &errWriter{w: w}
	title, usage, counts := r.header()
	ew.printf("%s\n%s\n\nFINDINGS: %s\n", title, usage, counts)
	for _, f := range r.Findings {
		loc := ""
		if l := r.location(f); l != "" {
			loc = "  [" + l + "]"
		}
		ew.printf("%-7s %s  %s%s\n        %s\n", f.Severity, f.ID, f.Subject, loc, f.Message)
		if f.Fix != "" {
			ew.printf("        fix: %s\n", f.Fix)
		}
	}
	ew.printf("\nCREDENTIALS\n")
	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "INTEGRATION\tTYPE\tREFERENCE\tVERSION\tAGE\tMAX AGE\tLAST USED\tSTATUS")
	for _, c := range r.Credentials {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Integration, c.Type, strings.Join(c.Refs, " "), dash(c.Version),
			ageText(c.AgeDays), daysText(c.MaxAgeDays), date(c.LastUsed), c.Status)
	}
	_ = tw.Flush()
	ew.printf("\nACCESS (calls in the last %d days per route grant)\n", r.UnusedDays)
	tw = tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "INTEGRATION\tMETHOD\tROUTE\tCALLER\tCALLS\tLAST USED")
	for _, a := range r.Access {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", a.Integration, a.Method, a.Route, a.Caller, a.Calls, date(a.LastUsed))
	}
	_ = tw.Flush()
	ew.printf("\nSLA (measured from the gateway's records)\n")
	tw = tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "INTEGRATION\tMONTH\tCALLS\tVENDOR FAILED\tUPTIME\tPROMISED\tP99\tPROMISED\tMET")
	for _, s := range r.SLA {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s%%\t%s\t%.0fms\t%s\t%s\n", s.Integration, s.Month, s.Calls, s.VendorFailed, pct(s.Uptime),
			promisedPct(s.SLAUptime), s.P99MS, promisedMS(s.SLAP99MS), yesNo(s.Met))
	}
	_ = tw.Flush()
	ew.printf("\n%s: %s\n", r.Config, counts)
	return ew.err
}

// WriteMarkdown writes the report as a Markdown document a security
// review can attach.
func WriteMarkdown(w io.Writer, r Report) error {
	ew := &errWriter{w: w}
	title, usage, counts := r.header()
	ew.printf("# %s\n\n%s.\n\n**%s**\n\n## Findings\n\n", title, usage, counts)
	if len(r.Findings) == 0 {
		ew.printf("None.\n")
	} else {
		ew.printf("| Severity | ID | Subject | Finding | Fix | Config |\n|---|---|---|---|---|---|\n")
		for _, f := range r.Findings {
			ew.printf("| %s | %s | %s | %s | %s | %s |\n", f.Severity, f.ID, md(f.Subject), md(f.Message), md(f.Fix), md(r.location(f)))
		}
	}
	ew.printf("\n## Credentials\n\n| Integration | Type | Reference | Version | Age | Max age | Last used | Status |\n|---|---|---|---|---|---|---|---|\n")
	for _, c := range r.Credentials {
		ew.printf("| %s | %s | %s | %s | %s | %s | %s | %s |\n", c.Integration, c.Type, md(strings.Join(c.Refs, " ")), md(dash(c.Version)),
			ageText(c.AgeDays), daysText(c.MaxAgeDays), date(c.LastUsed), c.Status)
	}
	ew.printf("\n## Access (calls in the last %d days per route grant)\n\n| Integration | Method | Route | Caller | Calls | Last used |\n|---|---|---|---|---|---|\n", r.UnusedDays)
	for _, a := range r.Access {
		ew.printf("| %s | %s | %s | %s | %d | %s |\n", a.Integration, a.Method, md(a.Route), a.Caller, a.Calls, date(a.LastUsed))
	}
	ew.printf("\n## SLA (measured from the gateway's records)\n\n| Integration | Month | Calls | Vendor failed | Uptime | Promised | p99 | Promised | Met |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range r.SLA {
		ew.printf("| %s | %s | %d | %d | %s%% | %s | %.0fms | %s | %s |\n", s.Integration, s.Month, s.Calls, s.VendorFailed, pct(s.Uptime),
			promisedPct(s.SLAUptime), s.P99MS, promisedMS(s.SLAP99MS), yesNo(s.Met))
	}
	return ew.err
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

func (e *errWriter) printf(format string, args ...any) { fmt.Fprintf(e, format, args...) }

func md(s string) string {
	if s == "" {
		return ""
	}
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func ageText(d int) string {
	if d < 0 {
		return "unknown"
	}
	return "≥" + strconv.Itoa(d) + "d"
}

func daysText(d int) string {
	if d <= 0 {
		return "-"
	}
	return strconv.Itoa(d) + "d"
}

func promisedPct(v float64) string {
	if v == 0 {
		return "-"
	}
	return pct(v) + "%"
}

func promisedMS(v float64) string {
	if v == 0 {
		return "-"
	}
	return (time.Duration(v) * time.Millisecond).String()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "NO"
}
