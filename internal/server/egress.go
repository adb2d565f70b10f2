package server

import (
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/internal/egress"
)

// Timeouts of the gateway's own HTTP clients (a request context may end
// them sooner).
const (
	tokenClientTimeout = 10 * time.Second
	vaultClientTimeout = 10 * time.Second
	alertClientTimeout = 5 * time.Second
	otlpClientTimeout  = 10 * time.Second
	forwardTimeout     = 30 * time.Second
)

// internalPolicy compiles internal_egress.allow: the only hosts the
// gateway connects to on its own (alert sinks, webhook forward_to, Vault,
// OTLP), each through the same dial-time address check as vendor calls.
func internalPolicy(cfg *config.Config) (*egress.Policy, error) {
	p, err := egress.NewInternalPolicy(cfg.InternalEgress.Allow, nil)
	if err != nil {
		return nil, fmt.Errorf("internal_egress.allow (line %d): %w", cfg.Line("internal_egress.allow"), err)
	}
	return p, nil
}

// checkVaultEgress refuses to start when the config reads vault:
// references but the Vault/OpenBao server named by VAULT_ADDR (or
// BAO_ADDR) is not on internal_egress.allow: every read would be refused
// at dial time, so say it now, with the entry to add.
func checkVaultEgress(cfg *config.Config, p *egress.Policy, addr string) error {
	if addr == "" || !usesVault(cfg) {
		return nil // no vault: reference, or the resolver reports the missing address
	}
	u, err := url.Parse(addr)
	if err != nil || u.Hostname() == "" {
		return fmt.Errorf("VAULT_ADDR/BAO_ADDR: not a URL such as https://vault.corp.example:8200")
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	if p.AllowsHostPort(u.Hostname(), port) {
		return nil
	}
	hp := net.JoinHostPort(u.Hostname(), port)
	if line := cfg.Line("internal_egress.allow"); line > 0 && len(cfg.InternalEgress.Allow) > 0 {
		return fmt.Errorf("the Vault server of VAULT_ADDR/BAO_ADDR, %s, is not on internal_egress.allow (line %d): add %q to internal_egress.allow", hp, line, hp)
	}
	return fmt.Errorf("the Vault server of VAULT_ADDR/BAO_ADDR, %s, is not on internal_egress.allow: add `internal_egress: {allow: [%q]}` at the top level of the config", hp, hp)
}

// usesVault reports whether any secret reference of cfg is vault:.
func usesVault(cfg *config.Config) bool {
	vault := func(r config.SecretRef) bool { return r.Scheme == "vault" }
	if vault(cfg.Server.AdminToken) {
		return true
	}
	for _, in := range cfg.Integrations {
		if in == nil {
			continue
		}
		if c := in.Credential; c != nil && (vault(c.Secret) || vault(c.ClientSecret) || vault(c.PrivateKey)) {
			return true
		}
	}
	for _, w := range cfg.Webhooks {
		if w == nil {
			continue
		}
		if vault(w.ForwardSecret) {
			return true
		}
		for _, s := range w.Secrets {
			if vault(s) {
				return true
			}
		}
	}
	return false
}
