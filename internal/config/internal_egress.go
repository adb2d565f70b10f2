package config

import (
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/portcullis-dev/portcullis/internal/conf"
	"github.com/portcullis-dev/portcullis/internal/egress"
)

// gatewayEgress checks that every connection the gateway opens on its own
// has an explicit allowlist entry: an OAuth2/JWT token_url on its
// integration's egress.allow, and alert sinks, webhook forward_to and the
// OTLP endpoint on internal_egress.allow. Each error names the key whose
// URL is refused and the exact entry to add.
func (v *validator) gatewayEgress() {
	c := v.cfg
	for i, a := range c.InternalEgress.Allow {
		ap := fmt.Sprintf("internal_egress.allow[%d]", i)
		switch {
		case strings.Contains(a, "*"):
			v.errc(conf.InternalEgressEntry, ap, "internal egress entry %q: wildcards are not allowed here (private addresses are reachable through these entries): list each internal host:port", a)
		case !egress.HostPortShape(a):
			v.errc(conf.InternalEgressEntry, ap, "internal egress entry %q: must be host:port, e.g. vault.corp.example:8200 or 127.0.0.1:7000", a)
		}
	}
	for _, name := range sortedKeys(c.Integrations) {
		in := c.Integrations[name]
		if in == nil || in.Credential == nil || in.Credential.TokenURL == "" || len(in.Egress.Allow) == 0 {
			continue
		}
		p := "integrations." + name
		host, port, ok := urlHostPort(in.Credential.TokenURL)
		if !ok || hostOnAllow(host, port, in.Egress.Allow) {
			continue // a malformed URL is reported by credential()
		}
		hp := net.JoinHostPort(host, port)
		v.errc(conf.TokenURLOffEgress, p+".credential.token_url",
			"host %s is not on %s.egress.allow (line %d), so the token request would be refused: add %q to %s.egress.allow (token requests go through the integration's egress guard)",
			hp, p, c.Line(p+".egress.allow"), hp, p)
	}
	for i, s := range c.Alerts.Sinks {
		if s != nil && s.Type == "webhook" {
			v.internalTarget(fmt.Sprintf("alerts.sinks[%d].url", i), s.URL)
		}
	}
	for _, name := range sortedKeys(c.Webhooks) {
		if w := c.Webhooks[name]; w != nil && w.ForwardTo != "" {
			v.internalTarget("webhooks."+name+".forward_to", w.ForwardTo)
		}
	}
	if c.Tracing.OTLPEndpoint != "" {
		v.internalTarget("tracing.otlp_endpoint", c.Tracing.OTLPEndpoint)
	}
}

// internalTarget reports a URL whose host:port is not on
// internal_egress.allow. Only the host and port are quoted: the rest of an
// alert URL (a Slack incoming-webhook path) is a credential.
func (v *validator) internalTarget(path, raw string) {
	host, port, ok := urlHostPort(raw)
	if !ok || hostOnAllow(host, port, v.cfg.InternalEgress.Allow) {
		return // a malformed URL is reported where the key is validated
	}
	hp := net.JoinHostPort(host, port)
	if len(v.cfg.InternalEgress.Allow) == 0 {
		v.errc(conf.InternalNotAllowed, path, "host %s is not on internal_egress.allow, so the gateway would refuse to connect: add `internal_egress: {allow: [%q]}` at the top level of the file", hp, hp)
		return
	}
	v.errc(conf.InternalNotAllowed, path, "host %s is not on internal_egress.allow (line %d), so the gateway would refuse to connect: add %q to internal_egress.allow", hp, v.cfg.Line("internal_egress.allow"), hp)
}

// urlHostPort returns the host (without brackets) and port of an http(s)
// URL, the port defaulting to the scheme's.
func urlHostPort(raw string) (host, port string, ok bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", "", false
	}
	port = u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	return u.Hostname(), port, true
}
