package conf

import (
	"fmt"
	"strings"
)

// Severity of a config Problem and of every finding Portcullis reports
// (check, audit, the SDK scan), lowest first, so findings sort by it. The
// zero value is Error: a Problem raised without a severity fails closed.
type Severity int

const (
	// Info is worth knowing; it never fails a command.
	Info Severity = iota - 2
	// Warning is legal but risky; it fails a command run with --strict.
	Warning
	// Error makes the config unusable, or fails the audit.
	Error
)

// String is the severity's name: "info", "warning" or "error".
func (s Severity) String() string {
	switch s {
	case Info:
		return "info"
	case Warning:
		return "warning"
	}
	return "error"
}

// ParseSeverity reads a name String writes.
func ParseSeverity(name string) (Severity, error) {
	for _, s := range []Severity{Info, Warning, Error} {
		if name == s.String() {
			return s, nil
		}
	}
	return Error, fmt.Errorf("unknown severity %q: want info, warning or error", name)
}

// MarshalText writes the severity's name.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a severity's name.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
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
