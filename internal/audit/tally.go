package audit

import (
	"time"

	"github.com/portcullis-dev/portcullis/internal/sla"
	"github.com/portcullis-dev/portcullis/internal/store"
)

// tally is what the audit keeps of the usage records: a handful of counters
// per caller, route grant, credential version and month, never the records.
type tally struct {
	since, until time.Time
	total        int
	// inWindow counts records at or after since.
	inWindow int
	callers  map[string]use              // caller → use in window
	integ    map[string]use              // integration → use in window
	grants   map[grantKey]use            // (integration, method, route, caller) → use in window
	versions map[string]map[string]vspan // integration → version → first/last seen (whole scan)
	latest   map[string]versionAt        // integration → newest record's version
	scopes   map[string]map[string]int   // integration → scope → calls in window carrying it
	months   map[monthKey]*sla.Tally
	// lastEver is the newest record of each integration and of each
	// caller ("caller:NAME") over the whole scan.
	lastEver map[string]time.Time
}

type use struct {
	calls int
	last  time.Time
}

type grantKey struct{ integration, method, route, caller string }

type vspan struct{ first, last time.Time }

type versionAt struct {
	version string
	at      time.Time
}

type monthKey struct {
	integration string
	month       string // 2026-10
}

func newTally(since, until time.Time) *tally {
	return &tally{since: since, until: until, callers: map[string]use{}, integ: map[string]use{},
		grants: map[grantKey]use{}, versions: map[string]map[string]vspan{}, latest: map[string]versionAt{},
		scopes: map[string]map[string]int{}, months: map[monthKey]*sla.Tally{}, lastEver: map[string]time.Time{}}
}

func bump(m map[string]use, k string, t time.Time) {
	u := m[k]
	u.calls++
	if t.After(u.last) {
		u.last = t
	}
	m[k] = u
}

func (t *tally) add(r store.UsageRecord) {
	t.total++
	at := r.Time.UTC()
	if v := r.CredentialVersion; v != "" {
		vs := t.versions[r.Integration]
		if vs == nil {
			vs = map[string]vspan{}
			t.versions[r.Integration] = vs
		}
		s, ok := vs[v]
		if !ok || at.Before(s.first) {
			s.first = at
		}
		if at.After(s.last) {
			s.last = at
		}
		vs[v] = s
		if l := t.latest[r.Integration]; !at.Before(l.at) {
			t.latest[r.Integration] = versionAt{v, at}
		}
	}
	for _, k := range []string{r.Integration, "caller:" + r.Caller} {
		if at.After(t.lastEver[k]) {
			t.lastEver[k] = at
		}
	}
	mk := monthKey{r.Integration, at.Format("2006-01")}
	m := t.months[mk]
	if m == nil {
		m = &sla.Tally{}
		t.months[mk] = m
	}
	m.Add(r)
	if at.Before(t.since) {
		return
	}
	t.inWindow++
	bump(t.callers, r.Caller, at)
	bump(t.integ, r.Integration, at)
	g := grantKey{r.Integration, r.Method, r.Route, r.Caller}
	u := t.grants[g]
	u.calls++
	if at.After(u.last) {
		u.last = at
	}
	t.grants[g] = u
	if len(r.Scopes) > 0 {
		s := t.scopes[r.Integration]
		if s == nil {
			s = map[string]int{}
			t.scopes[r.Integration] = s
		}
		for _, sc := range r.Scopes {
			s[sc]++
		}
	}
}
