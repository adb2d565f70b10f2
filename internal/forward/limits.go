package forward

import (
	"errors"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limit refusals, matched with errors.Is.
var (
	// ErrTooManyTunnels: the caller already holds max_tunnels open tunnels
	// (and plain requests in flight) on the integration.
	ErrTooManyTunnels = errors.New("too many concurrent tunnels")
	// ErrTunnelRate: the caller opened new_per_second tunnels this second.
	ErrTunnelRate = errors.New("too many new tunnels per second")
)

// limiter enforces the per caller+integration limits of one Proxy. Its
// state lives as long as the Proxy (one config load).
type limiter struct {
	now func() time.Time

	mu    sync.Mutex
	slots map[slotKey]*slot
}

type slotKey struct{ caller, integration string }

type slot struct {
	active int
	rate   *rate.Limiter // nil: no new_per_second limit
}

func newLimiter(now func() time.Time) *limiter {
	return &limiter{now: now, slots: map[slotKey]*slot{}}
}

// acquire takes one tunnel slot and one new-tunnel token for caller on in.
// On ErrTunnelRate it also returns how long until a token is available.
// The caller must call release once when acquire succeeded.
func (l *limiter) acquire(caller string, in *integ) (retryAfter time.Duration, err error) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	k := slotKey{caller, in.name}
	s := l.slots[k]
	if s == nil {
		s = &slot{}
		if in.spec.NewPerSecond.PerSecond > 0 {
			// Burst of one second's worth, so a client may open its
			// allowance at once (an SDK warming a pool) but not more.
			s.rate = rate.NewLimiter(rate.Limit(in.spec.NewPerSecond.PerSecond), int(math.Max(1, math.Ceil(in.spec.NewPerSecond.PerSecond))))
		}
		l.slots[k] = s
	}
	if s.active >= in.spec.MaxTunnels {
		return 0, ErrTooManyTunnels
	}
	if s.rate != nil {
		r := s.rate.ReserveN(now, 1)
		if d := r.DelayFrom(now); d > 0 {
			r.CancelAt(now)
			return d, ErrTunnelRate
		}
	}
	s.active++
	return 0, nil
}

func (l *limiter) release(caller string, in *integ) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := l.slots[slotKey{caller, in.name}]; s != nil && s.active > 0 {
		s.active--
	}
}
