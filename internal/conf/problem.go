package conf

import (
	"fmt"
	"strings"
)

// Severity of a Problem.
type Severity int

const (
	// Error makes the config unusable.
	Error Severity = iota
	// Warning is legal but risky.
	Warning
)

func (s Severity) String() string {
	if s == Warning {
		return "warning"
	}
	return "error"
}

// Problem is one finding about a config file.
type Problem struct {
	Severity Severity
	// Code is the kind of problem; empty means ConfigInvalid.
	Code Code
	// Path is the config path, e.g. integrations.payments.egress.allow[0].
	Path string
	Line int
	Msg  string
}

func (p Problem) String() string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Report collects what a Spec's Validate finds. Paths are relative to the
// Spec ("allow[0]"); At gives a Report for a nested part, and the config
// package prefixes the Spec's own path ("integrations.pay.egress") and
// looks up each problem's line. A Report collects every problem instead of
// stopping at the first, so one `check` run lists them all.
type Report struct {
	prefix string
	code   Code
	list   *[]Problem
}

// NewReport returns an empty Report whose paths start with prefix.
func NewReport(prefix string) *Report { return &Report{prefix: prefix, list: new([]Problem)} }

// At returns a Report for the part of the Spec at path; its problems land
// in r.
func (r *Report) At(path string) *Report {
	return &Report{prefix: r.join(path), code: r.code, list: r.list}
}

// Coded returns a Report that records its problems with code c, e.g.
// r.Coded(NoTimeouts).Warnf("timeouts", "no timeouts set: …").
func (r *Report) Coded(c Code) *Report { return &Report{prefix: r.prefix, code: c, list: r.list} }

// Errorf records a problem that makes the config unusable.
func (r *Report) Errorf(path, format string, args ...any) { r.add(Error, path, format, args...) }

// Warnf records a legal but risky setting; the message should say the fix.
func (r *Report) Warnf(path, format string, args ...any) { r.add(Warning, path, format, args...) }

// Problems returns everything recorded so far, in order.
func (r *Report) Problems() []Problem { return *r.list }

// HasErrors reports whether any recorded problem is an Error.
func (r *Report) HasErrors() bool {
	for _, p := range *r.list {
		if p.Severity == Error {
			return true
		}
	}
	return false
}

func (r *Report) add(sev Severity, path, format string, args ...any) {
	*r.list = append(*r.list, Problem{Severity: sev, Code: r.code, Path: r.join(path), Msg: fmt.Sprintf(format, args...)})
}

func (r *Report) join(path string) string {
	switch {
	case r.prefix == "":
		return path
	case path == "":
		return r.prefix
	case strings.HasPrefix(path, "["):
		return r.prefix + path
	}
	return r.prefix + "." + path
}
