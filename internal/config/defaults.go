package config

import "time"

// Defaults, documented in examples/portcullis.yaml.
const (
	DefaultListen        = "127.0.0.1:8080"
	DefaultAdminListen   = "127.0.0.1:9090"
	DefaultDataDir       = "./data"
	DefaultConnect       = 5 * time.Second
	DefaultTLS           = 5 * time.Second
	DefaultHeaders       = 30 * time.Second
	DefaultRequest       = 60 * time.Second
	DefaultIdleConn      = 90 * time.Second
	DefaultMaxRequest    = 1 << 20
	DefaultMaxResponse   = 5 << 20
	DefaultMaxConcurrent = 100
	DefaultSecretTTL     = 5 * time.Minute
	DefaultMaxStale      = time.Hour
	DefaultShutdownGrace = 30 * time.Second
	DefaultTolerance     = 5 * time.Minute
	DefaultMaxDepth      = 64
	// DefaultRedisTimeout is state.redis_timeout's default (the same as
	// store.DefaultTimeout).
	DefaultRedisTimeout = 250 * time.Millisecond
)

func applyDefaults(c *Config) {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	defD := func(d *Duration, v time.Duration) {
		if !d.IsSet() && d.D == 0 {
			d.D = v
		}
	}
	def(&c.Server.Listen, DefaultListen)
	def(&c.Server.AdminListen, DefaultAdminListen)
	defD(&c.Server.ShutdownGrace, DefaultShutdownGrace)
	applyListenerDefaults(c)
	def(&c.State.Backend, "memory")
	def(&c.State.DataDir, DefaultDataDir)
	defD(&c.State.RedisTimeout, DefaultRedisTimeout)
	def(&c.Log.Level, "info")
	def(&c.Log.Format, "json")
	for _, in := range c.Integrations {
		if in == nil {
			continue
		}
		defD(&in.Timeouts.Connect, DefaultConnect)
		defD(&in.Timeouts.TLS, DefaultTLS)
		defD(&in.Timeouts.Headers, DefaultHeaders)
		defD(&in.Timeouts.Request, DefaultRequest)
		defD(&in.Timeouts.IdleConn, DefaultIdleConn)
		if !in.Limits.MaxRequestBytes.IsSet() && in.Limits.MaxRequestBytes.N == 0 {
			in.Limits.MaxRequestBytes.N = DefaultMaxRequest
		}
		if !in.Limits.MaxResponseBytes.IsSet() && in.Limits.MaxResponseBytes.N == 0 {
			in.Limits.MaxResponseBytes.N = DefaultMaxResponse
		}
		if in.Limits.MaxConcurrent == 0 {
			in.Limits.MaxConcurrent = DefaultMaxConcurrent
		}
		if cr := in.Credential; cr != nil {
			defD(&cr.TTL, DefaultSecretTTL)
			defD(&cr.MaxStale, DefaultMaxStale)
			if cr.Type == "oauth2_client_credentials" {
				def(&cr.AuthMethod, "basic")
			}
			if cr.Type == "header" {
				def(&cr.Header, "Authorization")
			}
		}
		if v := in.Validate; v != nil {
			def(&v.Mode, "enforce")
			if v.MaxDepth == 0 {
				v.MaxDepth = DefaultMaxDepth
			}
		}
		if p := in.Proxy; p != nil {
			def(&p.Mode, "enforce")
		}
	}
	for _, w := range c.Webhooks {
		if w == nil {
			continue
		}
		defD(&w.Tolerance, DefaultTolerance)
		if !w.MaxBodyBytes.IsSet() && w.MaxBodyBytes.N == 0 {
			w.MaxBodyBytes.N = DefaultMaxRequest
		}
	}
}
