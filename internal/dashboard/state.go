package dashboard

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/portcullis-dev/portcullis/internal/admin"
	"github.com/portcullis-dev/portcullis/internal/config"
)

// StateView is the body of GET /ui/api/state: everything the page shows.
type StateView struct {
	Now          time.Time          `json:"now"`
	Actor        string             `json:"actor"`
	Features     Features           `json:"features"`
	Integrations []IntegrationView  `json:"integrations"`
	Queue        *QueueView         `json:"queue,omitempty"`
	Anomalies    []AnomalyView      `json:"anomalies"`
	Findings     []FindingView      `json:"findings"`
	Chaos        *ChaosView         `json:"chaos,omitempty"`
	Problems     []string           `json:"problems"` // sources that could not be read, named without detail
	Thresholds   map[string]float64 `json:"thresholds"`
}

// Features says which optional sections have a source.
type Features struct {
	SLA       bool `json:"sla"`
	Queue     bool `json:"queue"`
	Anomalies bool `json:"anomalies"`
	Findings  bool `json:"findings"`
	Chaos     bool `json:"chaos"`
}

// IntegrationView is one integration's row.
type IntegrationView struct {
	Name         string          `json:"name"`
	Upstream     string          `json:"upstream"`
	Routes       int             `json:"routes"`
	Health       string          `json:"health"` // ok, warn, bad, off
	Reasons      []string        `json:"reasons"`
	Disabled     bool            `json:"disabled"`
	Breaker      string          `json:"breaker"`
	BreakerSince time.Time       `json:"breaker_since,omitzero"`
	Limiter      LimiterView     `json:"limiter"`
	InFlight     int             `json:"in_flight"`
	MaxInFlight  int             `json:"max_in_flight"`
	RetryBudget  BudgetView      `json:"retry_budget"`
	Credential   *CredentialView `json:"credential,omitempty"`
	Traffic      Snapshot        `json:"traffic"`
	SLA          *SLAStatus      `json:"sla,omitempty"`
}

// CredentialView is a credential's age and state, never its material.
type CredentialView struct {
	Type          string    `json:"type"`
	Version       string    `json:"version,omitempty"`
	Created       time.Time `json:"created,omitzero"`
	AgeSeconds    int64     `json:"age_seconds,omitempty"`
	MaxAgeSeconds int64     `json:"max_age_seconds,omitempty"`
	Overdue       bool      `json:"overdue"` // older than credential.max_age
	LastRefresh   time.Time `json:"last_refresh,omitzero"`
	Expires       time.Time `json:"expires,omitzero"`
	Revoked       bool      `json:"revoked"`
	LastError     string    `json:"last_error,omitempty"`
}

// QueueView is the async fallback queue.
type QueueView struct {
	Depth         int       `json:"depth"`
	Oldest        time.Time `json:"oldest,omitzero"`
	OldestSeconds int64     `json:"oldest_age_seconds"`
}

// Health thresholds on the last minute of traffic.
const (
	// badRate5xx turns an integration red: this share of 5xx answers...
	badRate5xx = 0.10
	// ...over at least this many requests.
	minRequestsForRate = 5
	// warnInFlight is the share of the bulkhead in use that warns.
	warnInFlight = 0.9
)

// health grades an integration: off (kill switch on), bad (breaker open,
// ≥10 % 5xx over ≥5 requests in the last minute, credential revoked),
// warn (breaker half-open, any 5xx, limiter paused or the vendor's quota
// spent, bulkhead nearly full, fallbacks served, credential overdue), ok.
func health(v *IntegrationView) (string, []string) {
	var bad, warn []string
	w := v.Traffic.Minute
	switch v.Breaker {
	case "open":
		bad = append(bad, "circuit breaker open")
	case "half-open":
		warn = append(warn, "circuit breaker half-open")
	}
	if w.Requests >= minRequestsForRate && w.Rate5xx >= badRate5xx {
		bad = append(bad, fmt.Sprintf("%.0f%% 5xx in the last minute", 100*w.Rate5xx))
	} else if w.Errors5xx > 0 {
		warn = append(warn, fmt.Sprintf("%d 5xx in the last minute", w.Errors5xx))
	}
	if c := v.Credential; c != nil {
		if c.Revoked {
			bad = append(bad, "credential revoked by the vendor")
		}
		if c.Overdue {
			warn = append(warn, "credential older than its max_age")
		}
	}
	if !v.Limiter.PausedUntil.IsZero() {
		warn = append(warn, "paused by the vendor's rate limit")
	} else if v.Limiter.VendorRemaining == 0 {
		warn = append(warn, "vendor quota spent")
	}
	if v.MaxInFlight > 0 && float64(v.InFlight) >= warnInFlight*float64(v.MaxInFlight) {
		warn = append(warn, "bulkhead nearly full")
	}
	if w.Fallback > 0 {
		warn = append(warn, fmt.Sprintf("%d answers from a fallback", w.Fallback))
	}
	reasons := append(bad, warn...)
	switch {
	case v.Disabled:
		return "off", append([]string{"kill switch on: calls refused"}, reasons...)
	case len(bad) > 0:
		return "bad", reasons
	case len(warn) > 0:
		return "warn", reasons
	}
	return "ok", []string{}
}

// integrationsJSON returns GET /api/v1/integrations, from Options or the
// admin mux.
func (d *Dashboard) integrationsJSON(ctx context.Context) ([]byte, error) {
	if d.o.Integrations != nil {
		return d.o.Integrations(ctx)
	}
	status, body := d.callAdmin(ctx, d.admin, http.MethodGet, "/api/v1/integrations", nil, "")
	if status != http.StatusOK {
		return nil, fmt.Errorf("%w: admin API answered %d", ErrBadSource, status)
	}
	return body, nil
}

// State assembles the page's view. Sources that fail are named in
// Problems and their sections left empty; the rest is still shown.
func (d *Dashboard) State(ctx context.Context, actor string) StateView {
	now := d.now()
	st := StateView{
		Now: now.UTC(), Actor: actor, Integrations: []IntegrationView{}, Anomalies: []AnomalyView{},
		Findings: []FindingView{}, Problems: []string{},
		Features: Features{
			SLA: d.sla != nil, Queue: d.o.QueueStats != nil, Anomalies: d.o.Anomalies != nil,
			Findings: d.o.Findings != nil, Chaos: d.o.Chaos != nil,
		},
		Thresholds: map[string]float64{"bad_rate_5xx": badRate5xx, "min_requests": minRequestsForRate},
	}
	var cfg *config.Config
	if d.o.Config != nil {
		cfg = d.o.Config()
	}
	if d.sla != nil {
		d.sla.maybeRefresh(time.Second, func(err error) { d.log.Warn("dashboard: SLA scan failed", "cause", err) })
	}
	body, err := d.integrationsJSON(ctx)
	var list []admin.Integration
	if err == nil {
		list, err = parseIntegrations(body)
	}
	if err != nil {
		d.log.Warn("dashboard: integrations unavailable", "cause", err)
		st.Problems = append(st.Problems, "integrations")
	}
	for _, in := range list {
		st.Integrations = append(st.Integrations, d.integrationView(in, cfg, now))
	}
	if d.o.QueueStats != nil {
		depth, oldest, err := d.o.QueueStats(ctx)
		if err != nil {
			st.Problems = append(st.Problems, "queue")
		} else {
			q := &QueueView{Depth: depth, Oldest: oldest}
			if !oldest.IsZero() {
				q.OldestSeconds = int64(now.Sub(oldest) / time.Second)
			}
			st.Queue = q
		}
	}
	if d.o.Anomalies != nil {
		if a, err := project[AnomalyView](d.o.Anomalies(50), 50); err != nil {
			st.Problems = append(st.Problems, "anomalies")
		} else {
			for i := range a {
				a[i].clip()
			}
			st.Anomalies = a
		}
	}
	if d.o.Findings != nil {
		if f, err := project[FindingView](d.o.Findings(), 50); err != nil {
			st.Problems = append(st.Problems, "findings")
		} else {
			for i := range f {
				f[i].clip()
			}
			st.Findings = f
		}
	}
	if d.o.Chaos != nil {
		status, body := d.callAdmin(ctx, d.o.Chaos, http.MethodGet, "/api/v1/chaos", nil, "")
		c, err := parseChaos(body)
		if status != http.StatusOK || err != nil {
			st.Problems = append(st.Problems, "chaos")
		} else {
			st.Chaos = &c
		}
	}
	return st
}

func (d *Dashboard) integrationView(in admin.Integration, cfg *config.Config, now time.Time) IntegrationView {
	s := in.Status
	v := IntegrationView{
		Name: in.Name, Upstream: in.Upstream, Routes: in.Routes, Disabled: s.Disabled,
		Breaker: s.Breaker, BreakerSince: s.BreakerDetail.Since,
		Limiter: LimiterView{
			Rate: s.Limiter.Rate, Burst: s.Limiter.Burst, Tokens: s.Limiter.Tokens, VendorRemaining: s.Limiter.VendorRemaining,
			VendorReset: s.Limiter.VendorReset, PausedUntil: s.Limiter.PausedUntil, Refused: s.Limiter.Refused,
		},
		InFlight: s.InFlight, MaxInFlight: s.MaxInFlight, RetryBudget: BudgetView(s.RetryBudget),
		Traffic: d.o.Series.Snapshot(in.Name),
	}
	var ic *config.Integration
	if cfg != nil {
		ic = cfg.Integrations[in.Name]
	}
	if c := s.Credential; c != nil {
		cv := &CredentialView{
			Type: c.Type, Version: c.Version, Created: c.Created, LastRefresh: c.LastRefresh,
			Expires: c.Expires, Revoked: c.Revoked, LastError: c.LastError,
		}
		if !c.Created.IsZero() {
			cv.AgeSeconds = int64(now.Sub(c.Created) / time.Second)
		}
		if ic != nil && ic.Credential != nil && ic.Credential.MaxAge.D > 0 {
			cv.MaxAgeSeconds = int64(ic.Credential.MaxAge.D / time.Second)
			cv.Overdue = !c.Created.IsZero() && now.Sub(c.Created) > ic.Credential.MaxAge.D
		}
		v.Credential = cv
	}
	if d.sla != nil {
		var target *config.SLA
		if ic != nil && ic.Vendor != nil {
			target = ic.Vendor.SLA
		}
		sla := d.sla.status(in.Name, target)
		v.SLA = &sla
	}
	v.Health, v.Reasons = health(&v)
	return v
}

func (d *Dashboard) getState(w http.ResponseWriter, r *http.Request, s *session) {
	writeJSON(w, http.StatusOK, d.State(r.Context(), s.actor()))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		writeError(w, http.StatusInternalServerError, "could not encode the answer")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// writeError answers {"error": msg}; msg is always a fixed, public text.
func writeError(w http.ResponseWriter, status int, msg string) {
	b, _ := json.Marshal(map[string]string{"error": msg})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
