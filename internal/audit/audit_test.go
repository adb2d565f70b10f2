package audit

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/portcullis-dev/portcullis/internal/conf"
	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/internal/store"
)

// base is a config whose vendor record is complete as of auditNow; each
// case below changes one thing.
const base = `version: 1
callers:
  billing: {tokens: ["sha256:1111111111111111111111111111111111111111111111111111111111111111"]}
  support: {tokens: ["sha256:2222222222222222222222222222222222222222222222222222222222222222"]}
integrations:
  payments:
    upstream: https://api.pay.example
    egress: {allow: ["api.pay.example:443"]}
    credential: {type: bearer, secret: file:keys/pay.key, max_age: 90d}
    routes:
      - {method: GET, path: "/v1/charges/{id}", callers: [billing, support]}
    timeouts: {connect: 2s, request: 10s}
    vendor:
      owner: payments-team
      certifications: [{name: SOC 2 Type II, expires: 2027-03-01}]
      pentest: {last: 2026-05-01, summary: https://trust.pay.example/pentest}
      policies: {breach_response: u, data_retention: u, data_access: u, data_deletion: u, token_rotation: u}
      contract: {incident_notification: 24h, audit_rights: true, response_sla: 4h}
      sla: {uptime: 99.9, p99_latency: 500ms}
      last_review: 2026-03-01
      review_every: 365d
`

type idSev struct {
	ID       string
	Severity conf.Severity
}

func ids(r Report) []idSev {
	out := []idSev{}
	for _, f := range r.Findings {
		out = append(out, idSev{f.ID, f.Severity})
	}
	return out
}

func load(t *testing.T, src string) *config.Config {
	t.Helper()
	cfg, _, err := config.Parse("/etc/portcullis/portcullis.yaml", []byte(src))
	if err != nil {
		t.Fatalf("test config: %v", err)
	}
	return cfg
}

func rec(day string, caller, method, route string, latency float64, failed bool, version string) store.UsageRecord {
	t, _ := time.Parse(time.DateOnly, day)
	return store.UsageRecord{Time: t.Add(12 * time.Hour), Caller: caller, Integration: "payments", Method: method, Route: route,
		Status: 200, VendorFailed: failed, LatencyMS: latency, CredentialVersion: version}
}

func TestAuditFindings(t *testing.T) {
	used := Records{
		rec("2026-11-20", "billing", "GET", "/v1/charges/{id}", 100, false, "v2"),
		rec("2026-11-21", "support", "GET", "/v1/charges/{id}", 100, false, "v2"),
	}
	recent := func(string) (time.Time, error) { return auditNow.Add(-10 * 24 * time.Hour), nil }
	tests := []struct {
		name    string
		replace [2]string
		usage   Records
		modTime func(string) (time.Time, error)
		want    []idSev
	}{
		{name: "complete-record-clean", usage: used, modTime: recent, want: []idSev{}},
		{name: "no-usage-data-is-info", usage: nil, modTime: recent, want: []idSev{{NoUsageData, conf.Info}}},
		{name: "cert-expired", replace: [2]string{"expires: 2027-03-01", "expires: 2026-11-01"}, usage: used, modTime: recent, want: []idSev{{CertExpired, conf.Error}}},
		{name: "cert-expiring-in-30-days", replace: [2]string{"expires: 2027-03-01", "expires: 2026-12-20"}, usage: used, modTime: recent, want: []idSev{{CertExpiring, conf.Warning}}},
		{name: "no-soc2-or-iso", replace: [2]string{"SOC 2 Type II", "PCI DSS"}, usage: used, modTime: recent, want: []idSev{{CertMissing, conf.Warning}}},
		{name: "pentest-older-than-a-year", replace: [2]string{"last: 2026-05-01", "last: 2025-10-01"}, usage: used, modTime: recent, want: []idSev{{PentestStale, conf.Warning}}},
		{name: "no-breach-process", replace: [2]string{"breach_response: u, ", ""}, usage: used, modTime: recent, want: []idSev{{NoBreachProcess, conf.Warning}}},
		{name: "key-retention-alias-accepted", replace: [2]string{"data_retention: u", "key_retention: u"}, usage: used, modTime: recent, want: []idSev{}},
		{name: "no-token-rotation", replace: [2]string{", token_rotation: u", ""}, usage: used, modTime: recent, want: []idSev{{NoRotationGuidance, conf.Warning}}},
		{name: "no-audit-rights", replace: [2]string{"audit_rights: true", "audit_rights: false"}, usage: used, modTime: recent, want: []idSev{{ContractGap, conf.Warning}}},
		{name: "review-overdue", replace: [2]string{"last_review: 2026-03-01", "last_review: 2025-11-01"}, usage: used, modTime: recent, want: []idSev{{ReviewOverdue, conf.Error}}},
		{name: "no-owner", replace: [2]string{"owner: payments-team", "owner: \"\""}, usage: used, modTime: recent, want: []idSev{{NoOwner, conf.Warning}}},
		{name: "file-secret-older-than-max-age", usage: used,
			modTime: func(p string) (time.Time, error) {
				if p != "/etc/portcullis/keys/pay.key" {
					return time.Time{}, errors.New("unexpected path " + p)
				}
				return auditNow.Add(-100 * 24 * time.Hour), nil
			}, want: []idSev{{CredentialTooOld, conf.Error}}},
		{name: "version-in-use-longer-than-max-age", modTime: func(string) (time.Time, error) { return time.Time{}, errors.New("no file") },
			usage: Records{rec("2026-08-01", "billing", "GET", "/v1/charges/{id}", 100, false, "v2"), used[0], used[1]},
			want:  []idSev{{CredentialTooOld, conf.Error}}},
		{name: "age-unknown-offline", usage: Records{{Time: auditNow.Add(-time.Hour), Caller: "billing", Integration: "payments", Method: "GET", Route: "/v1/charges/{id}"},
			{Time: auditNow.Add(-time.Hour), Caller: "support", Integration: "payments", Method: "GET", Route: "/v1/charges/{id}"}},
			modTime: func(string) (time.Time, error) { return time.Time{}, errors.New("no file") }, want: []idSev{{CredentialAgeUnkown, conf.Info}}},
		{name: "caller-and-grant-unused", usage: used[:1], modTime: recent, want: []idSev{{CallerUnused, conf.Warning}, {RouteGrantUnused, conf.Warning}}},
		{name: "credential-unused", usage: Records{rec("2026-09-01", "billing", "GET", "/v1/charges/{id}", 100, false, "v2"), {Time: auditNow.Add(-time.Hour), Caller: "billing", Integration: "other"}},
			modTime: recent, want: []idSev{{CallerUnused, conf.Warning}, {RouteGrantUnused, conf.Warning}, {CredentialUnused, conf.Warning}}},
		{name: "sla-uptime-and-latency-breached", modTime: recent, usage: Records{
			rec("2026-11-20", "billing", "GET", "/v1/charges/{id}", 900, true, "v2"),
			rec("2026-11-21", "support", "GET", "/v1/charges/{id}", 100, false, "v2")},
			want: []idSev{{SLAUptimeBreach, conf.Warning}, {SLALatencyBreach, conf.Warning}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := base
			if tc.replace[0] != "" {
				if !strings.Contains(src, tc.replace[0]) {
					t.Fatalf("test setup: %q not in base", tc.replace[0])
				}
				src = strings.Replace(src, tc.replace[0], tc.replace[1], 1)
			}
			var u store.Usage
			if tc.usage != nil {
				u = tc.usage
			}
			r, err := Run(t.Context(), load(t, src), u, Options{Now: auditNow, ModTime: tc.modTime})
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, ids(r)); d != "" {
				t.Errorf("findings (-want +got):\n%s\n%+v", d, r.Findings)
			}
			for _, f := range r.Findings {
				if f.Fix == "" || f.Message == "" {
					t.Errorf("finding without message or fix: %+v", f)
				}
			}
		})
	}
}

func TestRouteNarrowingSuggestion(t *testing.T) {
	r, err := Run(t.Context(), load(t, base), Records{rec("2026-11-20", "billing", "GET", "/v1/charges/{id}", 100, false, "v2")},
		Options{Now: auditNow, ModTime: func(string) (time.Time, error) { return auditNow, nil }})
	if err != nil {
		t.Fatal(err)
	}
	var got string
	for _, f := range r.Findings {
		if f.ID == RouteGrantUnused {
			got = f.Fix
		}
	}
	if want := `Narrow it to: - {method: GET, path: "/v1/charges/{id}", callers: [billing]}`; got != want {
		t.Errorf("fix %q, want %q", got, want)
	}
}

func TestSLAMonths(t *testing.T) {
	var recs Records
	for k := range 200 {
		recs = append(recs, rec("2026-10-10", "billing", "GET", "/v1/charges/{id}", float64(k+1), k < 1, "v2"))
	}
	r, err := Run(t.Context(), load(t, base), recs, Options{Now: auditNow, ModTime: func(string) (time.Time, error) { return auditNow, nil }})
	if err != nil {
		t.Fatal(err)
	}
	want := []SLARow{{Integration: "payments", Month: "2026-10", Calls: 200, VendorFailed: 1, Uptime: 99.5, P99MS: 198, SLAUptime: 99.9, SLAP99MS: 500}}
	if d := cmp.Diff(want, r.SLA); d != "" {
		t.Errorf("SLA rows (-want +got):\n%s", d)
	}
}
