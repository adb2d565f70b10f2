package config

import "time"

// Defaults, documented in examples/portcullis.yaml.
const (
	DefaultListen        = "127.0.0.1:8080"
	DefaultAdminListen   = "127.0.0.1:9090"
	DefaultDataDir       = "./data"
	DefaultShutdownGrace = 30 * time.Second
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
	def(&c.Server.Listen, DefaultListen)
	def(&c.Server.AdminListen, DefaultAdminListen)
	c.Server.ShutdownGrace.Default(DefaultShutdownGrace)
	applyListenerDefaults(c)
	c.Server.InspectCA.Provision()
	def(&c.State.Backend, "memory")
	def(&c.State.DataDir, DefaultDataDir)
	c.State.RedisTimeout.Default(DefaultRedisTimeout)
	def(&c.Log.Level, "info")
	def(&c.Log.Format, "json")
	for _, in := range c.Integrations {
		if in == nil {
			continue
		}
		in.Egress.Provision()
		in.Timeouts.Provision()
		in.Credential.Provision()
		in.Retry.Provision()
		in.CircuitBreaker.Provision()
		in.RateLimit.Provision()
		in.Limits.Provision()
		in.Validate.Provision()
		in.Fallback.Provision()
		in.Proxy.Provision()
	}
	for _, w := range c.Webhooks {
		w.Provision()
	}
}
