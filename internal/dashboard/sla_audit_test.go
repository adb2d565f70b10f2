package dashboard

import (
	"context"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/audit"
	"github.com/portcullis-dev/portcullis/internal/clock"
	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/internal/store"
)

// TestSLASameAsAudit feeds one store to `portcullis audit` and to the
// dashboard's month-to-date SLA and asserts they report the same month.
// The records hold what the two used to count differently: gateway
// refusals (audit counted them as good calls), a vendor-failed 503,
// unknown latencies, and a p99 between histogram bins.
func TestSLASameAsAudit(t *testing.T) {
	const src = `version: 1
callers:
  billing: {tokens: ["sha256:1111111111111111111111111111111111111111111111111111111111111111"]}
integrations:
  payments:
    upstream: https://api.pay.example
    egress: {allow: ["api.pay.example:443"]}
    routes:
      - {method: GET, path: "/v1/charges/{id}", callers: [billing]}
    vendor:
      owner: payments-team
      sla: {uptime: 99.5, p99_latency: 700ms}
`
	cfg, _, err := config.Parse("/etc/portcullis/portcullis.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 7, 14, 12, 0, 0, 0, time.UTC)
	clk := clock.NewFake(now)
	st := store.NewMemory(clk)
	month := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	var recs []store.UsageRecord
	add := func(n, status int, failed bool, ms func(i int) float64) {
		for i := range n {
			at := month.Add(time.Duration(len(recs)) * 13 * time.Minute)
			recs = append(recs, store.UsageRecord{Time: at, Caller: "billing", Integration: "payments", Method: "GET",
				Route: "/v1/charges/{id}", Status: status, VendorFailed: failed, LatencyMS: ms(i)})
		}
	}
	add(900, 200, false, func(i int) float64 { return 40 + float64(i%600) })
	add(4, 502, true, func(int) float64 { return 1200 })
	add(1, 503, true, func(int) float64 { return 3000 })
	add(60, 503, false, func(int) float64 { return 0.2 }) // open breaker, kill switch
	add(40, 429, false, func(int) float64 { return 0.1 }) // rate limit
	add(5, 200, false, func(int) float64 { return -1 })   // latency unknown
	if last := recs[len(recs)-1].Time; !last.Before(now.Add(-slaSettle)) {
		t.Fatalf("records run to %v, past the settled part of the month", last)
	}
	ctx := context.Background()
	if err := st.AppendUsage(ctx, recs); err != nil {
		t.Fatal(err)
	}

	rep, err := audit.Run(ctx, cfg, st, audit.Options{Now: now, SLAMonths: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.SLA) != 1 {
		t.Fatalf("audit SLA rows: %+v, want one", rep.SLA)
	}
	row := rep.SLA[0]

	tr := newSLATracker(st, clk)
	if err := tr.refresh(ctx); err != nil {
		t.Fatal(err)
	}
	dash := tr.status("payments", cfg.Integrations["payments"].Vendor.SLA)

	if row.Month != dash.Since.Format("2006-01") {
		t.Errorf("month: audit %s, dashboard since %v", row.Month, dash.Since)
	}
	if uint64(row.Calls) != dash.Calls || uint64(row.VendorFailed) != dash.Failed {
		t.Errorf("calls/failed: audit %d/%d, dashboard %d/%d", row.Calls, row.VendorFailed, dash.Calls, dash.Failed)
	}
	if round4(row.Uptime) != dash.Availability {
		t.Errorf("uptime: audit %v, dashboard %v", row.Uptime, dash.Availability)
	}
	if round2(row.P99MS) != dash.P99MS {
		t.Errorf("p99: audit %v ms, dashboard %v ms", row.P99MS, dash.P99MS)
	}
	if row.SLAUptime != dash.TargetUptime || row.SLAP99MS != dash.TargetP99MS {
		t.Errorf("targets: audit %v%%/%vms, dashboard %v%%/%vms", row.SLAUptime, row.SLAP99MS, dash.TargetUptime, dash.TargetP99MS)
	}
	if dash.UptimeMet == nil || dash.P99Met == nil || row.Met != (*dash.UptimeMet && *dash.P99Met) {
		t.Errorf("met: audit %v, dashboard uptime %v p99 %v", row.Met, dash.UptimeMet, dash.P99Met)
	}
	// And the numbers themselves: 910 calls (the 100 refusals left out),
	// 5 failed (uptime 99.45 % < 99.5 %), 905 latency samples.
	if row.Calls != 910 || row.VendorFailed != 5 || row.Met {
		t.Errorf("audit row %+v: want 910 calls, 5 failed, SLA missed", row)
	}
}
