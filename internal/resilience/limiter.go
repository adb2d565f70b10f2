package resilience

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/portcullis-dev/portcullis/internal/clock"
)

// ErrRateLimited is matched by every refusal of Limiter.Wait.
var ErrRateLimited = errors.New("rate limited")

// Limiter defaults, applied by NewLimiter to zero fields.
const (
	// DefaultMaxPause caps how long one vendor answer can pause an integration.
	DefaultMaxPause = 15 * time.Minute
	// DefaultVendorPause is the pause after a 429 (or a zero remaining quota)
	// that did not say until when.
	DefaultVendorPause = time.Second
	// DefaultMaxCallers bounds the per-caller buckets kept.
	DefaultMaxCallers = 4096
)

// LimiterConfig configures a Limiter.
type LimiterConfig struct {
	// Rate is the integration's calls per second; 0 means no integration bucket.
	Rate float64
	// Burst is the integration bucket's size; 0 means max(1, ⌈Rate⌉).
	Burst int
	// PerCaller is each caller's calls per second; 0 means no per-caller buckets.
	PerCaller float64
	// CallerBurst is each caller bucket's size; 0 means max(1, ⌈PerCaller⌉).
	CallerBurst int
	// MaxWait is how long Wait may hold a call for a token or the end of a
	// vendor pause before refusing it; 0 refuses at once.
	MaxWait time.Duration
	// MaxPause caps a pause a vendor asks for; 0 means DefaultMaxPause.
	MaxPause time.Duration
	// MaxCallers bounds the per-caller buckets kept; 0 means DefaultMaxCallers.
	// Past it, idle buckets are dropped, and if none is idle new callers
	// share one overflow bucket.
	MaxCallers int
}

// RateLimitError is the refusal Wait returns; it matches ErrRateLimited.
type RateLimitError struct {
	// Scope is what refused: "integration", "caller" or "vendor" (the
	// vendor's own headers asked us to stop).
	Scope string
	// RetryAfter is when the call would have been admitted.
	RetryAfter time.Duration
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("rate limited (%s), retry after %s", e.Scope, e.RetryAfter.Round(time.Millisecond))
}

// Is makes errors.Is(err, ErrRateLimited) true.
func (e *RateLimitError) Is(target error) bool { return target == ErrRateLimited }

// Limiter is one integration's rate limit: a token bucket for the
// integration and optionally one per caller (golang.org/x/time/rate), and a
// pause the vendor imposes through its response headers (Observe). Safe for
// concurrent use.
type Limiter struct {
	cfg    LimiterConfig
	clk    clock.Clock
	global *rate.Limiter // nil: no integration bucket

	mu              sync.Mutex
	callers         map[string]*rate.Limiter
	overflow        *rate.Limiter
	lastSweep       time.Time
	pausedUntil     time.Time
	vendorRemaining int64 // -1: unknown
	vendorReset     time.Time

	refused atomic.Int64
}

// NewLimiter returns a Limiter; a nil clock means clock.System.
func NewLimiter(c LimiterConfig, clk clock.Clock) *Limiter {
	if clk == nil {
		clk = clock.System()
	}
	c = c.Buckets()
	if c.MaxPause <= 0 {
		c.MaxPause = DefaultMaxPause
	}
	if c.MaxCallers <= 0 {
		c.MaxCallers = DefaultMaxCallers
	}
	l := &Limiter{cfg: c, clk: clk, vendorRemaining: -1}
	if c.Rate > 0 {
		l.global = rate.NewLimiter(rate.Limit(c.Rate), c.Burst)
	}
	if c.PerCaller > 0 {
		l.callers = make(map[string]*rate.Limiter)
	}
	return l
}

// Buckets returns c with the bucket sizes left at 0 filled in: the one
// place both the local limiter and the shared (rate_limit.global) one read
// them from, so the two agree.
func (c LimiterConfig) Buckets() LimiterConfig {
	if c.Burst <= 0 && c.Rate > 0 {
		c.Burst = defaultBurst(c.Rate)
	}
	if c.CallerBurst <= 0 && c.PerCaller > 0 {
		c.CallerBurst = defaultBurst(c.PerCaller)
	}
	return c
}

// Wait admits one call for caller, waiting up to MaxWait for a token or for
// a vendor pause to end. Refusals wrap ErrRateLimited (as *RateLimitError)
// and say how long until a call would be admitted, for Retry-After. If ctx
// ends while waiting, Wait returns ctx's error and gives the tokens back.
func (l *Limiter) Wait(ctx context.Context, caller string) (retryAfter time.Duration, err error) {
	now := l.clk.Now()
	l.mu.Lock()
	delay, scope := l.pauseLocked(now), "vendor"
	if delay > l.cfg.MaxWait {
		l.mu.Unlock()
		return l.refuse(scope, delay)
	}
	var reservations [2]*rate.Reservation
	for i, lim := range [2]*rate.Limiter{l.callerLocked(caller, now), l.global} {
		if lim == nil {
			continue
		}
		r := lim.ReserveN(now, 1)
		reservations[i] = r
		if d := r.DelayFrom(now); d > delay {
			delay, scope = d, [2]string{"caller", "integration"}[i]
		}
	}
	if delay > l.cfg.MaxWait {
		cancelAll(reservations, now)
		l.mu.Unlock()
		return l.refuse(scope, delay)
	}
	counted := l.spendVendorLocked(now)
	l.mu.Unlock()

	if err := clock.Sleep(ctx, l.clk, delay); err != nil {
		cancelAll(reservations, l.clk.Now())
		if counted {
			l.mu.Lock()
			if l.vendorRemaining >= 0 {
				l.vendorRemaining++
			}
			l.mu.Unlock()
		}
		return 0, fmt.Errorf("rate limit wait: %w", err)
	}
	return 0, nil
}

func cancelAll(rs [2]*rate.Reservation, now time.Time) {
	for _, r := range rs {
		if r != nil {
			r.CancelAt(now)
		}
	}
}

func (l *Limiter) refuse(scope string, d time.Duration) (time.Duration, error) {
	l.refused.Add(1)
	return d, &RateLimitError{Scope: scope, RetryAfter: d}
}

// pauseLocked is how long the vendor asked us to hold off from now.
func (l *Limiter) pauseLocked(now time.Time) time.Duration {
	if !l.vendorReset.IsZero() && !now.Before(l.vendorReset) {
		l.vendorRemaining, l.vendorReset = -1, time.Time{} // the vendor's window rolled over
	}
	return max(l.pausedUntil.Sub(now), 0)
}

// spendVendorLocked counts an admitted call against the vendor's last
// reported quota; when that runs out the integration pauses until the
// vendor's reset instead of collecting 429s.
func (l *Limiter) spendVendorLocked(now time.Time) bool {
	if l.vendorRemaining <= 0 {
		return false
	}
	l.vendorRemaining--
	if l.vendorRemaining == 0 && l.vendorReset.After(now) {
		l.pauseUntilLocked(now, l.vendorReset)
	}
	return true
}

func (l *Limiter) pauseUntilLocked(now, until time.Time) {
	until = minTime(until, now.Add(l.cfg.MaxPause))
	if until.After(l.pausedUntil) {
		l.pausedUntil = until
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// callerLocked returns caller's bucket, creating it within MaxCallers.
func (l *Limiter) callerLocked(caller string, now time.Time) *rate.Limiter {
	if l.callers == nil {
		return nil
	}
	if lim, ok := l.callers[caller]; ok {
		return lim
	}
	if len(l.callers) >= l.cfg.MaxCallers && now.Sub(l.lastSweep) >= time.Second {
		l.lastSweep = now
		for name, lim := range l.callers {
			if lim.TokensAt(now) >= float64(l.cfg.CallerBurst) { // full: same as a new bucket
				delete(l.callers, name)
			}
		}
	}
	if len(l.callers) >= l.cfg.MaxCallers {
		if l.overflow == nil {
			l.overflow = rate.NewLimiter(rate.Limit(l.cfg.PerCaller), l.cfg.CallerBurst)
		}
		return l.overflow
	}
	lim := rate.NewLimiter(rate.Limit(l.cfg.PerCaller), l.cfg.CallerBurst)
	l.callers[caller] = lim
	return lim
}

// Observe feeds a vendor response back: its quota headers (X-RateLimit-*,
// IETF RateLimit) update the known remaining calls and reset, a zero
// remaining pauses the integration until the reset, and a 429 or 503 with
// Retry-After pauses it for that long (a 429 without any hint for
// DefaultVendorPause). Pauses are capped at MaxPause.
func (l *Limiter) Observe(status int, h http.Header) {
	throttled := status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable
	if !throttled && !hasRateLimitHeaders(h) {
		return // the common case: nothing to learn
	}
	now := l.clk.Now()
	vl, hasQuota := ParseRateLimitHeaders(h, now)
	var ra time.Duration
	hasRA := false
	if throttled {
		ra, hasRA = ParseRetryAfter(h.Get("Retry-After"), now)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	hinted := hasRA
	if hasQuota {
		l.vendorRemaining, l.vendorReset = vl.Remaining, vl.Reset
		if vl.Remaining == 0 {
			if vl.Reset.After(now) {
				l.pauseUntilLocked(now, vl.Reset)
				hinted = true
			} else if vl.Reset.IsZero() {
				l.pauseUntilLocked(now, now.Add(DefaultVendorPause))
			}
		}
	}
	if hasRA {
		l.pauseUntilLocked(now, now.Add(ra))
	}
	if status == http.StatusTooManyRequests && !hinted {
		l.pauseUntilLocked(now, now.Add(DefaultVendorPause))
	}
}

// LimiterState is a snapshot for the admin API and metrics.
type LimiterState struct {
	Rate            float64   // integration calls/s (0: none)
	Burst           int       // integration bucket size
	Tokens          float64   // integration tokens available now (0 when no bucket)
	VendorRemaining int64     // the vendor's last reported remaining calls, minus those sent since; -1 unknown
	VendorReset     time.Time // when the vendor's quota refills; zero unknown
	PausedUntil     time.Time // zero when not paused
	Callers         int       // per-caller buckets held
	Refused         int64     // calls refused since start
}

// Snapshot reports the limiter's state now.
func (l *Limiter) Snapshot() LimiterState {
	now := l.clk.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pauseLocked(now)
	s := LimiterState{
		Rate: l.cfg.Rate, Burst: l.cfg.Burst, VendorRemaining: l.vendorRemaining,
		VendorReset: l.vendorReset, Callers: len(l.callers), Refused: l.refused.Load(),
	}
	if l.pausedUntil.After(now) {
		s.PausedUntil = l.pausedUntil
	}
	if l.global != nil {
		s.Tokens = l.global.TokensAt(now)
	}
	return s
}

// RetryAfterSeconds rounds a delay up to the whole seconds of a
// Retry-After header (at least 1).
func RetryAfterSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

// Observing returns an http.RoundTripper that feeds every response from
// next to Observe, and refuses (with a vendor-scope *RateLimitError,
// without calling next) while the vendor's pause is on. Placed inside
// Retry, the vendor's word on each attempt counts, and a retry is never
// sent into a pause the previous attempt announced.
func (l *Limiter) Observing(next http.RoundTripper) http.RoundTripper {
	return observingRT{l: l, next: next}
}

type observingRT struct {
	l    *Limiter
	next http.RoundTripper
}

func (o observingRT) RoundTrip(req *http.Request) (*http.Response, error) {
	o.l.mu.Lock()
	pause := o.l.pauseLocked(o.l.clk.Now())
	o.l.mu.Unlock()
	if pause > 0 {
		_, err := o.l.refuse("vendor", pause)
		return nil, err
	}
	resp, err := o.next.RoundTrip(req)
	if err == nil {
		o.l.Observe(resp.StatusCode, resp.Header)
	}
	return resp, err
}
