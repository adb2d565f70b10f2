package gateway

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis-dev/portcullis/internal/admin"
)

// status is an integration's runtime state for GET /api/v1/integrations.
func (g *Gateway) status(in *integration) admin.Status {
	k := in.core
	b := k.breaker.Snapshot()
	l := k.limiter.Snapshot()
	bs := k.budget.State()
	return admin.Status{
		Breaker:       b.State,
		BreakerDetail: admin.BreakerDetail{Since: b.Since, Requests: b.Requests, Failures: b.Failures},
		Limiter: admin.Limiter{
			Rate: l.Rate, Burst: l.Burst, Tokens: l.Tokens, VendorRemaining: l.VendorRemaining,
			VendorReset: l.VendorReset, PausedUntil: l.PausedUntil, Refused: l.Refused,
		},
		InFlight:    k.bulkhead.InFlight(),
		MaxInFlight: k.bulkhead.Limit(),
		RetryBudget: admin.Budget{Requests: bs.Requests, Retries: bs.Retries, Allowed: bs.Allowed},
		Disabled:    g.kill != nil && g.kill.Disabled(in.name),
	}
}

// stateCollector exports per-integration runtime state at scrape time.
type stateCollector struct{ g *Gateway }

var (
	descBreaker = prometheus.NewDesc("portcullis_circuit_breaker_state",
		"Circuit breaker state by integration: 0 closed, 1 half-open, 2 open.", []string{"integration"}, nil)
	descInFlight = prometheus.NewDesc("portcullis_bulkhead_in_flight",
		"Calls in flight to the vendor by integration.", []string{"integration"}, nil)
	descVendorRemaining = prometheus.NewDesc("portcullis_vendor_ratelimit_remaining",
		"The vendor's last reported remaining calls, minus those sent since (-1 unknown).", []string{"integration"}, nil)
	descLimiterRefused = prometheus.NewDesc("portcullis_rate_limited_total",
		"Calls refused by the rate limiter (ours or the vendor's pause) since start.", []string{"integration"}, nil)
	descDisabled = prometheus.NewDesc("portcullis_integration_disabled",
		"1 when the kill switch is on.", []string{"integration"}, nil)
)

func (c stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descBreaker
	ch <- descInFlight
	ch <- descVendorRemaining
	ch <- descLimiterRefused
	ch <- descDisabled
}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	for name, in := range c.g.rt.Load().integrations {
		k := in.core
		state := 0.0
		switch k.breaker.State() {
		case "half-open":
			state = 1
		case "open":
			state = 2
		}
		l := k.limiter.Snapshot()
		ch <- prometheus.MustNewConstMetric(descBreaker, prometheus.GaugeValue, state, name)
		ch <- prometheus.MustNewConstMetric(descInFlight, prometheus.GaugeValue, float64(k.bulkhead.InFlight()), name)
		ch <- prometheus.MustNewConstMetric(descVendorRemaining, prometheus.GaugeValue, float64(l.VendorRemaining), name)
		ch <- prometheus.MustNewConstMetric(descLimiterRefused, prometheus.CounterValue, float64(l.Refused), name)
		disabled := 0.0
		if c.g.kill != nil && c.g.kill.Disabled(name) {
			disabled = 1
		}
		ch <- prometheus.MustNewConstMetric(descDisabled, prometheus.GaugeValue, disabled, name)
	}
}

// Disabled reports whether an integration's kill switch is on (for the
// forward proxy, which shares it).
func (g *Gateway) Disabled(name string) bool {
	return g.kill != nil && g.kill.Disabled(name)
}
