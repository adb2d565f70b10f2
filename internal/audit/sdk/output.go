package sdk

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteJSON writes the report as indented JSON.
func WriteJSON(w io.Writer, r Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func (r Report) summary() string {
	e, wn, i := r.Counts()
	osv := "no OSV data (--osv DIR to check advisories)"
	if r.OSVRecords >= 0 {
		osv = fmt.Sprintf("%d OSV advisories checked", r.OSVRecords)
	}
	return fmt.Sprintf("%d manifest(s), %d vendor SDK(s), %s: %d error(s), %d warning(s), %d info",
		len(r.Manifests), len(r.SDKs), osv, e, wn, i)
}

func loc(f Finding) string {
	if f.Line > 0 {
		return fmt.Sprintf("%s:%d", f.File, f.Line)
	}
	return f.File
}

// WriteTable writes the SDKs and the findings for a terminal.
func WriteTable(w io.Writer, r Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ECOSYSTEM\tSDK\tSPEC\tVERSION\tPINNED\tINTEGRITY\tADVISORIES\tMANIFEST")
	for _, s := range r.SDKs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Ecosystem, s.Name, dash(s.Spec), dash(s.Version), yesNo(s.Pinned),
			yesNo(s.Integrity), advisoryIDs(s.Advisories), s.Manifest)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, f := range r.Findings {
		if _, err := fmt.Fprintf(w, "%s: %s: %s [%s]\n    fix: %s\n", loc(f), f.Severity, f.Message, f.ID, f.Fix); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintln(w, r.summary())
	return err
}

// WriteMarkdown writes the report as Markdown.
func WriteMarkdown(w io.Writer, r Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Vendor SDK supply chain\n\n%s.\n\n| Ecosystem | SDK | Spec | Version | Pinned | Integrity | Advisories | Manifest |\n|---|---|---|---|---|---|---|---|\n", r.summary())
	for _, s := range r.SDKs {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", s.Ecosystem, s.Name, md(dash(s.Spec)), dash(s.Version),
			yesNo(s.Pinned), yesNo(s.Integrity), advisoryIDs(s.Advisories), s.Manifest)
	}
	if len(r.Findings) > 0 {
		b.WriteString("\n## Findings\n\n| Severity | ID | Where | Finding | Fix |\n|---|---|---|---|---|\n")
		for _, f := range r.Findings {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", f.Severity, f.ID, loc(f), md(f.Message), md(f.Fix))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func advisoryIDs(ms []Match) string {
	if len(ms) == 0 {
		return "-"
	}
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.ID
	}
	return strings.Join(ids, " ")
}

func md(s string) string { return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s) }

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
