package resilience

import (
	"errors"
	"sync/atomic"
)

// ErrOverloaded is what the gateway reports when a Bulkhead is full.
var ErrOverloaded = errors.New("overloaded: too many calls in flight")

// Bulkhead caps the calls in flight to one integration, so a slow vendor
// cannot tie up every goroutine and connection of the gateway.
type Bulkhead struct {
	limit    int64
	inFlight atomic.Int64
}

// NewBulkhead returns a Bulkhead admitting at most n calls at once;
// n <= 0 means no limit.
func NewBulkhead(n int) *Bulkhead { return &Bulkhead{limit: int64(n)} }

// TryAcquire takes a slot without waiting. When ok, release gives it back;
// calling release more than once is harmless.
func (b *Bulkhead) TryAcquire() (release func(), ok bool) {
	if !b.TryTake() {
		return nil, false
	}
	var once atomic.Bool
	return func() {
		if once.CompareAndSwap(false, true) {
			b.inFlight.Add(-1)
		}
	}, true
}

// TryTake is TryAcquire without the release func, for a caller that
// gives the slot back itself: when it reports true, Release must be
// called exactly once. It allocates nothing.
func (b *Bulkhead) TryTake() bool {
	if n := b.inFlight.Add(1); b.limit > 0 && n > b.limit {
		b.inFlight.Add(-1)
		return false
	}
	return true
}

// Release gives back a slot TryTake took.
func (b *Bulkhead) Release() { b.inFlight.Add(-1) }

// InFlight is the number of slots taken.
func (b *Bulkhead) InFlight() int { return int(b.inFlight.Load()) }

// Limit is the configured maximum (0: none).
func (b *Bulkhead) Limit() int { return int(b.limit) }
