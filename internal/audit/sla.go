package audit

import (
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/portcullis-dev/portcullis/internal/conf"
)

// SLARow is one integration's month measured from the gateway's records.
type SLARow struct {
	Integration string `json:"integration"`
	Month       string `json:"month"`
	Calls       int    `json:"calls"`
	// VendorFailed counts calls failed by the vendor (5xx, timeout, connect error).
	VendorFailed int `json:"vendor_failed"`
	// Uptime is the share of calls not failed by the vendor, in percent.
	Uptime float64 `json:"uptime"`
	// P99MS is the 99th percentile latency in milliseconds (nearest rank).
	P99MS     float64 `json:"p99_ms"`
	SLAUptime float64 `json:"sla_uptime,omitempty"`
	SLAP99MS  float64 `json:"sla_p99_ms,omitempty"`
	// Met is false when either promise was broken; true when kept or none set.
	Met bool `json:"met"`
}

func (a *auditor) sla() {
	var months []string
	for k := 0; k < a.o.SLAMonths; k++ {
		months = append(months, monthStart(a.o.Now, a.o.SLAMonths-1-k).Format("2006-01"))
	}
	for _, name := range a.cfg.Names() {
		in := a.cfg.Integrations[name]
		if in == nil {
			continue
		}
		for _, m := range months {
			t := a.u.months[monthKey{name, m}]
			if t == nil || t.calls == 0 {
				continue
			}
			row := SLARow{Integration: name, Month: m, Calls: t.calls, VendorFailed: t.failed, Met: true,
				Uptime: 100 * float64(t.calls-t.failed) / float64(t.calls), P99MS: p99(t.latencies)}
			if in.Vendor != nil && in.Vendor.SLA != nil {
				s := in.Vendor.SLA
				p := "integrations." + name + ".vendor.sla"
				row.SLAUptime, row.SLAP99MS = s.Uptime, float64(s.P99Latency.D.Milliseconds())
				if s.Uptime > 0 && row.Uptime < s.Uptime {
					row.Met = false
					a.add(SLAUptimeBreach, conf.Warning, name+" vendor", p+".uptime",
						"Raise it with the vendor (service credits) and check that the breaker and fallbacks covered the failures.",
						"%s: uptime %s%% (%d of %d calls failed by the vendor) is below the promised %s%%",
						m, pct(row.Uptime), t.failed, t.calls, pct(s.Uptime))
				}
				if s.P99Latency.D > 0 && row.P99MS > row.SLAP99MS {
					row.Met = false
					a.add(SLALatencyBreach, conf.Warning, name+" vendor", p+".p99_latency",
						"Raise it with the vendor; check the integration's timeouts still fit.",
						"%s: p99 latency %.0fms is above the promised %.0fms", m, row.P99MS, row.SLAP99MS)
				}
			}
			a.r.SLA = append(a.r.SLA, row)
		}
	}
}

// p99 is the nearest-rank 99th percentile.
func p99(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	k := int(math.Ceil(0.99*float64(len(s)))) - 1
	return s[max(k, 0)]
}

// pct prints a percentage with up to three decimals, no trailing zeros.
func pct(v float64) string {
	s := strings.TrimRight(strings.TrimRight(strconvFormat(v), "0"), ".")
	if s == "" {
		return "0"
	}
	return s
}

func strconvFormat(v float64) string { return strconv.FormatFloat(math.Floor(v*1000)/1000, 'f', 3, 64) }
