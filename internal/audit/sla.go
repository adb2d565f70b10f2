package audit

import (
	"math"
	"strconv"
	"strings"

	"github.com/portcullis-dev/portcullis/internal/conf"
	"github.com/portcullis-dev/portcullis/internal/sla"
)

// SLARow is one integration's month measured from the gateway's records,
// as package sla computes it (gateway refusals are no calls).
type SLARow struct {
	Integration string `json:"integration"`
	Month       string `json:"month"`
	Calls       int    `json:"calls"`
	// Calls leaves out gateway refusals (429 or 503 without a vendor failure).
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
		months = append(months, sla.MonthStart(a.o.Now, a.o.SLAMonths-1-k).Format("2006-01"))
	}
	for _, name := range a.cfg.Names() {
		in := a.cfg.Integrations[name]
		if in == nil {
			continue
		}
		for _, m := range months {
			t := a.u.months[monthKey{name, m}]
			if t == nil || t.Calls == 0 {
				continue
			}
			var target sla.Target
			if in.Vendor != nil {
				target = sla.TargetOf(in.Vendor.SLA)
			}
			res := t.Result(target)
			row := SLARow{Integration: name, Month: m, Calls: res.Calls, VendorFailed: res.Failed, Met: res.Met(),
				Uptime: res.Uptime, P99MS: res.P99MS, SLAUptime: res.TargetUptime, SLAP99MS: res.TargetP99MS}
			p := "integrations." + name + ".vendor.sla"
			if !res.UptimeMet {
				a.add(SLAUptimeBreach, conf.Warning, name+" vendor", p+".uptime",
					"Raise it with the vendor (service credits) and check that the breaker and fallbacks covered the failures.",
					"%s: uptime %s%% (%d of %d calls failed by the vendor) is below the promised %s%%",
					m, pct(res.Uptime), res.Failed, res.Calls, pct(res.TargetUptime))
			}
			if !res.P99Met {
				a.add(SLALatencyBreach, conf.Warning, name+" vendor", p+".p99_latency",
					"Raise it with the vendor; check the integration's timeouts still fit.",
					"%s: p99 latency %.0fms is above the promised %.0fms", m, res.P99MS, res.TargetP99MS)
			}
			a.r.SLA = append(a.r.SLA, row)
		}
	}
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
