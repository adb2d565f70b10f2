package resilience

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/portcullis-dev/portcullis/internal/clock"
)

// RetryPolicy says how a Retry retries.
type RetryPolicy struct {
	// Attempts is the total number of tries, the first included; <= 1 never retries.
	Attempts int
	// Backoff is the base of the exponential backoff: before retry n (1-based)
	// Retry sleeps a uniformly random time in [0, min(MaxBackoff, Backoff×2^(n-1))),
	// the "full jitter" of AWS's backoff analysis.
	Backoff, MaxBackoff time.Duration
	// MaxRetryAfter caps a vendor's Retry-After: a 429/503 asking for at most
	// this long is retried after exactly that delay; one asking for longer is
	// not retried (waiting less than asked would only collect another refusal)
	// and goes back to the caller with its Retry-After. 0 never waits for one.
	MaxRetryAfter time.Duration
	// PerTry bounds each attempt until its response headers arrive, inside the
	// caller's overall deadline (the request context); 0 means no per-try bound.
	PerTry time.Duration
}

// Retry defaults, filled by RetrySpec.Provision (and for an absent retry block).
const (
	DefaultAttempts      = 3
	DefaultBackoff       = 100 * time.Millisecond
	DefaultMaxBackoff    = 2 * time.Second
	DefaultMaxRetryAfter = 10 * time.Second
)

// maxDrain bounds how much of a discarded response body is read so the
// connection can be reused; past it the connection is simply closed.
const maxDrain = 64 << 10

// ErrTryTimeout is the cause of an attempt that ran past RetryPolicy.PerTry.
// Errors carrying it also match context.DeadlineExceeded.
var ErrTryTimeout = errors.New("per-try timeout")

var errTryTimeout = fmt.Errorf("%w: %w", ErrTryTimeout, context.DeadlineExceeded)

// Retry is an http.RoundTripper that retries a request on next when it is
// safe and useful: the method is idempotent (GET, HEAD, OPTIONS, PUT,
// DELETE) or the request carries an Idempotency-Key; a body can be replayed
// (no body, or req.GetBody set); the attempt failed with a connect-level
// error (refused, reset, closed before answering, network timeout,
// per-try timeout) or answered 429, 502, 503 or 504; the Budget has a retry
// to spare; and the caller's context is not done. Any other request is sent
// exactly once. Responses that are retried are drained and closed.
type Retry struct {
	p      RetryPolicy
	budget *Budget
	next   http.RoundTripper
	clk    clock.Clock
	jitter func(n int64) int64 // uniform in [0, n); replaced in tests

	retries, denied atomic.Int64
}

var _ http.RoundTripper = (*Retry)(nil)

// NewRetry returns a Retry sending through next. A nil budget means retries
// are bounded by Attempts alone; a nil clock means clock.System.
func NewRetry(p RetryPolicy, b *Budget, next http.RoundTripper, c clock.Clock) *Retry {
	if c == nil {
		c = clock.System()
	}
	return &Retry{p: p, budget: b, next: next, clk: c, jitter: rand.Int64N}
}

// RetryStats counts a Retry's decisions since it was built, for metrics.
type RetryStats struct {
	Retries        int64 // retries sent
	BudgetExceeded int64 // retries the budget refused
}

// Stats reports the counters.
func (r *Retry) Stats() RetryStats {
	return RetryStats{Retries: r.retries.Load(), BudgetExceeded: r.denied.Load()}
}

// Replayable reports whether req may be sent more than once: an idempotent
// method or an Idempotency-Key, and a body that can be re-created.
func Replayable(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete:
	default:
		if req.Header.Get("Idempotency-Key") == "" {
			return false
		}
	}
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

// RoundTrip sends req, retrying as the type's doc says.
func (r *Retry) RoundTrip(req *http.Request) (*http.Response, error) {
	if r.budget != nil {
		r.budget.RecordRequest()
	}
	ctx := req.Context()
	replayable := r.p.Attempts > 1 && Replayable(req)
	for attempt := 1; ; attempt++ {
		areq := req
		if attempt > 1 {
			// A shallow copy with its own body: by the RoundTripper
			// contract no layer below modifies the request (the credential
			// Transport puts the credential on its own copy), so each
			// attempt sends req's headers and URL unmodified; one deep
			// clone per attempt (the credential layer's) instead of two.
			areq = req.WithContext(ctx)
			if req.GetBody != nil {
				body, err := req.GetBody()
				if err != nil {
					return nil, fmt.Errorf("retry: replaying request body: %w", err)
				}
				areq.Body = body
			}
		}
		resp, err := r.try(areq)
		if !replayable || attempt >= r.p.Attempts || ctx.Err() != nil {
			return resp, err
		}
		wait, retry := r.decide(resp, err)
		if !retry {
			return resp, err
		}
		if wait == 0 {
			wait = r.backoff(attempt)
		}
		if dl, ok := ctx.Deadline(); ok && !r.clk.Now().Add(wait).Before(dl) {
			return resp, err // the retry could not finish in time: answer now
		}
		if r.budget != nil && !r.budget.TryRetry() {
			r.denied.Add(1)
			return resp, err
		}
		if resp != nil {
			discard(resp)
		}
		if err := clock.Sleep(ctx, r.clk, wait); err != nil {
			return nil, fmt.Errorf("retry: waiting to retry: %w", context.Cause(ctx))
		}
		r.retries.Add(1)
	}
}

// try sends one attempt under the per-try timeout. The timeout covers the
// wait for response headers; once they arrive the body is bounded only by
// the caller's context, and closing it releases the attempt's context.
func (r *Retry) try(req *http.Request) (*http.Response, error) {
	if r.p.PerTry <= 0 {
		return r.next.RoundTrip(req)
	}
	ctx, cancel := context.WithCancelCause(req.Context())
	stop := r.clk.AfterFunc(r.p.PerTry, func() { cancel(errTryTimeout) })
	resp, err := r.next.RoundTrip(req.WithContext(ctx))
	stop()
	if err != nil {
		if errors.Is(context.Cause(ctx), ErrTryTimeout) && req.Context().Err() == nil {
			err = fmt.Errorf("retry: %w", errTryTimeout)
		}
		cancel(nil)
		return nil, err
	}
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: func() { cancel(nil) }}
	return resp, nil
}

// decide says whether an attempt's outcome is worth retrying, and how long
// the vendor asked us to wait (0: use the backoff).
func (r *Retry) decide(resp *http.Response, err error) (time.Duration, bool) {
	if err != nil {
		return 0, RetryableError(err)
	}
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		if v := resp.Header.Get("Retry-After"); v != "" {
			d, ok := ParseRetryAfter(v, r.clk.Now())
			if !ok {
				return 0, true
			}
			if d > r.p.MaxRetryAfter {
				return 0, false
			}
			return d, true
		}
		return 0, true
	case http.StatusBadGateway, http.StatusGatewayTimeout:
		return 0, true
	}
	return 0, false
}

// backoff is the full-jitter delay before retry number attempt (1-based).
func (r *Retry) backoff(attempt int) time.Duration {
	ceil := r.p.Backoff
	for i := 1; i < attempt && ceil < r.p.MaxBackoff; i++ {
		ceil *= 2
	}
	if r.p.MaxBackoff > 0 {
		ceil = min(ceil, r.p.MaxBackoff)
	}
	if ceil <= 0 {
		return 0
	}
	return time.Duration(r.jitter(int64(ceil)))
}

// discard drains a bounded amount of a response body and closes it.
func discard(resp *http.Response) {
	_, _ = io.CopyN(io.Discard, resp.Body, maxDrain)
	_ = resp.Body.Close()
}

type cancelOnClose struct {
	io.ReadCloser
	cancel func()
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}
