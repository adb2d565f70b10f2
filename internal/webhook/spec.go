package webhook

import (
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/portcullis-dev/portcullis/internal/conf"
)

// Defaults of a `webhooks.NAME` block.
const (
	// DefaultTolerance is how far a signed timestamp may be from now.
	DefaultTolerance = 5 * time.Minute
	// DefaultMaxBodyBytes bounds an event body.
	DefaultMaxBodyBytes = 1 << 20
	// DefaultRateLimit is the per-source request rate per second:
	// generous for a vendor, small next to what a flood would send.
	DefaultRateLimit = 50.0
)

// Spec is one inbound vendor callback (`webhooks.NAME`), received on
// server.webhook_listen. It is plain data; NewHandler and NewForwarder
// compile provisioned Specs. That two webhooks do not share a path, and
// that forward_to is on internal_egress.allow, span several Specs and are
// checked by the config package.
type Spec struct {
	// Path is where the vendor posts, e.g. /webhooks/payments. Required;
	// starts with /.
	Path string `yaml:"path"`
	// Scheme is the signature scheme: standard (Standard Webhooks),
	// stripe, github, slack, or hmac_sha256 (configured by Header,
	// Encoding, Prefix, TimestampHeader and Signed). Required.
	Scheme string `yaml:"scheme"`
	// Secrets are references to the signing secrets; two during a
	// rotation (either verifies). At least one is required.
	Secrets []conf.SecretRef `yaml:"secrets"`
	// Tolerance is how far the signed timestamp may be from now, in
	// either direction. Default 5m.
	Tolerance conf.Duration `yaml:"tolerance"`
	// ForwardTo is the internal URL verified events are delivered to
	// (durably, with retries). Its host:port must be on
	// internal_egress.allow. Default empty: events are only recorded.
	ForwardTo string `yaml:"forward_to"`
	// ForwardSecret re-signs forwarded webhooks (Standard Webhooks
	// scheme), so the internal service verifies the gateway. Required
	// with forward_to.
	ForwardSecret conf.SecretRef `yaml:"forward_secret"`
	// Header names the signature header (scheme hmac_sha256). Required there.
	Header string `yaml:"header"`
	// Encoding of the signature, hex or base64 (scheme hmac_sha256).
	// Required there.
	Encoding string `yaml:"encoding"`
	// Prefix before the signature in the header, e.g. "sha256="
	// (scheme hmac_sha256). Default empty.
	Prefix string `yaml:"prefix"`
	// TimestampHeader names the header carrying the Unix timestamp
	// (scheme hmac_sha256). Default empty: no timestamp check.
	TimestampHeader string `yaml:"timestamp_header"`
	// Signed is what the HMAC covers: body, or timestamp.body (the
	// timestamp, a dot, then the body). Default body.
	Signed string `yaml:"signed"`
	// MaxBodyBytes bounds an event body. Default 1MiB.
	MaxBodyBytes conf.Size `yaml:"max_body_bytes"`
	// RateLimit caps requests per source address (IPv6 by /64), with a
	// burst of two seconds' worth. Default 50/s.
	RateLimit conf.Rate `yaml:"rate_limit"`
	// Schema is an optional JSON schema file for the event body, relative
	// to the config file. Default empty: any JSON body.
	Schema string `yaml:"schema"`
}

// Provision fills defaults. It is idempotent, and the constructors run it
// on their own copy, so a Spec built in code gets the file's defaults.
func (s *Spec) Provision() {
	if s == nil {
		return
	}
	// 0 (or less) has always meant the default: a webhook is never
	// verified with no tolerance, nor refused for any body.
	if s.Tolerance.D <= 0 {
		s.Tolerance.D = DefaultTolerance
	}
	if s.MaxBodyBytes.N <= 0 {
		s.MaxBodyBytes.N = DefaultMaxBodyBytes
	}
	if s.RateLimit.PerSecond <= 0 {
		s.RateLimit.PerSecond = DefaultRateLimit
	}
}

// Validate records every problem of a provisioned Spec, with paths
// relative to the webhook block.
func (s *Spec) Validate(r *conf.Report) {
	if s == nil {
		r.Errorf("", "empty webhook")
		return
	}
	if !strings.HasPrefix(s.Path, "/") {
		r.Errorf("path", "must start with /")
	}
	switch s.Scheme {
	case "standard", "stripe", "github", "slack":
	case "hmac_sha256":
		if !httpguts.ValidHeaderFieldName(s.Header) {
			r.Errorf("header", "required for scheme hmac_sha256")
		}
		if s.Encoding != "hex" && s.Encoding != "base64" {
			r.Errorf("encoding", "must be hex or base64")
		}
		if s.Signed != "" && s.Signed != "body" && s.Signed != "timestamp.body" {
			r.Errorf("signed", "must be body or timestamp.body")
		}
	default:
		r.Errorf("scheme", "must be standard, stripe, github, slack or hmac_sha256")
	}
	if len(s.Secrets) == 0 {
		r.Errorf("secrets", "at least one secret reference is required")
	}
	if s.ForwardTo != "" {
		conf.HTTPURL(r, "forward_to", s.ForwardTo)
		if !s.ForwardSecret.Given() {
			r.Errorf("forward_secret", "required with forward_to: internal services verify the gateway's own signature")
		}
	}
}

// provisioned returns a provisioned copy of s; the caller's Spec is never
// written to.
func provisioned(s *Spec) *Spec {
	c := *s
	c.Provision()
	return &c
}
