package audit

import (
	"fmt"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/internal/conf"
	"github.com/portcullis-dev/portcullis/internal/config"
)

// DefaultReviewEvery applies when a vendor record has last_review but no
// review_every.
const DefaultReviewEvery = 365 * 24 * time.Hour

// policyKeys are the vendor.policies entries a security review asks for,
// with the accepted aliases and the finding each gap raises.
var policyKeys = []struct {
	keys []string
	id   string
	what string
}{
	{[]string{"breach_response"}, NoBreachProcess, "no documented breach-response process (policies.breach_response)"},
	{[]string{"data_retention", "key_retention"}, PolicyMissing, "no key- and data-retention policy (policies.data_retention)"},
	{[]string{"data_access"}, PolicyMissing, "no data-access policy (policies.data_access)"},
	{[]string{"data_deletion"}, PolicyMissing, "no data-deletion policy (policies.data_deletion)"},
	{[]string{"token_rotation"}, NoRotationGuidance, "no token-rotation guidance (policies.token_rotation)"},
}

func (a *auditor) vendors() {
	for _, name := range a.cfg.Names() {
		in := a.cfg.Integrations[name]
		if in == nil {
			continue
		}
		p := "integrations." + name
		subject := name + " vendor"
		v := in.Vendor
		if v == nil {
			a.add(NoVendorRecord, conf.Warning, subject, p,
				"Add a vendor: block (owner, data_classes, certifications, pentest, policies, contract, sla, last_review, review_every) next to the integration.",
				"no vendor due-diligence record")
			continue
		}
		p += ".vendor"
		if strings.TrimSpace(v.Owner) == "" {
			a.add(NoOwner, conf.Warning, subject, p, "Set vendor.owner to the team that answers for this vendor.", "no owner")
		}
		a.certifications(subject, p, v)
		a.pentest(subject, p, v.Pentest)
		for _, pk := range policyKeys {
			if !hasPolicy(v.Policies, pk.keys) {
				a.add(pk.id, conf.Warning, subject, p+".policies", "Ask the vendor for it and link it under vendor.policies."+pk.keys[0]+".", "%s", pk.what)
			}
		}
		a.contract(subject, p, v)
		a.review(subject, p, v)
	}
}

func hasPolicy(m map[string]string, keys []string) bool {
	for _, k := range keys {
		if strings.TrimSpace(m[k]) != "" {
			return true
		}
	}
	return false
}

func (a *auditor) certifications(subject, p string, v *config.Vendor) {
	baseline := false
	for i, c := range v.Certifications {
		cp := fmt.Sprintf("%s.certifications[%d]", p, i)
		n := strings.ToUpper(strings.ReplaceAll(c.Name, " ", ""))
		baseline = baseline || strings.Contains(n, "SOC2") || strings.Contains(n, "ISO27001")
		exp := c.Expires.T
		switch {
		case exp.IsZero():
			a.add(CertExpiring, conf.Warning, subject, cp, "Record the certificate's expiry date (expires: YYYY-MM-DD).", "%s has no expiry date on record", c.Name)
		case !a.o.Now.Before(exp):
			a.add(CertExpired, conf.Error, subject, cp+".expires", "Ask the vendor for the current report or certificate and update expires:.",
				"%s expired on %s (%d days ago)", c.Name, date(exp), days(a.o.Now.Sub(exp)))
		case exp.Sub(a.o.Now) <= a.o.ExpiringWithin:
			a.add(CertExpiring, conf.Warning, subject, cp+".expires", "Ask the vendor now for the renewed report or certificate.",
				"%s expires on %s (in %d days)", c.Name, date(exp), days(exp.Sub(a.o.Now)))
		}
	}
	if !baseline {
		a.add(CertMissing, conf.Warning, subject, p+".certifications",
			"Ask for a SOC 2 Type II report or ISO 27001 certificate and record it with its expiry.",
			"no SOC 2 Type II or ISO 27001 certification on record")
	}
}

func (a *auditor) pentest(subject, p string, pt *config.Pentest) {
	switch {
	case pt == nil || pt.Last.T.IsZero():
		a.add(PentestStale, conf.Warning, subject, p, "Ask for the summary of the vendor's last penetration test and record pentest: {last, summary}.",
			"no penetration test on record")
	case a.o.Now.Sub(pt.Last.T) > a.o.PentestMaxAge:
		a.add(PentestStale, conf.Warning, subject, p+".pentest.last", "Ask for the summary of a penetration test from the last 12 months.",
			"last penetration test %s is %d days old (more than a year)", date(pt.Last.T), days(a.o.Now.Sub(pt.Last.T)))
	}
	if pt != nil && !pt.Last.T.IsZero() && strings.TrimSpace(pt.Summary) == "" {
		a.add(PentestStale, conf.Warning, subject, p+".pentest", "Link the summary under pentest.summary.", "penetration test has no summary on record")
	}
}

func (a *auditor) contract(subject, p string, v *config.Vendor) {
	c := v.Contract
	if c == nil {
		c = &config.Contract{}
	}
	var gaps []string
	if c.IncidentNotification.D == 0 {
		gaps = append(gaps, "incident-notification time")
	}
	if v.SLA == nil || v.SLA.Uptime == 0 {
		gaps = append(gaps, "uptime SLA")
	}
	if c.ResponseSLA.D == 0 {
		gaps = append(gaps, "response SLA")
	}
	if !c.AuditRights {
		gaps = append(gaps, "audit rights")
	}
	if len(gaps) > 0 {
		a.add(ContractGap, conf.Warning, subject, p+".contract",
			"Record the terms (contract: {incident_notification: 24h, response_sla: 4h, audit_rights: true}, sla: {uptime: 99.9}), or negotiate them at renewal.",
			"contract terms missing: %s", strings.Join(gaps, ", "))
	}
}

func (a *auditor) review(subject, p string, v *config.Vendor) {
	if v.LastReview.T.IsZero() {
		a.add(ReviewOverdue, conf.Warning, subject, p, "Review the vendor and record last_review: YYYY-MM-DD and review_every: 365d.", "never reviewed (no last_review)")
		return
	}
	every := v.ReviewEvery.D
	if every == 0 {
		every = DefaultReviewEvery
	}
	due := v.LastReview.T.Add(every)
	if !a.o.Now.Before(due) {
		a.add(ReviewOverdue, conf.Error, subject, p+".last_review", "Review the vendor now and update last_review.",
			"review overdue: last %s, due %s (%d days ago)", date(v.LastReview.T), date(due), days(a.o.Now.Sub(due)))
	}
}
