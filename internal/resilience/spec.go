package resilience

import (
	"math"
	"time"

	"github.com/portcullis-dev/portcullis/internal/conf"
)

// The blocks of an integration this package owns: retry, circuit_breaker,
// rate_limit and limits. Each is the YAML schema with its defaults stated
// on the field; Provision fills them and Validate records every problem
// with its path relative to the block. An absent retry or circuit_breaker
// block (a nil pointer) gets the defaults; an absent rate_limit block means
// no token buckets, though the vendor's own rate-limit headers are still
// obeyed.

// RetrySpec is an integration's retry: block. Retries stay limited to
// safe requests and to the budget.
type RetrySpec struct {
	// Attempts is the total number of tries, including the first: 1 to 10;
	// 1 turns retries off. Default 3.
	Attempts int `yaml:"attempts"`
	// Backoff is the first backoff (exponential, full jitter). Default 100ms.
	Backoff conf.Duration `yaml:"backoff"`
	// MaxBackoff caps the backoff; at least Backoff. Default 2s.
	MaxBackoff conf.Duration `yaml:"max_backoff"`
	// Budget is the share of requests that may be retries, 0 to 1
	// (0.2 = 20%); 0 means the default. Default 0.2.
	Budget float64 `yaml:"budget"`
	// MaxRetryAfter caps how long a vendor's Retry-After is honoured; an
	// explicit 0 never waits for one. Default 10s.
	MaxRetryAfter conf.Duration `yaml:"max_retry_after"`
}

// Provision fills what the file left out. A nil receiver is an absent
// block: Policy gives it the defaults.
func (s *RetrySpec) Provision() {
	if s == nil {
		return
	}
	if s.Attempts == 0 {
		s.Attempts = DefaultAttempts
	}
	s.Backoff.Default(DefaultBackoff)
	s.MaxBackoff.Default(max(DefaultMaxBackoff, s.Backoff.D))
	if s.Budget == 0 {
		s.Budget = DefaultBudgetRatio
	}
	s.MaxRetryAfter.Default(DefaultMaxRetryAfter)
}

// Validate records the problems of a provisioned RetrySpec.
func (s *RetrySpec) Validate(r *conf.Report) {
	if s == nil {
		return
	}
	if s.Attempts < 1 || s.Attempts > 10 {
		r.Errorf("attempts", "must be 1..10 (total tries, including the first)")
	}
	if s.Budget < 0 || s.Budget > 1 {
		r.Errorf("budget", "must be between 0 and 1 (share of requests that may be retries)")
	}
	if s.MaxBackoff.D < s.Backoff.D {
		r.Errorf("max_backoff", "shorter than retry.backoff")
	}
}

// Policy is the RetryPolicy of s; perTry is timeouts.per_try.
func (s *RetrySpec) Policy(perTry time.Duration) RetryPolicy {
	if s == nil {
		s = &RetrySpec{}
		s.Provision()
	}
	return RetryPolicy{Attempts: s.Attempts, Backoff: s.Backoff.D, MaxBackoff: s.MaxBackoff.D,
		MaxRetryAfter: s.MaxRetryAfter.D, PerTry: perTry}
}

// BudgetRatio is the share of requests that may be retries.
func (s *RetrySpec) BudgetRatio() float64 {
	if s == nil || s.Budget == 0 {
		return DefaultBudgetRatio
	}
	return s.Budget
}

// BreakerSpec is an integration's circuit_breaker: block: it opens on a
// failure ratio over a rolling window. A block, when written, states its
// four thresholds; an absent block gets the defaults of all of them.
type BreakerSpec struct {
	// FailureRatio opens the breaker, in (0, 1]. Required (absent block: 0.5).
	FailureRatio float64 `yaml:"failure_ratio"`
	// MinRequests is the calls in the window before it may open, at least
	// 1. Required (absent block: 20).
	MinRequests int `yaml:"min_requests"`
	// Window is the rolling window. Required (absent block: 30s).
	Window conf.Duration `yaml:"window"`
	// OpenFor is how long it stays open before probing. Required (absent
	// block: 15s).
	OpenFor conf.Duration `yaml:"open_for"`
	// HalfOpenProbes are the trial calls let through half-open. Default 3.
	HalfOpenProbes int `yaml:"half_open_probes"`
}

// Provision fills what the file left out.
func (s *BreakerSpec) Provision() {
	if s != nil && s.HalfOpenProbes == 0 {
		s.HalfOpenProbes = DefaultHalfOpenProbes
	}
}

// Validate records the problems of a provisioned BreakerSpec.
func (s *BreakerSpec) Validate(r *conf.Report) {
	if s == nil {
		return
	}
	if s.FailureRatio <= 0 || s.FailureRatio > 1 {
		r.Errorf("failure_ratio", "must be in (0, 1]")
	}
	if s.MinRequests < 1 {
		r.Errorf("min_requests", "must be at least 1")
	}
	if s.Window.D <= 0 || s.OpenFor.D <= 0 {
		r.Errorf("", "window and open_for are required")
	}
	if s.HalfOpenProbes < 0 {
		r.Errorf("half_open_probes", "must not be negative")
	}
}

// Config is the BreakerConfig of s (nil: the defaults).
func (s *BreakerSpec) Config() BreakerConfig {
	if s == nil {
		return BreakerConfig{}
	}
	return BreakerConfig{FailureRatio: s.FailureRatio, MinRequests: s.MinRequests,
		Window: s.Window.D, OpenFor: s.OpenFor.D, HalfOpenProbes: s.HalfOpenProbes}
}

// RateLimitSpec is an integration's rate_limit: block: a token bucket for
// the integration and optionally one per caller.
type RateLimitSpec struct {
	// Rate is the integration's calls, e.g. 100/s. Rate or PerCaller is
	// required.
	Rate conf.Rate `yaml:"rate"`
	// Burst is the integration bucket's size. Default ⌈rate⌉ per second (at
	// least 1).
	Burst int `yaml:"burst"`
	// PerCaller is each caller's calls, e.g. 20/s. Default none.
	PerCaller conf.Rate `yaml:"per_caller"`
	// CallerBurst is each caller bucket's size, with per_caller. Default
	// ⌈per_caller⌉ per second (at least 1).
	CallerBurst int `yaml:"caller_burst"`
	// MaxWait is how long a call may wait for a token before it is
	// refused with 429. Default 0: refused at once.
	MaxWait conf.Duration `yaml:"max_wait"`
	// Global shares the buckets across replicas through the state store
	// (Redis). Default false.
	Global bool `yaml:"global"`
}

// Provision fills what the file left out.
func (s *RateLimitSpec) Provision() {
	if s != nil && s.Burst == 0 && s.Rate.PerSecond > 0 {
		s.Burst = defaultBurst(s.Rate.PerSecond)
	}
}

// Validate records the problems of a provisioned RateLimitSpec.
func (s *RateLimitSpec) Validate(r *conf.Report) {
	if s == nil {
		return
	}
	if s.Rate.PerSecond == 0 && s.PerCaller.PerSecond == 0 {
		r.Errorf("", "set rate and/or per_caller, e.g. rate: 100/s")
	}
	if s.Burst < 0 {
		r.Errorf("burst", "must not be negative")
	}
	if s.CallerBurst < 0 {
		r.Errorf("caller_burst", "must not be negative")
	}
	if s.CallerBurst > 0 && s.PerCaller.PerSecond == 0 {
		r.Errorf("caller_burst", "needs per_caller, e.g. per_caller: 20/s")
	}
}

// Config is the LimiterConfig of s (nil: no token buckets).
func (s *RateLimitSpec) Config() LimiterConfig {
	if s == nil {
		return LimiterConfig{}
	}
	return LimiterConfig{Rate: s.Rate.PerSecond, Burst: s.Burst, PerCaller: s.PerCaller.PerSecond, CallerBurst: s.CallerBurst, MaxWait: s.MaxWait.D}.Buckets()
}

// LimitsSpec is an integration's limits: block.
type LimitsSpec struct {
	// MaxRequestBytes bounds a caller's request body. Default 1MiB.
	MaxRequestBytes conf.Size `yaml:"max_request_bytes"`
	// MaxResponseBytes bounds a vendor's response body. Default 5MiB.
	MaxResponseBytes conf.Size `yaml:"max_response_bytes"`
	// MaxConcurrent bounds the calls in flight to the vendor (the
	// bulkhead); past it calls are refused as overloaded. Default 100.
	MaxConcurrent int `yaml:"max_concurrent"`
}

// Defaults of the limits: block.
const (
	DefaultMaxRequestBytes  = 1 << 20
	DefaultMaxResponseBytes = 5 << 20
	DefaultMaxConcurrent    = 100
)

// Provision fills what the file left out.
func (s *LimitsSpec) Provision() {
	s.MaxRequestBytes.Default(DefaultMaxRequestBytes)
	s.MaxResponseBytes.Default(DefaultMaxResponseBytes)
	if s.MaxConcurrent == 0 {
		s.MaxConcurrent = DefaultMaxConcurrent
	}
}

// Validate records the problems of a provisioned LimitsSpec.
func (s *LimitsSpec) Validate(r *conf.Report) {
	if s.MaxConcurrent < 0 {
		r.Errorf("max_concurrent", "must not be negative")
	}
}

// Settings are one integration's resilience settings, compiled from its
// provisioned Specs.
type Settings struct {
	Retry RetryPolicy
	// BudgetRatio is the share of requests that may be retries.
	BudgetRatio   float64
	Breaker       BreakerConfig
	Limiter       LimiterConfig
	MaxConcurrent int
}

// Compile turns an integration's provisioned retry, circuit_breaker,
// rate_limit and limits blocks, and its timeouts.per_try, into Settings.
func Compile(retry *RetrySpec, breaker *BreakerSpec, limit *RateLimitSpec, limits LimitsSpec, perTry time.Duration) Settings {
	return Settings{
		Retry:         retry.Policy(perTry),
		BudgetRatio:   retry.BudgetRatio(),
		Breaker:       breaker.Config(),
		Limiter:       limit.Config(),
		MaxConcurrent: limits.MaxConcurrent,
	}
}

func defaultBurst(perSecond float64) int {
	return max(1, int(math.Min(math.Ceil(perSecond), math.MaxInt32)))
}
