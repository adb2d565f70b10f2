package audit

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/portcullis-dev/portcullis/internal/clock"
	"github.com/portcullis-dev/portcullis/internal/conf"
	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/internal/sla"
	"github.com/portcullis-dev/portcullis/internal/store"
)

// Defaults of Options.
const (
	DefaultUnusedDays = 30
	DefaultSLAMonths  = 3
	// DefaultExpiringWithin flags certifications that lapse this soon.
	DefaultExpiringWithin = 30 * 24 * time.Hour
	// DefaultPentestMaxAge flags penetration tests older than this.
	DefaultPentestMaxAge = 365 * 24 * time.Hour
)

// Options tune Run; the zero value uses the defaults and the system clock.
type Options struct {
	// Now is when the audit runs; zero: Clock's now.
	Now time.Time
	// Clock supplies Now when it is zero; nil: the system clock.
	Clock          clock.Clock
	UnusedDays     int
	SLAMonths      int
	ExpiringWithin time.Duration
	PentestMaxAge  time.Duration
	// ModTime returns a file's modification time (file: secrets); nil: os.Stat.
	ModTime func(path string) (time.Time, error)
	// UsageSource describes where the records came from, for the report.
	UsageSource string
}

func (o *Options) defaults() {
	if o.Now.IsZero() {
		o.Now = clock.Or(o.Clock).Now()
	}
	o.Now = o.Now.UTC()
	if o.UnusedDays <= 0 {
		o.UnusedDays = DefaultUnusedDays
	}
	if o.SLAMonths <= 0 {
		o.SLAMonths = DefaultSLAMonths
	}
	if o.ExpiringWithin <= 0 {
		o.ExpiringWithin = DefaultExpiringWithin
	}
	if o.PentestMaxAge <= 0 {
		o.PentestMaxAge = DefaultPentestMaxAge
	}
	if o.ModTime == nil {
		o.ModTime = func(p string) (time.Time, error) {
			fi, err := os.Stat(p)
			if err != nil {
				return time.Time{}, err
			}
			return fi.ModTime(), nil
		}
	}
}

// Report is the whole audit.
type Report struct {
	Config      string    `json:"config"`
	GeneratedAt time.Time `json:"generated_at"`
	// UnusedSince starts the window of the unused-access checks.
	UnusedSince time.Time `json:"unused_since"`
	UnusedDays  int       `json:"unused_days"`
	UsageSource string    `json:"usage_source,omitempty"`
	// Records is how many usage records were read.
	Records     int             `json:"records"`
	Findings    []Finding       `json:"findings"`
	Credentials []CredentialRow `json:"credentials"`
	Access      []AccessRow     `json:"access"`
	SLA         []SLARow        `json:"sla"`
}

// Counts returns how many findings have each severity.
func (r Report) Counts() (errs, warnings, infos int) {
	for _, f := range r.Findings {
		switch f.Severity {
		case conf.Error:
			errs++
		case conf.Warning:
			warnings++
		default:
			infos++
		}
	}
	return errs, warnings, infos
}

// Run audits cfg against the usage records in usage (nil: none).
func Run(ctx context.Context, cfg *config.Config, usage store.Usage, o Options) (Report, error) {
	o.defaults()
	a := &auditor{cfg: cfg, o: o, r: Report{Config: cfg.Path, GeneratedAt: o.Now, UnusedDays: o.UnusedDays, UsageSource: o.UsageSource}}
	a.r.UnusedSince = o.Now.Add(-time.Duration(o.UnusedDays) * 24 * time.Hour)
	u := newTally(a.r.UnusedSince, o.Now)
	if usage != nil {
		// Read far enough back to see when the credential versions in
		// use were first recorded: a year past the longest max_age.
		from := earliest(a.r.UnusedSince, sla.MonthStart(o.Now, o.SLAMonths-1), o.Now.AddDate(-1, 0, 0).Add(-longestMaxAge(cfg)))
		if err := usage.ScanUsage(ctx, from, o.Now, func(rec store.UsageRecord) error {
			u.add(rec)
			return nil
		}); err != nil {
			return Report{}, fmt.Errorf("audit: read usage records: %w", err)
		}
	}
	a.r.Records = u.total
	a.u = u
	a.credentials()
	a.access()
	a.vendors()
	a.sla()
	slices.SortStableFunc(a.r.Findings, func(x, y Finding) int {
		return cmp.Or(cmp.Compare(y.Severity, x.Severity), cmp.Compare(x.Subject, y.Subject), cmp.Compare(x.ID, y.ID), cmp.Compare(x.Line, y.Line))
	})
	return a.r, nil
}

type auditor struct {
	cfg *config.Config
	o   Options
	r   Report
	u   *tally
}

func (a *auditor) add(id string, sev conf.Severity, subject, path, fix, format string, args ...any) {
	a.r.Findings = append(a.r.Findings, Finding{ID: id, Severity: sev, Subject: subject, Path: path,
		Line: a.cfg.Line(path), Message: fmt.Sprintf(format, args...), Fix: fix})
}

// relPath resolves a path in the config relative to the config file.
func (a *auditor) relPath(p string) string {
	if filepath.IsAbs(p) || a.cfg.Path == "" {
		return p
	}
	return filepath.Join(filepath.Dir(a.cfg.Path), p)
}

func longestMaxAge(cfg *config.Config) time.Duration {
	var d time.Duration
	for _, in := range cfg.Integrations {
		if in != nil && in.Credential != nil {
			d = max(d, in.Credential.MaxAge.D)
		}
	}
	return d
}

func days(d time.Duration) int { return int(d / (24 * time.Hour)) }

func date(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.DateOnly)
}

func earliest(ts ...time.Time) time.Time {
	e := ts[0]
	for _, t := range ts[1:] {
		if t.Before(e) {
			e = t
		}
	}
	return e
}
