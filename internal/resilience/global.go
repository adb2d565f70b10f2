package resilience

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis-dev/portcullis/internal/clock"
)

// SharedBuckets are token buckets every replica spends from, kept in the
// shared state store (Redis), and the store's ping.
type SharedBuckets interface {
	Allow(ctx context.Context, key string, ratePerSec float64, burst int, now time.Time) (bool, time.Duration, error)
	Ping(ctx context.Context) error
}

// ErrSharedDown is the error of GlobalLimiter.Allow while the store is
// down: the caller decides (state.on_redis_down.rate_limit) whether that
// admits or refuses.
var ErrSharedDown = errors.New("shared store down; waiting for it to answer a ping")

const (
	// GlobalCheckTimeout bounds one shared-limit check. It is tighter than
	// state.redis_timeout (which bounds every store call, this one too)
	// because every call of a globally limited integration makes it.
	GlobalCheckTimeout = 100 * time.Millisecond
	// GlobalProbeEvery is how often a down store is pinged until it answers.
	GlobalProbeEvery = 100 * time.Millisecond
)

// GlobalLimiter is rate_limit.global: the buckets of LimiterConfig.Buckets
// kept in the shared store. When a check fails it stops asking the store
// on the request path and starts one prober that pings the store until it
// answers: during an outage callers pay no timeout, and recovery follows
// within a probe interval. Close stops the prober. Safe for concurrent use.
type GlobalLimiter struct {
	b   SharedBuckets
	clk clock.Clock
	log *slog.Logger

	down    atomic.Bool
	probing atomic.Bool
	stop    chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
}

// NewGlobalLimiter returns a GlobalLimiter over b; a nil clock means
// clock.System, a nil logger discards.
func NewGlobalLimiter(b SharedBuckets, clk clock.Clock, log *slog.Logger) *GlobalLimiter {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &GlobalLimiter{b: b, clk: clock.Or(clk), log: log, stop: make(chan struct{})}
}

// Allow spends one token of the bucket key (rate per second, burst at
// least 1); a rate of 0 or less admits. It returns how long until a call
// would be admitted when refused, and an error wrapping ErrSharedDown or
// the store's own when the store cannot answer.
func (l *GlobalLimiter) Allow(ctx context.Context, key string, rate float64, burst int) (ok bool, wait time.Duration, err error) {
	if rate <= 0 {
		return true, 0, nil
	}
	if l.down.Load() {
		return false, 0, ErrSharedDown
	}
	actx, cancel := context.WithTimeout(ctx, GlobalCheckTimeout)
	ok, wait, err = l.b.Allow(actx, key, rate, max(burst, 1), l.clk.Now())
	cancel()
	if err != nil {
		l.markDown()
	}
	return ok, wait, err
}

func (l *GlobalLimiter) markDown() {
	l.down.Store(true)
	if l.probing.Swap(true) {
		return
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer l.probing.Store(false)
		for {
			select {
			case <-l.stop:
				return
			case <-l.clk.After(GlobalProbeEvery):
			}
			ctx, cancel := context.WithTimeout(context.Background(), GlobalCheckTimeout)
			err := l.b.Ping(ctx)
			cancel()
			if err == nil {
				l.down.Store(false)
				l.log.Info("shared state store answers again; global rate limits back on")
				return
			}
		}
	}()
}

// Close stops the prober, if one runs, and waits for it.
func (l *GlobalLimiter) Close() {
	l.once.Do(func() { close(l.stop) })
	l.wg.Wait()
}
