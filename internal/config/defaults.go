package config

import "time"

// Defaults, documented in examples/portcullis.yaml.
const (
	DefaultListen        = "127.0.0.1:8080"
	DefaultAdminListen   = "127.0.0.1:9090"
	DefaultDataDir       = "./data"
	DefaultMaxRequest    = 1 << 20
	DefaultMaxResponse   = 5 << 20
	DefaultMaxConcurrent = 100
	DefaultShutdownGrace = 30 * time.Second
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
		in.Egress.Provision()
		in.Timeouts.Provision()
		if !in.Limits.MaxRequestBytes.IsSet() && in.Limits.MaxRequestBytes.N == 0 {
			in.Limits.MaxRequestBytes.N = DefaultMaxRequest
		}
		if !in.Limits.MaxResponseBytes.IsSet() && in.Limits.MaxResponseBytes.N == 0 {
			in.Limits.MaxResponseBytes.N = DefaultMaxResponse
		}
		if in.Limits.MaxConcurrent == 0 {
			in.Limits.MaxConcurrent = DefaultMaxConcurrent
		}
		in.Credential.Provision()
		if v := in.Validate; v != nil {
			def(&v.Mode, "enforce")
			if v.MaxDepth == 0 {
				v.MaxDepth = DefaultMaxDepth
			}
		}
		in.Proxy.Provision()
	}
	for _, w := range c.Webhooks {
		w.Provision()
	}
}
