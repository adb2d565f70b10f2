package egress

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// NewInternalPolicy compiles the allowlist of the gateway's own connections
// (`internal_egress.allow`: alert sinks, webhook forward_to, Vault, OTLP).
// It is a Policy like any integration's, with two differences: wildcards
// are refused (each internal target is named), and the listed hosts may
// resolve to private, loopback and other internal addresses, which is where
// internal services live. Cloud metadata addresses stay denied, as with
// AllowPrivate. resolver nil means net.DefaultResolver.
func NewInternalPolicy(allow []string, resolver *net.Resolver) (*Policy, error) {
	var errs []error
	for i, s := range allow {
		if strings.Contains(s, "*") {
			errs = append(errs, fmt.Errorf("allow[%d] %q: wildcards are not allowed for internal targets", i, s))
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, errors.Join(errs...))
	}
	return NewPolicy(Config{Allow: allow, AllowPrivate: true, Resolver: resolver})
}

// Client returns an HTTP client for requests the gateway itself sends
// through p (token endpoints, alert sinks, webhook forwarding, Vault, OTLP):
// a fresh Transport (dial-time address check, no proxy from the
// environment), the given overall timeout, and no redirects followed. A
// 3xx is returned to the caller as the response: following it would carry
// the request, and any credential on it, to a host nobody allow-listed.
func (p *Policy) Client(timeout time.Duration) *http.Client {
	return &http.Client{Transport: p.Transport(), Timeout: timeout, CheckRedirect: NoRedirects}
}

// NoRedirects is an http.Client CheckRedirect that returns a 3xx response
// as it is instead of following it.
func NoRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// CLITransport returns a transport for CLI commands that talk to an address
// the operator gave them (the admin API for `portcullis chaos` and `drill`,
// the demo's own loopback gateway). It uses no proxy from the environment,
// so HTTPS_PROXY cannot send an admin token elsewhere, and no allowlist:
// the operator chose the target. It is never used for connections the
// gateway opens on its own; those go through a Policy.
func CLITransport() *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: DefaultConnectTimeout}).DialContext,
		TLSHandshakeTimeout:   DefaultTLSHandshakeTimeout,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          16,
		IdleConnTimeout:       DefaultIdleConnTimeout,
		ExpectContinueTimeout: expectContinueTimeout,
	}
}
