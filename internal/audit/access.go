package audit

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/internal/conf"
)

// AccessRow is one route grant (a caller listed on a route) and its use in
// the unused-days window.
type AccessRow struct {
	Integration string    `json:"integration"`
	Method      string    `json:"method"`
	Route       string    `json:"route"`
	Caller      string    `json:"caller"`
	Calls       int       `json:"calls"`
	LastUsed    time.Time `json:"last_used,omitzero"`
}

func (a *auditor) access() {
	if a.u.inWindow == 0 {
		src := a.o.UsageSource
		if src == "" {
			src = "no usage source given"
		}
		a.add(NoUsageData, conf.Info, "usage records", "", "Point the audit at the gateway's records: --data-dir (embedded store), the config's Redis, or --usage FILE.",
			"no usage records between %s and %s (%s): the unused-credential, caller, route and scope checks were skipped", date(a.r.UnusedSince), date(a.o.Now), src)
	}
	used := a.u.inWindow > 0
	for _, name := range sortedKeys(a.cfg.Callers) {
		if used && a.u.callers[name].calls == 0 {
			a.add(CallerUnused, conf.Warning, "caller "+name, "callers."+name,
				"If the service is gone, delete the caller and its tokens; otherwise check that it still calls through the gateway.",
				"no call in %d days (last call: %s): remove leftover keys from old projects", a.o.UnusedDays, a.lastUse("caller:"+name))
		}
	}
	for _, name := range a.cfg.Names() {
		in := a.cfg.Integrations[name]
		if in == nil {
			continue
		}
		for i, r := range in.Routes {
			if r == nil {
				continue
			}
			var keep, drop []string
			for _, c := range r.Callers {
				u := a.u.grants[grantKey{name, r.Method, r.Path, c}]
				a.r.Access = append(a.r.Access, AccessRow{name, r.Method, r.Path, c, u.calls, u.last})
				if u.calls > 0 {
					keep = append(keep, c)
				} else {
					drop = append(drop, c)
				}
			}
			if !used || len(drop) == 0 {
				continue
			}
			p := fmt.Sprintf("integrations.%s.routes[%d]", name, i)
			fix := "Remove this route: no caller used it."
			if len(keep) > 0 {
				fix = fmt.Sprintf("Narrow it to: - {method: %s, path: %q, callers: [%s]}", r.Method, r.Path, strings.Join(keep, ", "))
			}
			a.add(RouteGrantUnused, conf.Warning, name+" "+r.Method+" "+r.Path, p, fix,
				"granted to %s but not used by %s in %d days (least privilege)", strings.Join(r.Callers, ", "), strings.Join(drop, ", "), a.o.UnusedDays)
		}
		a.scopes(name)
	}
}

// scopes compares the OAuth scopes an integration requests with those
// its calls carried (UsageRecord.Scopes, the scopes granted on the token
// used). The audit cannot tell which scope a call needed, only which were
// in effect: a requested scope never in effect is not needed by any call
// the gateway made; one in effect but not requested was granted beyond
// the request.
func (a *auditor) scopes(name string) {
	in := a.cfg.Integrations[name]
	if in.Credential == nil || len(in.Credential.Scopes) == 0 || a.u.integ[name].calls == 0 {
		return
	}
	seen := a.u.scopes[name]
	if len(seen) == 0 {
		return // the gateway did not record scopes for this credential type
	}
	p := "integrations." + name + ".credential.scopes"
	var unused []string
	for _, s := range in.Credential.Scopes {
		if seen[s] == 0 {
			unused = append(unused, s)
		}
	}
	if len(unused) > 0 {
		keep := slices.DeleteFunc(slices.Clone(in.Credential.Scopes), func(s string) bool { return slices.Contains(unused, s) })
		fix := "Stop requesting them: scopes: [" + strings.Join(keep, ", ") + "]"
		if len(keep) == 0 {
			fix = "Find which scope the calls need; none of those requested was ever granted."
		}
		a.add(ScopeUnused, conf.Warning, name+" credential", p, fix,
			"scope(s) %s requested but in effect on none of %d calls in %d days", strings.Join(unused, ", "), a.u.integ[name].calls, a.o.UnusedDays)
	}
	var extra []string
	for s := range seen {
		if !slices.Contains(in.Credential.Scopes, s) {
			extra = append(extra, s)
		}
	}
	sort.Strings(extra)
	if len(extra) > 0 {
		a.add(ScopeNotRequested, conf.Warning, name+" credential", p,
			"Restrict the OAuth client at the vendor to the scopes listed in the config.",
			"the vendor granted scope(s) %s that the config does not request", strings.Join(extra, ", "))
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
