package resilience

import (
	"github.com/portcullis-dev/portcullis/internal/config"
)

// Settings are one integration's resilience settings, compiled from its
// config with this package's defaults applied.
type Settings struct {
	Retry RetryPolicy
	// BudgetRatio is the share of requests that may be retries.
	BudgetRatio   float64
	Breaker       BreakerConfig
	Limiter       LimiterConfig
	MaxConcurrent int
}

// FromConfig compiles an integration's retry, circuit_breaker, rate_limit,
// limits.max_concurrent and timeouts.per_try into Settings. An absent retry
// or circuit_breaker block gets the defaults (retries stay limited to safe
// requests and the budget); an absent rate_limit block means no token
// buckets, though the vendor's own rate-limit headers are still obeyed. A
// retry.budget of 0 means DefaultBudgetRatio (set attempts: 1 to turn
// retries off).
func FromConfig(in *config.Integration) Settings {
	s := Settings{
		Retry: RetryPolicy{
			Attempts: DefaultAttempts, Backoff: DefaultBackoff, MaxBackoff: DefaultMaxBackoff,
			MaxRetryAfter: DefaultMaxRetryAfter, PerTry: in.Timeouts.PerTry.D,
		},
		BudgetRatio:   DefaultBudgetRatio,
		MaxConcurrent: in.Limits.MaxConcurrent,
	}
	if r := in.Retry; r != nil {
		if r.Attempts > 0 {
			s.Retry.Attempts = r.Attempts
		}
		if r.Backoff.D > 0 {
			s.Retry.Backoff = r.Backoff.D
		}
		if r.MaxBackoff.D > 0 {
			s.Retry.MaxBackoff = r.MaxBackoff.D
		}
		if r.MaxRetryAfter.IsSet() || r.MaxRetryAfter.D > 0 {
			s.Retry.MaxRetryAfter = r.MaxRetryAfter.D
		}
		if r.Budget > 0 {
			s.BudgetRatio = r.Budget
		}
	}
	if b := in.CircuitBreaker; b != nil {
		s.Breaker = BreakerConfig{
			FailureRatio: b.FailureRatio, MinRequests: b.MinRequests,
			Window: b.Window.D, OpenFor: b.OpenFor.D, HalfOpenProbes: b.HalfOpenProbes,
		}
	}
	if r := in.RateLimit; r != nil {
		s.Limiter = LimiterConfig{
			Rate: r.Rate.PerSecond, Burst: r.Burst, PerCaller: r.PerCaller.PerSecond, MaxWait: r.MaxWait.D,
		}
	}
	return s
}
