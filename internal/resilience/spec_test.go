package resilience

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/portcullis-dev/portcullis/internal/conf"
)

// A retry block that names only some fields gets the documented defaults
// for the rest (retry.attempts: 3), and passes validation: before the Spec
// moved here, `retry: {backoff: 50ms}` failed "attempts must be 1..10"
// while the runtime would have defaulted it.
func TestRetrySpecProvision(t *testing.T) {
	s := &RetrySpec{Backoff: conf.Dur(50 * time.Millisecond)}
	if p := conf.Check(s); p != nil {
		t.Fatalf("problems: %v", p)
	}
	got := s.Policy(time.Second)
	want := RetryPolicy{Attempts: 3, Backoff: 50 * time.Millisecond, MaxBackoff: 2 * time.Second, MaxRetryAfter: 10 * time.Second, PerTry: time.Second}
	if got != want {
		t.Errorf("policy = %+v, want %+v", got, want)
	}
	var absent *RetrySpec
	if got := absent.Policy(0); got.Attempts != DefaultAttempts || got.Backoff != DefaultBackoff || absent.BudgetRatio() != DefaultBudgetRatio {
		t.Errorf("absent retry block: %+v budget %v", got, absent.BudgetRatio())
	}
}

func TestSpecsValidate(t *testing.T) {
	tests := []struct {
		name string
		spec conf.Spec
		want []string
	}{
		{"retry-ok", &RetrySpec{Attempts: 2, Budget: 0.1}, nil},
		{"retry-bad", &RetrySpec{Attempts: 11, Budget: 2, Backoff: conf.Dur(time.Second), MaxBackoff: conf.Dur(time.Millisecond)},
			[]string{"error attempts", "error budget", "error max_backoff"}},
		{"retry-absent", (*RetrySpec)(nil), nil},
		{"breaker-ok", &BreakerSpec{FailureRatio: 0.5, MinRequests: 20, Window: conf.Dur(30 * time.Second), OpenFor: conf.Dur(15 * time.Second)}, nil},
		{"breaker-empty", &BreakerSpec{}, []string{"error failure_ratio", "error min_requests", "error "}},
		{"breaker-absent", (*BreakerSpec)(nil), nil},
		{"rate-empty", &RateLimitSpec{Burst: -1}, []string{"error ", "error burst"}},
		{"rate-per-caller", &RateLimitSpec{PerCaller: conf.Rate{PerSecond: 2}}, nil},
		{"caller-burst-alone", &RateLimitSpec{Rate: conf.Rate{PerSecond: 5}, CallerBurst: 2}, []string{"error caller_burst"}},
		{"limits-negative", &LimitsSpec{MaxConcurrent: -1}, []string{"error max_concurrent"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, conf.Check(tt.spec)); d != "" {
				t.Errorf("problems (-want +got):\n%s", d)
			}
		})
	}
}

// The local limiter and the shared one (rate_limit.global) read their
// bucket sizes from the same Buckets: a per_caller of 2.5/s holds 3 calls,
// not the integration's burst.
func TestRateLimitSpecBuckets(t *testing.T) {
	s := &RateLimitSpec{Rate: conf.Rate{PerSecond: 10}, PerCaller: conf.Rate{PerSecond: 2.5}}
	s.Provision()
	got := s.Config()
	if got.Burst != 10 || got.CallerBurst != 3 {
		t.Errorf("buckets = burst %d caller %d, want 10 and 3", got.Burst, got.CallerBurst)
	}
	s = &RateLimitSpec{Rate: conf.Rate{PerSecond: 100}, Burst: 50, PerCaller: conf.Rate{PerSecond: 20}}
	s.Provision()
	if got := s.Config(); got.Burst != 50 || got.CallerBurst != 20 {
		t.Errorf("buckets = burst %d caller %d, want 50 and 20", got.Burst, got.CallerBurst)
	}
	s.CallerBurst = 40
	if got := s.Config(); got.CallerBurst != 40 {
		t.Errorf("caller_burst 40 gave a caller bucket of %d", got.CallerBurst)
	}
}

func TestLimitsSpecProvision(t *testing.T) {
	var s LimitsSpec
	s.Provision()
	if s.MaxRequestBytes.N != 1<<20 || s.MaxResponseBytes.N != 5<<20 || s.MaxConcurrent != 100 {
		t.Errorf("defaults = %d %d %d", s.MaxRequestBytes.N, s.MaxResponseBytes.N, s.MaxConcurrent)
	}
}
