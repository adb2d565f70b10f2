package resilience

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/portcullis-dev/portcullis/internal/clock"
)

// ErrCircuitOpen is matched by the error a Breaker returns instead of
// calling the vendor (state open, or half-open with every probe taken).
var ErrCircuitOpen = errors.New("circuit open")

// Breaker defaults, applied by NewBreaker to zero fields.
const (
	DefaultFailureRatio   = 0.5
	DefaultMinRequests    = 20
	DefaultBreakerWindow  = 30 * time.Second
	DefaultOpenFor        = 15 * time.Second
	DefaultHalfOpenProbes = 3
)

// windowBuckets is how many slices the rolling window is cut into: counts
// age out one slice (Window/10) at a time.
const windowBuckets = 10

// BreakerConfig configures a Breaker. Zero fields take the defaults above.
type BreakerConfig struct {
	// FailureRatio opens the breaker when failures/(failures+successes) over
	// the window reaches it…
	FailureRatio float64
	// …provided at least MinRequests calls finished in the window.
	MinRequests int
	// Window is the rolling window failures are counted over.
	Window time.Duration
	// OpenFor is how long the breaker stays open before probing.
	OpenFor time.Duration
	// HalfOpenProbes calls are let through when half-open; all must succeed
	// to close the breaker, and any failure opens it again.
	HalfOpenProbes int
	// Excluded, when set, marks errors that say nothing about the vendor's
	// health (an egress denial, say): they count neither way. The caller's
	// own cancellation is always excluded.
	Excluded func(error) bool
}

// Breaker is a per-integration circuit breaker and an http.RoundTripper:
// closed → open when the failure ratio over a rolling window reaches
// FailureRatio with at least MinRequests calls → half-open after OpenFor,
// letting HalfOpenProbes calls through → closed when they all succeed, open
// again on the first failure. Failures are 5xx answers and transport errors
// (timeouts, connect errors); 4xx answers are successes. While open it
// returns an error wrapping ErrCircuitOpen without calling next.
//
// It wraps sony/gobreaker's CircuitBreaker (Execute: no closure to
// allocate per call, unlike the two-step Allow), whose bucketed rolling
// window (Settings.BucketPeriod, v2.1+) provides the sliding counts: the
// Window is cut into 10 buckets and ReadyToTrip applies the ratio and
// minimum volume to the counts of the whole window. gobreaker reads the
// process clock itself, so the clock.Clock given to NewBreaker only stamps state
// changes (BreakerState.Since); tests drive the timings with testing/synctest.
type Breaker struct {
	name     string
	cfg      BreakerConfig
	cb       *gobreaker.CircuitBreaker[struct{}]
	next     http.RoundTripper
	clk      clock.Clock
	onChange func(from, to string)

	mu      sync.Mutex
	since   time.Time
	pending []transition
	// queued is len(pending), read without mu so that flush costs one
	// atomic load per call when nothing changed (nearly always).
	queued atomic.Int32
	// notify serialises onChange calls, in transition order, outside
	// gobreaker's lock (its OnStateChange hook runs while holding it).
	notify sync.Mutex
	// closed is set while gobreaker's state is closed, by OnStateChange
	// under gobreaker's lock. A closed breaker leaves that state only on a
	// failure, never with time, so Allow can answer from it without
	// gobreaker's lock and clock read.
	closed atomic.Bool
}

type transition struct{ from, to string }

// errFailure and errExcluded tell gobreaker how an attempt went.
var (
	errFailure  = errors.New("vendor failure")
	errExcluded = errors.New("excluded from breaker counts")
)

var _ http.RoundTripper = (*Breaker)(nil)

// NewBreaker returns a closed Breaker named after its integration. onChange,
// if not nil, is called after every state change ("closed", "open",
// "half-open"), in order, never concurrently, and may call the Breaker's
// methods. A nil clock means clock.System.
func NewBreaker(name string, c BreakerConfig, next http.RoundTripper, clk clock.Clock, onChange func(from, to string)) *Breaker {
	if clk == nil {
		clk = clock.System()
	}
	if c.FailureRatio <= 0 {
		c.FailureRatio = DefaultFailureRatio
	}
	if c.MinRequests <= 0 {
		c.MinRequests = DefaultMinRequests
	}
	if c.Window <= 0 {
		c.Window = DefaultBreakerWindow
	}
	if c.OpenFor <= 0 {
		c.OpenFor = DefaultOpenFor
	}
	if c.HalfOpenProbes <= 0 {
		c.HalfOpenProbes = DefaultHalfOpenProbes
	}
	b := &Breaker{name: name, cfg: c, next: next, clk: clk, onChange: onChange, since: clk.Now()}
	ratio, minReq := c.FailureRatio, uint32(c.MinRequests)
	b.cb = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:         name,
		MaxRequests:  uint32(c.HalfOpenProbes),
		Interval:     c.Window,
		BucketPeriod: max(c.Window/windowBuckets, time.Nanosecond),
		Timeout:      c.OpenFor,
		ReadyToTrip: func(n gobreaker.Counts) bool {
			done := n.TotalSuccesses + n.TotalFailures
			return done >= minReq && float64(n.TotalFailures) >= ratio*float64(done)
		},
		IsSuccessful: func(err error) bool { return err == nil },
		IsExcluded:   func(err error) bool { return errors.Is(err, errExcluded) },
		OnStateChange: func(_ string, from, to gobreaker.State) {
			b.mu.Lock()
			b.since = b.clk.Now()
			b.pending = append(b.pending, transition{from.String(), to.String()})
			b.queued.Store(int32(len(b.pending)))
			b.closed.Store(to == gobreaker.StateClosed)
			b.mu.Unlock()
		},
	})
	b.closed.Store(true)
	return b
}

// flush delivers queued state changes. If another goroutine (or onChange
// itself, re-entering) is delivering, that one picks up what is queued.
func (b *Breaker) flush() {
	for {
		if b.queued.Load() == 0 || !b.notify.TryLock() {
			return
		}
		b.mu.Lock()
		batch := b.pending
		b.pending = nil
		b.queued.Store(0)
		b.mu.Unlock()
		for _, t := range batch {
			if b.onChange != nil {
				b.onChange(t.from, t.to)
			}
		}
		b.notify.Unlock()
	}
}

// Name is the integration the breaker guards.
func (b *Breaker) Name() string { return b.name }

// State is "closed", "open" or "half-open".
func (b *Breaker) State() string {
	s := b.cb.State()
	b.flush()
	return s.String()
}

// Allow reports whether a call would go through now, for deciding on a
// fallback before proxying. It reserves nothing: a half-open breaker may
// still refuse the call if other probes take the slots first.
func (b *Breaker) Allow() bool {
	if b.closed.Load() && b.queued.Load() == 0 {
		return true
	}
	s := b.cb.State()
	b.flush()
	switch s {
	case gobreaker.StateOpen:
		return false
	case gobreaker.StateHalfOpen:
		n := b.cb.Counts()
		return n.Requests-min(n.TotalExclusions, n.Requests) < uint32(b.cfg.HalfOpenProbes)
	}
	return true
}

// BreakerState is a snapshot for the admin API and metrics.
type BreakerState struct {
	State    string
	Since    time.Time // when the breaker entered State (construction if never changed)
	Requests uint32    // calls started in the current window (closed) or probe round (half-open)
	Failures uint32    // failures among them
}

// Snapshot reports the breaker's state and counts.
func (b *Breaker) Snapshot() BreakerState {
	s := b.cb.State()
	n := b.cb.Counts()
	b.flush()
	b.mu.Lock()
	defer b.mu.Unlock()
	return BreakerState{State: s.String(), Since: b.since, Requests: n.Requests, Failures: n.TotalFailures}
}

// RoundTrip calls next unless the breaker is open, and records the outcome.
// A panic in next counts as a failure (Execute records it and panics on).
func (b *Breaker) RoundTrip(req *http.Request) (resp *http.Response, err error) {
	defer b.flush()
	called := false
	_, _ = b.cb.Execute(func() (struct{}, error) {
		called = true
		b.flush() // the transitions of letting this call in, before it goes out
		resp, err = b.next.RoundTrip(req)
		return struct{}{}, b.classify(req.Context(), resp, err)
	})
	if !called {
		return nil, fmt.Errorf("integration %s: %w", b.name, ErrCircuitOpen)
	}
	return resp, err
}

// classify maps an attempt to nil (success), errFailure or errExcluded.
func (b *Breaker) classify(ctx context.Context, resp *http.Response, err error) error {
	if err == nil {
		if resp.StatusCode >= 500 {
			return errFailure
		}
		return nil
	}
	callerGone := errors.Is(err, context.Canceled) || ctx.Err() != nil
	if callerGone && !errors.Is(context.Cause(ctx), context.DeadlineExceeded) && !errors.Is(err, ErrTryTimeout) {
		return errExcluded // the caller went away: says nothing about the vendor
	}
	if b.cfg.Excluded != nil && b.cfg.Excluded(err) {
		return errExcluded
	}
	return errFailure
}
