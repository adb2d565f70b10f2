package dashboard

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/portcullis-dev/portcullis/internal/admin"
)

// The page never sees gateway data as it came: each source is decoded into
// typed structs (the admin API's own, package admin, for the integration
// list) and projected into the views below, which name every field that may
// be shown. A field added upstream (say, a credential's value by mistake)
// is dropped here instead of reaching the browser.

// ErrBadSource wraps a source whose data could not be decoded.
var ErrBadSource = errors.New("dashboard: undecodable source data")

// maxText bounds every string shown, so one odd event cannot flood the page.
const maxText = 300

func clip(s string) string {
	if len(s) <= maxText {
		return s
	}
	s = s[:maxText]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}

// LimiterView is the rate limiter's state.
type LimiterView struct {
	Rate            float64   `json:"rate"`
	Burst           int       `json:"burst"`
	Tokens          float64   `json:"tokens"`
	VendorRemaining int64     `json:"vendor_remaining"` // -1 unknown
	VendorReset     time.Time `json:"vendor_reset,omitzero"`
	PausedUntil     time.Time `json:"paused_until,omitzero"`
	Refused         int64     `json:"refused"`
}

// BudgetView is the retry budget's current window.
type BudgetView struct {
	Requests int64   `json:"requests"`
	Retries  int64   `json:"retries"`
	Allowed  float64 `json:"allowed"`
}

// parseIntegrations decodes the admin API's integration list.
func parseIntegrations(b []byte) ([]admin.Integration, error) {
	var l admin.IntegrationList
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("%w: integrations: %w", ErrBadSource, err)
	}
	out := l.Integrations[:0]
	for _, in := range l.Integrations {
		if in.Name == "" || !validName(in.Name) {
			continue
		}
		in.Upstream = clip(in.Upstream)
		in.Status.Breaker = clip(in.Status.Breaker)
		if c := in.Status.Credential; c != nil {
			c.Type, c.Version, c.LastError = clip(c.Type), clip(c.Version), clip(c.LastError)
		}
		out = append(out, in)
	}
	return out, nil
}

// validName accepts integration names as the config allows them in a URL
// path segment; anything else is not proxied to the admin API.
func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return s != "." && s != ".."
}

// AnomalyView is one recent anomaly, drift or validation failure: what,
// where and when, never a value.
type AnomalyView struct {
	Kind        string    `json:"kind"`
	Integration string    `json:"integration,omitempty"`
	Route       string    `json:"route,omitempty"`
	Caller      string    `json:"caller,omitempty"`
	Field       string    `json:"field,omitempty"`
	Rule        string    `json:"rule,omitempty"`
	Message     string    `json:"message,omitempty"`
	Time        time.Time `json:"time"`
}

// FindingView is one audit finding.
type FindingView struct {
	ID       string `json:"id"`
	Severity string `json:"severity"`
	Subject  string `json:"subject,omitempty"`
	Path     string `json:"path,omitempty"`
	Message  string `json:"message"`
	Fix      string `json:"fix,omitempty"`
}

// project re-encodes v (any JSON-encodable slice) and decodes it into
// []T, keeping at most limit items. Only T's fields survive.
func project[T any](v any, limit int) ([]T, error) {
	if v == nil {
		return []T{}, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadSource, err)
	}
	return projectJSON[T](b, limit)
}

func projectJSON[T any](b []byte, limit int) ([]T, error) {
	var out []T
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadSource, err)
	}
	if out == nil {
		out = []T{}
	}
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (a *AnomalyView) clip() {
	a.Kind, a.Integration, a.Route, a.Caller = clip(a.Kind), clip(a.Integration), clip(a.Route), clip(a.Caller)
	a.Field, a.Rule, a.Message = clip(a.Field), clip(a.Rule), clip(a.Message)
}

func (f *FindingView) clip() {
	f.ID, f.Severity, f.Subject, f.Path = clip(f.ID), clip(f.Severity), clip(f.Subject), clip(f.Path)
	f.Message, f.Fix = clip(f.Message), clip(f.Fix)
}

// ChaosView is the chaos section: whether chaos is enabled in the config
// and the active faults.
type ChaosView struct {
	Enabled bool             `json:"enabled"`
	Faults  []ChaosFaultView `json:"faults"`
}

// ChaosFaultView is one active fault.
type ChaosFaultView struct {
	ID          string    `json:"id"`
	Integration string    `json:"integration"`
	Route       string    `json:"route,omitempty"`
	Kind        string    `json:"kind"`
	Expires     time.Time `json:"expires_at,omitzero"`
	Injections  uint64    `json:"injections,omitempty"`
}

func parseChaos(b []byte) (ChaosView, error) {
	var c ChaosView
	if err := json.Unmarshal(b, &c); err != nil {
		return ChaosView{}, fmt.Errorf("%w: chaos: %w", ErrBadSource, err)
	}
	if c.Faults == nil {
		c.Faults = []ChaosFaultView{}
	}
	for i := range c.Faults {
		f := &c.Faults[i]
		f.ID, f.Integration, f.Route, f.Kind = clip(f.ID), clip(f.Integration), clip(f.Route), clip(f.Kind)
	}
	return c, nil
}

// chaosKinds are the faults the page offers. Hang, oversize and the body
// faults stay with the CLI: a 2 a.m. button should not need parameters.
var chaosKinds = []string{"error", "latency", "reset", "revoked"}

// chaosStart is the page's request to start a fault.
type chaosStart struct {
	Integration string `json:"integration"`
	Kind        string `json:"kind"`
	For         string `json:"for"`               // duration, e.g. "5m"
	Latency     string `json:"latency,omitempty"` // for kind latency
	Status      int    `json:"status,omitempty"`  // for kind error
}

// ErrBadAction wraps a malformed action request from the page.
var ErrBadAction = errors.New("dashboard: bad action request")

// parseChaosStart decodes and checks the page's chaos start body; the
// chaos package validates the fault itself.
func parseChaosStart(b []byte) (chaosStart, error) {
	var c chaosStart
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return chaosStart{}, fmt.Errorf("%w: %w", ErrBadAction, err)
	}
	if dec.More() {
		return chaosStart{}, fmt.Errorf("%w: one JSON object expected", ErrBadAction)
	}
	if !validName(c.Integration) {
		return chaosStart{}, fmt.Errorf("%w: integration", ErrBadAction)
	}
	known := false
	for _, k := range chaosKinds {
		known = known || c.Kind == k
	}
	if !known {
		return chaosStart{}, fmt.Errorf("%w: kind must be one of %s", ErrBadAction, strings.Join(chaosKinds, ", "))
	}
	if c.For == "" {
		c.For = "5m"
	}
	if c.Kind == "latency" && c.Latency == "" {
		c.Latency = "2s"
	}
	if c.Kind != "latency" {
		c.Latency = ""
	}
	if c.Kind != "error" {
		c.Status = 0
	}
	return c, nil
}
