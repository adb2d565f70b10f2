// Package config owns the Portcullis configuration file as a whole: strict
// decoding, the line of every value, the top-level structs, and the checks
// that cross components (callers named by routes, upstream on the egress
// allowlist, unique webhook paths). Each runtime component's block is a
// Spec in the component's package (egress.Spec, credential.Spec,
// resilience.RetrySpec, validate.ConfigSpec, fallback.Spec, ...; the
// aliases are in specs.go) holding its schema, its defaults and its
// validation. config has no side effects: it never opens a socket, reads
// a secret or touches the state store. Turning a validated Config into
// running parts is the gateway's compile step.
//
// Life cycle, as in Caddy: strict decode → Provision (defaults) → Validate
// (every problem, with its path and line) → compile → Close.
package config

import (
	"github.com/portcullis-dev/portcullis/internal/credential"
	"github.com/portcullis-dev/portcullis/internal/egress"
	"github.com/portcullis-dev/portcullis/internal/forward"
	"github.com/portcullis-dev/portcullis/internal/identity"
	"github.com/portcullis-dev/portcullis/internal/webhook"
)

// Config is the whole file.
type Config struct {
	// Version of the file format. Must be 1.
	Version int `yaml:"version"`
	// Server holds the listeners.
	Server Server `yaml:"server"`
	// State chooses where shared and durable state lives.
	State State `yaml:"state"`
	// Log sets the log level and format.
	Log Log `yaml:"log"`
	// Callers are the services allowed to call through the gateway, by name.
	Callers map[string]*identity.Caller `yaml:"callers"`
	// Integrations are the vendor APIs, by name; the name is the first path
	// segment of a reverse-proxy call: http://gateway/{name}/{vendor path}.
	Integrations map[string]*Integration `yaml:"integrations"`
	// Webhooks are the vendor callbacks received on server.webhook_listen
	// (see webhook.Spec).
	Webhooks map[string]*webhook.Spec `yaml:"webhooks"`
	// Alerts says where anomaly and security events go.
	Alerts Alerts `yaml:"alerts"`
	// Chaos enables fault injection (test environments only).
	Chaos Chaos `yaml:"chaos"`
	// Tracing exports OpenTelemetry spans (off by default).
	Tracing Tracing `yaml:"tracing"`
	// InternalEgress lists where the gateway may connect on its own behalf
	// (alert sinks, webhook forward_to, Vault, OTLP).
	InternalEgress InternalEgress `yaml:"internal_egress"`

	// Path is the file the config was read from (not part of the file).
	Path  string `yaml:"-"`
	lines map[string]int
}

// Line returns the line of a config path such as
// "integrations.payments.egress.allow[0]", or of its nearest parent that
// has one; 0 when unknown.
func (c *Config) Line(path string) int { return lineOf(c.lines, path) }

// Server holds the listeners.
type Server struct {
	// Listen is the caller-facing address (reverse proxy and forward proxy).
	// Default 127.0.0.1:8080.
	Listen string `yaml:"listen"`
	// TLS serves Listen over TLS; client_ca turns on mTLS caller identity.
	TLS *TLS `yaml:"tls"`
	// AdminListen serves /healthz, /readyz, /metrics, /api/v1 and /ui/.
	// Default 127.0.0.1:9090. Keep it on loopback or a private network.
	AdminListen string `yaml:"admin_listen"`
	// AdminToken protects /metrics, /api/v1 and /ui/ (health stays open).
	AdminToken SecretRef `yaml:"admin_token"`
	// WebhookListen is the only listener meant to face the internet.
	WebhookListen string `yaml:"webhook_listen"`
	// ShutdownGrace is how long in-flight calls may finish on stop. Default 30s.
	ShutdownGrace Duration `yaml:"shutdown_grace"`
	// Limits bound each listener's connections and read times (see
	// ListenerLimits and docs/listeners.md).
	Limits ListenerLimits `yaml:"limits"`
	// InspectCA is the CA that signs the certificates the gateway presents
	// inside the tunnels of integrations with proxy.inspect (see
	// mint.CASpec and docs/forward-proxy.md). Default none: no integration
	// may set proxy.inspect.
	InspectCA *InspectCA `yaml:"inspect_ca"`
}

// TLS for the caller listener.
type TLS struct {
	Cert     string `yaml:"cert"`
	Key      string `yaml:"key"`
	ClientCA string `yaml:"client_ca"`
}

// State chooses the state backend.
type State struct {
	// Backend is "memory" (one process, embedded store under data_dir) or
	// "redis" (several replicas share one Redis or Valkey).
	Backend string `yaml:"backend"`
	// RedisURL, for backend redis: redis://host:port/db.
	RedisURL string `yaml:"redis_url"`
	// DataDir holds embedded durable state (queued calls, replay ids, usage).
	// Default ./data.
	DataDir string `yaml:"data_dir"`
	// OnRedisDown says what each concern does while Redis is unreachable.
	OnRedisDown *RedisDown `yaml:"on_redis_down"`
	// RedisTimeout, for backend redis, is the longest any one call to Redis
	// may take: waiting for a pooled connection, connecting, go-redis's one
	// retry and the reply all count, and it replaces the redis_url's own
	// dial_timeout, read_timeout, write_timeout, pool_timeout and
	// max_retries. A call that runs out of it counts as Redis down
	// (on_redis_down applies), and until Redis answers a ping again (every
	// 100ms) further calls fail at once instead of waiting. It is how long a
	// Redis outage can hold up a caller, a webhook or a kill-switch read;
	// the shared rate limit gives up sooner, after 100ms (or this, if
	// shorter). Default 250ms; 1ms to 10s. Read at start-up, like the rest
	// of state. The embedded store (backend memory) is local and ignores it.
	RedisTimeout Duration `yaml:"redis_timeout"`
}

// RedisDown is the per-concern behaviour while Redis is unreachable:
// fail_open (keep serving with local state as the floor) or fail_closed.
// Kill switches always keep the last state each replica read.
type RedisDown struct {
	RateLimit string `yaml:"rate_limit"`
	Replay    string `yaml:"replay"`
}

// Log sets logging.
type Log struct {
	// Level is debug, info, warn or error. Default info.
	Level string `yaml:"level"`
	// Format is json (default) or text.
	Format string `yaml:"format"`
}

// Integration is one vendor API.
type Integration struct {
	// Upstream is the vendor's base URL; the vendor path is appended to it.
	Upstream string `yaml:"upstream"`
	// Egress limits where calls may go (see egress.Spec).
	Egress egress.Spec `yaml:"egress"`
	// Credential is injected into every outbound call (see credential.Spec).
	Credential *credential.Spec `yaml:"credential"`
	// RequestHeaders is the allowlist of caller headers forwarded to the vendor
	// (case-insensitive). Everything else is dropped.
	RequestHeaders []string `yaml:"request_headers"`
	// Routes is the deny-by-default policy: only these METHOD + path template
	// pairs are forwarded, each only for the callers listed.
	Routes []*Route `yaml:"routes"`
	// Timeouts for the outbound call (see egress.Timeouts).
	Timeouts egress.Timeouts `yaml:"timeouts"`
	// Retry retries safe requests (see resilience.RetrySpec).
	Retry *Retry `yaml:"retry"`
	// CircuitBreaker stops calling a failing vendor for a while (see
	// resilience.BreakerSpec).
	CircuitBreaker *CircuitBreaker `yaml:"circuit_breaker"`
	// RateLimit caps our call rate to the vendor (see
	// resilience.RateLimitSpec).
	RateLimit *RateLimit `yaml:"rate_limit"`
	// Limits caps sizes and concurrency (see resilience.LimitsSpec).
	Limits Limits `yaml:"limits"`
	// Validate checks vendor responses against an OpenAPI spec (see
	// validate.ConfigSpec).
	Validate *Validate `yaml:"validate"`
	// Fallback serves stale responses or queues calls when the vendor
	// fails (see fallback.Spec).
	Fallback *Fallback `yaml:"fallback"`
	// Proxy configures forward-proxy (CONNECT) access to this integration's
	// hosts (see forward.ProxySpec).
	Proxy *forward.ProxySpec `yaml:"proxy"`
	// Vendor is the due-diligence record, checked by `portcullis audit`.
	Vendor *Vendor `yaml:"vendor"`
	// PropagateTrace sends a W3C traceparent to the vendor (off by default:
	// a trace id tells a vendor which of its calls belong together).
	PropagateTrace bool `yaml:"propagate_trace"`
	// Justification explains why callers may write to a vendor holding pii
	// or payment data (checked by `portcullis check`).
	Justification string `yaml:"justification"`
}

// Route is one allowed METHOD + path template.
type Route struct {
	Method string `yaml:"method"`
	// Path is a template: literal segments and whole-segment {params}.
	Path    string   `yaml:"path"`
	Callers []string `yaml:"callers"`
	// Queue allows `Prefer: respond-async` on this route (fallback.queue).
	Queue bool `yaml:"queue"`
}

// Tracing configures OpenTelemetry. Spans carry integration, route
// template, caller, status and error code; never paths, queries, headers
// or bodies.
type Tracing struct {
	// OTLPEndpoint is an OTLP/HTTP collector URL, e.g. http://127.0.0.1:4318.
	// Empty: no exporter (spans are not recorded).
	OTLPEndpoint string `yaml:"otlp_endpoint"`
	// SampleRatio is the share of new traces sampled (default 1; a caller's
	// sampled traceparent is always followed).
	SampleRatio float64 `yaml:"sample_ratio"`
}

// InternalEgress is the allowlist of the gateway's own connections: those
// it opens for itself rather than for an integration. Every alert sink URL,
// webhook forward_to and tracing.otlp_endpoint must name a host:port listed
// here, and so must the Vault/OpenBao server of VAULT_ADDR (or BAO_ADDR)
// when a vault: reference is used. These connections go through the same
// egress guard as vendor calls (resolved-address check at dial time, no
// proxy from the environment, no redirects followed), except that the hosts
// listed here may resolve to private and loopback addresses: internal
// services usually live there. Cloud metadata addresses (169.254.169.254,
// fd00:ec2::254, ...) stay denied. An empty list lets the gateway open no
// connection of its own.
type InternalEgress struct {
	// Allow lists "host:port" pairs (a DNS name or an IP literal, IPv6 in
	// brackets; no wildcards: name each internal target).
	Allow []string `yaml:"allow"`
}

// Alerts lists event sinks.
type Alerts struct {
	Sinks []*Sink `yaml:"sinks"`
}

// Chaos enables fault injection.
type Chaos struct {
	Enabled bool     `yaml:"enabled"`
	Faults  []*Fault `yaml:"faults"`
}

// Fault is one injected fault.
type Fault struct {
	Integration string   `yaml:"integration"`
	Route       string   `yaml:"route"`
	Kind        string   `yaml:"kind"`
	Probability float64  `yaml:"probability"`
	Latency     Duration `yaml:"latency"`
	Status      int      `yaml:"status"`
	Expires     Duration `yaml:"expires"`
}

// Vendor is the due-diligence record of an integration's vendor.
type Vendor struct {
	Owner          string            `yaml:"owner"`
	DataClasses    []string          `yaml:"data_classes"`
	Certifications []Certification   `yaml:"certifications"`
	Pentest        *Pentest          `yaml:"pentest"`
	Policies       map[string]string `yaml:"policies"`
	Contract       *Contract         `yaml:"contract"`
	SLA            *SLA              `yaml:"sla"`
	LastReview     Date              `yaml:"last_review"`
	ReviewEvery    Duration          `yaml:"review_every"`
}

// Certification such as "SOC 2 Type II".
type Certification struct {
	Name    string `yaml:"name"`
	Expires Date   `yaml:"expires"`
}

// Pentest is the last penetration test.
type Pentest struct {
	Last    Date   `yaml:"last"`
	Summary string `yaml:"summary"`
}

// Contract terms.
type Contract struct {
	IncidentNotification Duration `yaml:"incident_notification"`
	AuditRights          bool     `yaml:"audit_rights"`
	ResponseSLA          Duration `yaml:"response_sla"`
}

// SLA the vendor promises.
type SLA struct {
	Uptime     float64  `yaml:"uptime"`
	P99Latency Duration `yaml:"p99_latency"`
}
