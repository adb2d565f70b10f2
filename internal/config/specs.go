package config

import (
	"github.com/portcullis-dev/portcullis/internal/anomaly"
	"github.com/portcullis-dev/portcullis/internal/credential"
	"github.com/portcullis-dev/portcullis/internal/egress"
	"github.com/portcullis-dev/portcullis/internal/fallback"
	"github.com/portcullis-dev/portcullis/internal/forward"
	"github.com/portcullis-dev/portcullis/internal/identity"
	"github.com/portcullis-dev/portcullis/internal/mint"
	"github.com/portcullis-dev/portcullis/internal/resilience"
	"github.com/portcullis-dev/portcullis/internal/validate"
	"github.com/portcullis-dev/portcullis/internal/webhook"
)

// The blocks below are owned by the component that uses them: its package
// holds the schema (yaml tags, field docs with defaults), Provision and
// Validate. These names keep config's callers unchanged.
type (
	Egress     = egress.Spec
	Timeouts   = egress.Timeouts
	Credential = credential.Spec
	Proxy      = forward.ProxySpec
	Webhook    = webhook.Spec
	Caller     = identity.Caller
	InspectCA  = mint.CASpec

	Retry          = resilience.RetrySpec
	CircuitBreaker = resilience.BreakerSpec
	RateLimit      = resilience.RateLimitSpec
	Limits         = resilience.LimitsSpec
	Validate       = validate.ConfigSpec
	Fallback       = fallback.Spec
	Sink           = anomaly.SinkSpec
)

// ForwardIntegrations is what the forward proxy (forward.New) takes of
// each integration with a proxy: block.
func (c *Config) ForwardIntegrations() map[string]forward.Integration {
	m := map[string]forward.Integration{}
	for name, in := range c.Integrations {
		if in == nil || in.Proxy == nil {
			continue
		}
		fi := forward.Integration{Proxy: in.Proxy, Egress: in.Egress, Timeouts: in.Timeouts, Upstream: in.Upstream}
		for _, r := range in.Routes {
			if r != nil {
				fi.RouteCallers = append(fi.RouteCallers, r.Callers...)
			}
		}
		m[name] = fi
	}
	return m
}
