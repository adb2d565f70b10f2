package lint

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/internal/chaos"
	"github.com/portcullis-dev/portcullis/internal/conf"
	"github.com/portcullis-dev/portcullis/internal/config"
)

// sensitiveClasses are the vendor data classes whose writes need a
// justification.
var sensitiveClasses = []string{"pii", "payment"}

var writeMethods = []string{"POST", "PUT", "PATCH", "DELETE"}

func (c *checker) rules() {
	cfg := c.cfg
	c.server()
	c.identities()
	for _, name := range cfg.Names() {
		if in := cfg.Integrations[name]; in != nil {
			c.integration(name, in)
		}
	}
	c.chaos()
}

func (c *checker) server() {
	host, _, err := net.SplitHostPort(c.cfg.Server.AdminListen)
	if err != nil {
		return // config validation reports it
	}
	switch {
	case host == "localhost":
	case host == "":
		c.add(conf.AdminExposed, "server.admin_listen", "", "admin API listens on every interface (%q): /metrics, /api/v1 and the chaos API are reachable from the network", c.cfg.Server.AdminListen)
	default:
		ip, err := netip.ParseAddr(host)
		if err == nil && ip.IsUnspecified() {
			c.add(conf.AdminExposed, "server.admin_listen", "", "admin API listens on every interface (%q): /metrics, /api/v1 and the chaos API are reachable from the network", c.cfg.Server.AdminListen)
		} else if err == nil && !ip.IsLoopback() {
			c.add(conf.AdminExposed, "server.admin_listen", "", "admin API listens on %s, beyond loopback", host)
		}
	}
}

// identities finds certificate subjects given to two callers (shared token
// hashes are reported by config validation).
func (c *checker) identities() {
	owner := map[string]string{}
	for _, name := range sortedKeys(c.cfg.Callers) {
		cl := c.cfg.Callers[name]
		if cl == nil {
			continue
		}
		for i, s := range cl.MTLSSubjects {
			if other, ok := owner[s]; ok && other != name {
				c.add(conf.SharedIdentity, fmt.Sprintf("callers.%s.mtls_subjects[%d]", name, i), "",
					"certificate subject %q is also given to caller %q: either caller can act as the other", s, other)
				continue
			}
			owner[s] = name
		}
	}
}

func (c *checker) integration(name string, in *config.Integration) {
	p := "integrations." + name
	for i, a := range in.Egress.Allow {
		h, _, err := net.SplitHostPort(a)
		if err == nil && net.ParseIP(h) != nil {
			c.add(conf.IPEgress, fmt.Sprintf("%s.egress.allow[%d]", p, i), "",
				"egress allows the IP address %s: TLS cannot check the vendor's name, and the address may be reassigned", h)
		}
	}
	if u, err := url.Parse(in.Upstream); err == nil && net.ParseIP(u.Hostname()) != nil && !c.reported[p+".upstream"] {
		c.add(conf.IPEgress, p+".upstream", "", "upstream is the IP address %s, not the vendor's name", u.Hostname())
	}
	if len(in.Egress.AllowCIDRs) > 0 {
		c.add(conf.PrivateEgress, p+".egress.allow_cidrs", "Keep allow_cidrs to the vendor's own range, as narrow as it goes.",
			"egress re-allows internal ranges %s", strings.Join(in.Egress.AllowCIDRs, ", "))
	}
	if px := in.Proxy; px != nil && (px.Mode == "open" || px.Mode == "report") && len(in.Egress.AllowCIDRs) > 0 {
		c.add(conf.OpenProxyCIDRs, p+".proxy.mode", "",
			"proxy.mode %s lets this integration's callers tunnel to any host and port whose address is in allow_cidrs %s (databases, admin ports), not only to egress.allow",
			px.Mode, strings.Join(in.Egress.AllowCIDRs, ", "))
	}
	if cr := in.Credential; cr != nil {
		if cr.Type == "oauth2_client_credentials" {
			if u, err := url.Parse(cr.TokenURL); err == nil && u.Scheme == "http" && !isLoopback(u.Hostname()) {
				c.add(conf.PlainHTTP, p+".credential.token_url", "", "token_url is plain http: the client secret and the token cross the network unencrypted")
			}
		}
		if !cr.MaxAge.IsSet() && cr.MaxAge.D == 0 {
			c.add(conf.NoMaxAge, p+".credential", "", "credential has no max_age, so no one is told when it is due for rotation")
		}
	}
	if in.CircuitBreaker == nil {
		c.add(conf.NoBreaker, p, "", "no circuit_breaker: when the vendor fails, every call still waits for it and piles up")
	}
	if in.RateLimit == nil {
		c.add(conf.NoRateLimit, p, "", "no rate_limit: a runaway caller can exhaust the vendor quota (and the bill)")
	}
	switch v := in.Validate; {
	case v == nil:
		c.add(conf.NoValidation, p, "", "no validate block: vendor responses reach callers unchecked")
	case v.Mode == "off":
		c.add(conf.NoValidation, p+".validate.mode", "", "response validation is off")
	case v.Mode == "report":
		c.add(conf.NoValidation, p+".validate.mode", "Switch to mode: enforce once the reports are clean.", "response validation only reports: a malformed vendor body still reaches callers")
	}
	c.routes(p, in)
	c.stateUse(p, in)
}

func (c *checker) routes(p string, in *config.Integration) {
	all := len(c.cfg.Callers)
	sensitive := ""
	if in.Vendor != nil {
		for _, dc := range in.Vendor.DataClasses {
			if slices.Contains(sensitiveClasses, strings.ToLower(dc)) {
				sensitive = strings.ToLower(dc)
				break
			}
		}
	}
	for i, r := range in.Routes {
		if r == nil {
			continue
		}
		rp := fmt.Sprintf("%s.routes[%d]", p, i)
		if all >= 2 && coversAll(r.Callers, c.cfg.Callers) {
			c.add(conf.OpenRoute, rp+".callers", "", "%s %s is open to every caller (%d of %d)", r.Method, r.Path, all, all)
		}
		if sensitive != "" && strings.TrimSpace(in.Justification) == "" && slices.Contains(writeMethods, r.Method) {
			callers := slices.Clone(r.Callers)
			sort.Strings(callers)
			c.add(conf.UnjustifiedWrite, rp, "",
				"caller(s) %s may %s %s on a vendor holding %s data, and the integration has no justification",
				strings.Join(callers, ", "), r.Method, r.Path, sensitive)
		}
	}
}

func coversAll(callers []string, defined map[string]*config.Caller) bool {
	for name := range defined {
		if !slices.Contains(callers, name) {
			return false
		}
	}
	return true
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (c *checker) chaos() {
	ch := c.cfg.Chaos
	if ch.Enabled {
		c.add(conf.ChaosEnabled, "chaos.enabled", "", "fault injection is enabled: anyone with the admin token can make vendors fail")
	}
	for i, f := range ch.Faults {
		p := fmt.Sprintf("chaos.faults[%d]", i)
		if f == nil {
			continue
		}
		if !ch.Enabled {
			c.add(conf.BadChaosFault, p, "Remove the fault or set chaos.enabled: true (test environments only).",
				"fault configured while chaos.enabled is false: the gateway refuses to load it")
		}
		if err := chaos.FromConfig(f, time.Time{}).Validate(); err != nil {
			c.add(conf.BadChaosFault, p, "", "%s", strings.ReplaceAll(err.Error(), "\n", "; "))
			continue
		}
		in, ok := c.cfg.Integrations[f.Integration]
		if !ok || in == nil {
			c.add(conf.BadChaosFault, p+".integration", "", "unknown integration %q", f.Integration)
			continue
		}
		if f.Route != "" && !slices.ContainsFunc(in.Routes, func(r *config.Route) bool { return r != nil && r.Path == f.Route }) {
			c.add(conf.BadChaosFault, p+".route", "", "integration %s has no route %q, so the fault would never fire", f.Integration, f.Route)
		}
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
