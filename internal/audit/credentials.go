package audit

import (
	"fmt"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/internal/conf"
	"github.com/portcullis-dev/portcullis/internal/config"
)

// CredentialRow is one integration's credential as the audit sees it.
type CredentialRow struct {
	Integration string   `json:"integration"`
	Type        string   `json:"type"`
	Refs        []string `json:"refs"`
	// Version is the credential version of the newest usage record.
	Version string `json:"version,omitempty"`
	// InUseSince is the first recorded use of Version (a lower bound of
	// when it was created).
	InUseSince time.Time `json:"in_use_since,omitzero"`
	// FileModified is the modification time of a file: secret.
	FileModified time.Time `json:"file_modified,omitzero"`
	// AgeDays is the best known lower bound of the age; -1 when unknown.
	AgeDays    int       `json:"age_days"`
	AgeBasis   string    `json:"age_basis,omitempty"`
	MaxAgeDays int       `json:"max_age_days,omitempty"`
	LastUsed   time.Time `json:"last_used,omitzero"`
	Status     string    `json:"status"`
}

var staticTypes = map[string]bool{"bearer": true, "header": true, "basic": true, "query": true}

func secretRefs(c *config.Credential) []config.SecretRef {
	var out []config.SecretRef
	for _, r := range []config.SecretRef{c.Secret, c.ClientSecret, c.PrivateKey} {
		if r.Scheme != "" {
			out = append(out, r)
		}
	}
	return out
}

func (a *auditor) credentials() {
	for _, name := range a.cfg.Names() {
		in := a.cfg.Integrations[name]
		if in == nil || in.Credential == nil {
			continue
		}
		c := in.Credential
		p := "integrations." + name + ".credential"
		subject := name + " credential"
		row := CredentialRow{Integration: name, Type: c.Type, AgeDays: -1, MaxAgeDays: days(c.MaxAge.D), LastUsed: a.u.lastEver[name]}
		var age time.Duration
		for _, ref := range secretRefs(c) {
			row.Refs = append(row.Refs, ref.Ref())
			if ref.Scheme != "file" {
				continue
			}
			if mt, err := a.o.ModTime(a.relPath(ref.Target)); err == nil {
				mt = mt.UTC()
				if row.FileModified.IsZero() || mt.Before(row.FileModified) {
					row.FileModified = mt
				}
				if d := a.o.Now.Sub(mt); d > age {
					age, row.AgeBasis = d, "file modified "+date(mt)
				}
			}
		}
		if l, ok := a.u.latest[name]; ok {
			row.Version = l.version
		}
		// For static types the recorded version is the secret's; for
		// OAuth2 and JWT it is the short-lived token's, which says nothing
		// about the age of the client secret or key behind it.
		if l, ok := a.u.latest[name]; ok && staticTypes[c.Type] {
			row.InUseSince = a.u.versions[name][l.version].first
			if d := a.o.Now.Sub(row.InUseSince); d > age {
				age, row.AgeBasis = d, fmt.Sprintf("version %s in use since %s", l.version, date(row.InUseSince))
			}
		}
		known := row.AgeBasis != ""
		if known {
			row.AgeDays = days(age)
		}
		switch {
		case c.MaxAge.D > 0 && known && age > c.MaxAge.D:
			row.Status = "too old"
			a.add(CredentialTooOld, conf.Error, subject, p+".max_age",
				"Rotate it at the source ("+strings.Join(row.Refs, ", ")+"); the gateway picks the new value up without a restart.",
				"credential is at least %d days old (%s), past its max_age of %d days", row.AgeDays, row.AgeBasis, row.MaxAgeDays)
		case c.MaxAge.D > 0 && !known:
			row.Status = "age unknown"
			a.add(CredentialAgeUnkown, conf.Info, subject, p,
				"Check the creation time in the secret store, or on a running gateway in GET /api/v1/integrations (credential status).",
				"age unknown offline: %s carries no creation time the audit can read, and no usage record names a version", strings.Join(row.Refs, ", "))
		default:
			row.Status = "ok"
		}
		if a.u.total > 0 && a.u.integ[name].calls == 0 {
			if row.Status == "ok" {
				row.Status = "unused"
			}
			a.add(CredentialUnused, conf.Warning, subject, p,
				"If no service needs this vendor any more, revoke the key at the vendor and remove the integration.",
				"no call used this credential in %d days (last use: %s): a leftover key from an old project?", a.o.UnusedDays, a.lastUse(name))
		}
		a.r.Credentials = append(a.r.Credentials, row)
	}
}

// lastUse is the newest record of key (an integration, or "caller:NAME")
// over the whole scan.
func (a *auditor) lastUse(key string) string {
	if t, ok := a.u.lastEver[key]; ok {
		return date(t)
	}
	return "none recorded"
}
