package config

import (
	"time"

	"github.com/portcullis-dev/portcullis/internal/conf"
)

// ListenerLimits bound each listener on its own, so that one listener
// (above all webhook_listen, which faces the internet) can never starve
// another of connections or file descriptors. They take effect at start;
// a reload does not change them (like the listen addresses).
type ListenerLimits struct {
	// Caller is server.listen (reverse and forward proxy). Vendor calls may
	// upload large bodies and run long, so its defaults are generous.
	Caller ListenerLimit `yaml:"caller"`
	// Admin is server.admin_listen (/healthz, /metrics, /api/v1, /ui/).
	Admin ListenerLimit `yaml:"admin"`
	// Webhook is server.webhook_listen. It faces the internet and receives
	// small bodies, so its defaults are tight.
	Webhook ListenerLimit `yaml:"webhook"`
}

// ListenerLimit bounds one listener's connections and how long a client
// may take to send a request. A zero duration set in the file turns that
// limit off; a field left out takes the listener's default.
type ListenerLimit struct {
	// MaxConns is how many connections the listener holds open at once
	// (idle keep-alive and hijacked CONNECT tunnels included). Past it the
	// listener stops accepting: new connections wait in the kernel's accept
	// queue, where they hold no file descriptor of the gateway, until one
	// closes. Defaults: caller 1024, admin 64, webhook 256. At start-up the
	// sum of the listeners' max_conns is checked against the process's open
	// file limit (ulimit -n): see docs/listeners.md.
	MaxConns int `yaml:"max_conns"`
	// IdleTimeout closes a keep-alive connection that waits this long for
	// its next request. Defaults: caller 120s, admin 60s, webhook 15s.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// ReadHeaderTimeout is how long a client may take to send the request
	// line and headers, counted from the first byte of a request (from the
	// accept for a new connection). Defaults: caller 10s, admin 10s,
	// webhook 5s.
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	// ReadTimeout is how long a client may take to send the whole request
	// body, counted from the end of its headers. A body still arriving then
	// is cut: the caller listener answers request_timeout (408), the
	// connection is closed. Defaults: caller 5m (uploads through the
	// gateway may be large), admin 30s, webhook 10s.
	ReadTimeout Duration `yaml:"read_timeout"`
	// BodyStallTimeout cuts a request body that sends nothing for this
	// long, however much time read_timeout still leaves: a stalled upload
	// is let go early while a slow but steady one may run to read_timeout.
	// Defaults: caller 30s, admin 10s, webhook 5s.
	BodyStallTimeout Duration `yaml:"body_stall_timeout"`
}

// Default listener limits (see ListenerLimit).
var (
	DefaultCallerLimit = ListenerLimit{
		MaxConns: 1024, IdleTimeout: Dur(120 * time.Second), ReadHeaderTimeout: Dur(10 * time.Second),
		ReadTimeout: Dur(5 * time.Minute), BodyStallTimeout: Dur(30 * time.Second),
	}
	DefaultAdminLimit = ListenerLimit{
		MaxConns: 64, IdleTimeout: Dur(60 * time.Second), ReadHeaderTimeout: Dur(10 * time.Second),
		ReadTimeout: Dur(30 * time.Second), BodyStallTimeout: Dur(10 * time.Second),
	}
	DefaultWebhookLimit = ListenerLimit{
		MaxConns: 256, IdleTimeout: Dur(15 * time.Second), ReadHeaderTimeout: Dur(5 * time.Second),
		ReadTimeout: Dur(10 * time.Second), BodyStallTimeout: Dur(5 * time.Second),
	}
)

// MaxListenerConns bounds max_conns: a higher cap protects nothing, as no
// process gets that many file descriptors by default.
const MaxListenerConns = 1 << 20

func applyListenerDefaults(c *Config) {
	l := &c.Server.Limits
	l.Caller.fill(DefaultCallerLimit)
	l.Admin.fill(DefaultAdminLimit)
	l.Webhook.fill(DefaultWebhookLimit)
}

func (l *ListenerLimit) fill(d ListenerLimit) {
	if l.MaxConns == 0 {
		l.MaxConns = d.MaxConns
	}
	for _, f := range []struct{ got, def *Duration }{
		{&l.IdleTimeout, &d.IdleTimeout}, {&l.ReadHeaderTimeout, &d.ReadHeaderTimeout},
		{&l.ReadTimeout, &d.ReadTimeout}, {&l.BodyStallTimeout, &d.BodyStallTimeout},
	} {
		f.got.Default(f.def.D)
	}
}

// Listener names, in the order of ListenerLimits' fields.
var listenerNames = []string{"caller", "admin", "webhook"}

// All returns the limits by listener name: caller, admin, webhook.
func (ls *ListenerLimits) All() map[string]*ListenerLimit {
	return map[string]*ListenerLimit{"caller": &ls.Caller, "admin": &ls.Admin, "webhook": &ls.Webhook}
}

func (v *validator) listenerLimits() {
	all := v.cfg.Server.Limits.All()
	for _, name := range listenerNames {
		l, path := all[name], "server.limits."+name
		if l.MaxConns < 1 || l.MaxConns > MaxListenerConns {
			v.errf(path+".max_conns", "must be between 1 and %d (got %d)", MaxListenerConns, l.MaxConns)
		}
		// Negative durations are refused by Duration's parser.
		if l.ReadHeaderTimeout.D == 0 {
			v.warnc(conf.ListenerUnbounded, path+".read_header_timeout", "%s: a client may hold a connection for ever without sending a request", ListenerBoundOff)
		}
		if l.IdleTimeout.D == 0 {
			v.warnc(conf.ListenerUnbounded, path+".idle_timeout", "%s: idle keep-alive connections stay open for ever (they count against max_conns)", ListenerBoundOff)
		}
		if l.ReadTimeout.D == 0 && l.BodyStallTimeout.D == 0 {
			v.warnc(conf.ListenerUnbounded, path+".read_timeout", "%s: with body_stall_timeout 0 too, a client may trickle a request body for ever", ListenerBoundOff)
		}
	}
}

// ListenerBoundOff starts the warning for a server.limits bound set to 0
// (lint rule PC032).
const ListenerBoundOff = "listener bound turned off"

// FDBudget is what `serve` checks against the open file limit: the
// listeners' caps (Inbound), and those plus one outbound connection per
// caller and webhook connection (a vendor call, a webhook forward) and
// Headroom for listeners, the state store, logs and secret backends.
type FDBudget struct {
	Inbound, WithOutbound int
}

// FDHeadroom is the file descriptors kept aside for what is not a client
// connection: the listeners, the embedded store, Redis and Vault pools,
// DNS, logs.
const FDHeadroom = 64

// FDs returns the file descriptor budget of s; webhook says whether the
// webhook listener runs.
func (s *Server) FDs(webhook bool) FDBudget {
	l := s.Limits
	in, out := l.Caller.MaxConns+l.Admin.MaxConns, l.Caller.MaxConns
	if webhook {
		in += l.Webhook.MaxConns
		out += l.Webhook.MaxConns
	}
	return FDBudget{Inbound: in + FDHeadroom, WithOutbound: in + out + FDHeadroom}
}
