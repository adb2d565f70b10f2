package forward

import (
	"time"

	"github.com/portcullis-dev/portcullis/internal/conf"
	"github.com/portcullis-dev/portcullis/internal/egress"
)

// Defaults of a `proxy:` block.
const (
	DefaultMaxTunnels  = 100
	DefaultIdleTimeout = 5 * time.Minute
	DefaultMaxLifetime = time.Hour
)

// ProxySpec is an integration's `proxy:` block: forward-proxy mode (CONNECT
// and absolute-form requests on server.listen) for the integration's
// hosts. Only integrations with one can be reached through a tunnel: a
// plain tunnel bypasses credential injection, route policy and response
// validation (unless Inspect), so reaching an integration that way is
// opt-in. It is plain
// data; New compiles provisioned ProxySpecs. That every connect_callers
// entry names a known caller is checked by the config package, which
// knows the callers.
type ProxySpec struct {
	// Mode is enforce (only egress.allow host:ports), report (also let
	// this integration's callers reach other targets, logging would_deny
	// with the reason) or open (the same, silently). The resolved-address
	// check applies in every mode. Default enforce.
	Mode string `yaml:"mode"`
	// ConnectCallers may tunnel to this integration's hosts even without a
	// route; callers holding a route on the integration always may.
	// Default none.
	ConnectCallers []string `yaml:"connect_callers"`
	// MaxTunnels caps the open tunnels (and in-flight plain requests) of
	// one caller on this integration. Default 100 (0 means the default).
	MaxTunnels int `yaml:"max_tunnels"`
	// NewPerSecond caps new tunnels per caller on this integration, with a
	// burst of one second's worth (at least 1). Default unset: no limit.
	NewPerSecond conf.Rate `yaml:"new_per_second"`
	// IdleTimeout closes a tunnel after no byte in either direction for
	// this long (closed within 1.25x of it). Default 5m.
	IdleTimeout conf.Duration `yaml:"idle_timeout"`
	// MaxLifetime closes any tunnel this old, and bounds a plain request.
	// Default 1h.
	MaxLifetime conf.Duration `yaml:"max_lifetime"`
	// Inspect terminates the caller's TLS inside a tunnel to this
	// integration's hosts with a leaf certificate for the CONNECT host,
	// signed by server.inspect_ca, and runs every request inside through
	// the reverse-mode chain: route policy, header allowlist, credential
	// injection (the caller's own stripped), limits, response validation,
	// one log line each. The caller must trust the inspect CA. Needs mode
	// enforce and server.inspect_ca. Default false: the tunnel carries
	// the caller's TLS end to end.
	Inspect bool `yaml:"inspect"`
}

// Provision fills defaults. It is idempotent; New runs it on its own copy,
// so a ProxySpec built in code gets the file's defaults.
func (s *ProxySpec) Provision() {
	if s == nil {
		return
	}
	if s.Mode == "" {
		s.Mode = string(ModeEnforce)
	}
	// 0 has always meant the default for the three limits below.
	if s.MaxTunnels == 0 {
		s.MaxTunnels = DefaultMaxTunnels
	}
	if s.IdleTimeout.D == 0 {
		s.IdleTimeout.D = DefaultIdleTimeout
	}
	if s.MaxLifetime.D == 0 {
		s.MaxLifetime.D = DefaultMaxLifetime
	}
}

// Validate records every problem of a provisioned ProxySpec, with paths
// relative to the proxy block.
func (s *ProxySpec) Validate(r *conf.Report) {
	if s == nil {
		return
	}
	switch Mode(s.Mode) {
	case ModeEnforce, ModeReport, ModeOpen:
	default:
		r.Errorf("mode", "must be enforce, report or open")
	}
	if s.Inspect && Mode(s.Mode) != ModeEnforce {
		r.Errorf("inspect", "needs mode enforce (got %s): an inspected tunnel may only reach egress.allow hosts", s.Mode)
	}
	if s.MaxTunnels < 0 {
		r.Errorf("max_tunnels", "must not be negative (0 means the default, %d)", DefaultMaxTunnels)
	}
}

// Integration is what the forward proxy takes of one integration with a
// `proxy:` block: the block itself, the integration's egress rules and
// timeouts, and the callers holding a route on it. New ignores an entry
// whose Proxy is nil.
type Integration struct {
	Proxy    *ProxySpec
	Egress   egress.Spec
	Timeouts egress.Timeouts
	// RouteCallers are the callers named on any of the integration's routes.
	RouteCallers []string
	// Upstream is the integration's upstream URL: with proxy.inspect, its
	// host:port is the only target the integration's tunnels may reach.
	Upstream string
}
