package egress

import (
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/internal/conf"
)

// Spec is one integration's `egress:` block as written in the config file.
// Its life cycle is the one every component Spec follows: the config
// package decodes it, Provision fills defaults, Validate reports every
// problem with its path, and Policy compiles it (with the integration's
// Timeouts) into the Policy that gateway compile, `portcullis check` and
// the forward proxy all use, so there is one place that turns the file's
// settings into dial-time rules. A Spec is plain data: two equal Specs
// (plus CADigest of the file CAFile names) give the same Policy.
type Spec struct {
	// Allow lists the "host:port" pairs the integration may reach. The port
	// is required. A host is a DNS name, "*.example.com" for one or more
	// labels in front of example.com (not example.com itself), or an IP
	// literal ("192.0.2.7:443", "[2001:db8::7]:443"). Required: an empty
	// list is an error, since the integration could reach nothing.
	Allow []string `yaml:"allow"`
	// AllowPrivate permits resolved addresses that are private, loopback,
	// link-local or otherwise internal. For internal vendors and tests
	// only; cloud metadata addresses stay denied even then. Default false.
	AllowPrivate bool `yaml:"allow_private"`
	// AllowCIDRs re-allows specific internal ranges ("10.1.2.0/24")
	// instead of all of them as AllowPrivate does. Prefixes must be
	// canonical (no host bits set). Default none.
	AllowCIDRs []string `yaml:"allow_cidrs"`
	// PinSPKI are base64 SHA-256 hashes of accepted server public keys
	// (HPKP's pin-sha256): some certificate of the verified chain must
	// match one. Pins add to chain verification, never replace it.
	// Default none (chain verification only).
	PinSPKI []string `yaml:"pin_spki"`
	// CAFile is a PEM bundle of the only CAs trusted for this vendor (a
	// private vendor), relative to the working directory. Default empty:
	// the system roots. Policy reads it; Policy.CADigest is the digest of
	// what it read, for the reload key.
	CAFile string `yaml:"ca_file"`
}

// Provision fills Spec defaults. Every default of an egress block is the
// zero value, so it has nothing to do; it exists so that every Spec has
// the same life cycle.
func (s *Spec) Provision() {}

// hostPortShape is the shape of an allowlist entry checked at config
// time; parseAllowEntry is the authority and runs in Policy.
var hostPortShape = regexp.MustCompile(`^(\*\.)?[A-Za-z0-9.-]+:[0-9]{1,5}$|^\[[0-9A-Fa-f:.]+\]:[0-9]{1,5}$`)

// HostPortShape reports whether s looks like an allowlist entry
// ("host:port", "*.host:port" or "[v6]:port"), for messages that name the
// entry before it is compiled.
func HostPortShape(s string) bool { return hostPortShape.MatchString(s) }

// Validate records every problem of s, with paths relative to the egress
// block ("allow[0]"). It opens no file: CAFile and the pins are compiled,
// and reported, by Policy.
func (s *Spec) Validate(r *conf.Report) {
	for i, a := range s.Allow {
		ap := r.At("allow[" + strconv.Itoa(i) + "]")
		if !HostPortShape(a) {
			ap.Errorf("", "must be host:port, e.g. api.vendor.example:443 (got %q)", a)
			continue
		}
		if strings.HasPrefix(a, "*") {
			ap.Coded(conf.WildcardEgress).Warnf("", "wildcard egress %q lets calls reach any subdomain; list hosts one by one where you can", a)
		}
	}
	if len(s.Allow) == 0 {
		r.Errorf("allow", "empty: list the vendor's host:port pairs (deny by default)")
	}
	if s.AllowPrivate {
		r.Coded(conf.PrivateEgress).Warnf("allow_private", "private, loopback and metadata addresses are reachable: only for internal vendors and tests")
	}
}

// Config is the one translation of a Spec and its integration's Timeouts
// into NewPolicy's settings. resolver nil means net.DefaultResolver.
func (s *Spec) Config(t Timeouts, resolver *net.Resolver) Config {
	return Config{
		Allow:                 s.Allow,
		AllowPrivate:          s.AllowPrivate,
		AllowCIDRs:            s.AllowCIDRs,
		PinSPKI:               s.PinSPKI,
		CAFile:                s.CAFile,
		ConnectTimeout:        t.Connect.D,
		TLSHandshakeTimeout:   t.TLS.D,
		ResponseHeaderTimeout: t.Headers.D,
		IdleConnTimeout:       t.IdleConn.D,
		Resolver:              resolver,
	}
}

// Policy compiles s with its integration's Timeouts: what gateway compile,
// `portcullis check` and the forward proxy call. It reads CAFile.
func (s *Spec) Policy(t Timeouts, resolver *net.Resolver) (*Policy, error) {
	return NewPolicy(s.Config(t, resolver))
}

// DialOnly returns the settings of c that decide where a socket may
// connect (allowlist, address rules, connect timeout, resolver), without
// the TLS ones (pins, CA file, handshake and header timeouts), for a
// caller such as the forward proxy's CONNECT tunnels, whose TLS runs end
// to end between the client and the vendor.
func (c Config) DialOnly() Config {
	return Config{Allow: c.Allow, AllowPrivate: c.AllowPrivate, AllowCIDRs: c.AllowCIDRs,
		ConnectTimeout: c.ConnectTimeout, Resolver: c.Resolver}
}

// Defaults of an integration's `timeouts:` block.
const (
	DefaultConnectTimeout = 5 * time.Second
	// DefaultTLSHandshakeTimeout is the documented tls default (5s); it
	// also bounds the handshakes of the gateway's own connections
	// (internal_egress) and of CLI commands.
	DefaultTLSHandshakeTimeout = 5 * time.Second
	DefaultHeadersTimeout      = 30 * time.Second
	DefaultRequestTimeout      = 60 * time.Second
	DefaultIdleConnTimeout     = 90 * time.Second
)

// Timeouts is an integration's `timeouts:` block: the outbound call's
// time limits. Connect, TLS, Headers and IdleConn are the transport's and
// go into the Policy (Spec.Config); Request and PerTry bound the whole
// call and each try, and are read by the gateway and the retry.
type Timeouts struct {
	// Connect bounds one TCP connect. Default 5s.
	Connect conf.Duration `yaml:"connect"`
	// TLS bounds the TLS handshake. Default 5s.
	TLS conf.Duration `yaml:"tls"`
	// Headers bounds the wait for the vendor's response headers after the
	// request is sent. Default 30s.
	Headers conf.Duration `yaml:"headers"`
	// Request bounds the whole call, retries included. Default 60s.
	Request conf.Duration `yaml:"request"`
	// PerTry bounds each try of a retried call; at most Request. Default
	// unset: each try may take what is left of Request.
	PerTry conf.Duration `yaml:"per_try"`
	// IdleConn closes a pooled vendor connection idle this long. Default 90s.
	IdleConn conf.Duration `yaml:"idle_conn"`
}

// Provision fills every timeout left out of the file, or written as 0,
// with its default.
func (t *Timeouts) Provision() {
	t.Connect.Default(DefaultConnectTimeout)
	t.TLS.Default(DefaultTLSHandshakeTimeout)
	t.Headers.Default(DefaultHeadersTimeout)
	t.Request.Default(DefaultRequestTimeout)
	t.IdleConn.Default(DefaultIdleConnTimeout)
}

// Validate records the problems of a provisioned Timeouts, with paths
// relative to the timeouts block.
func (t *Timeouts) Validate(r *conf.Report) {
	if !t.Connect.IsSet() && !t.Request.IsSet() && !t.Headers.IsSet() {
		r.Coded(conf.NoTimeouts).Warnf("", "no timeouts set: defaults apply (connect %s, request %s); set them for this vendor", DefaultConnectTimeout, DefaultRequestTimeout)
	}
	if t.PerTry.D > t.Request.D {
		r.Errorf("per_try", "longer than timeouts.request")
	}
}
