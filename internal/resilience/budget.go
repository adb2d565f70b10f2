package resilience

import (
	"sync"
	"time"

	"github.com/portcullis-dev/portcullis/internal/clock"
)

// Budget defaults; DefaultBudgetRatio is retry.budget's default (RetrySpec).
const (
	// DefaultBudgetRatio lets retries add at most 20% to an integration's traffic.
	DefaultBudgetRatio = 0.2
	// DefaultBudgetWindow is the sliding window the ratio is measured over.
	DefaultBudgetWindow = 10 * time.Second
	// DefaultBudgetFloor is the number of retries per second allowed even
	// without traffic, so a quiet integration can still retry a lone failure:
	// 1/s over a 10s window is 10 retries per window.
	DefaultBudgetFloor = 1.0
)

// budgetBuckets is the number of slices the sliding window is cut into;
// the window slides one slice (window/10) at a time.
const budgetBuckets = 10

// Budget caps retries at ratio × requests over a sliding window, plus a
// floor of minPerSecond × window retries. While a vendor fails every call,
// the calls it receives over any window are therefore at most
// (1 + ratio) × requests + minPerSecond × window, whatever Attempts says.
// Only first attempts count as requests. Safe for concurrent use; one
// Budget is shared by every request to one integration.
type Budget struct {
	clk    clock.Clock
	ratio  float64
	floor  float64
	slice  time.Duration
	origin time.Time

	mu      sync.Mutex
	buckets [budgetBuckets]budgetBucket
}

type budgetBucket struct {
	epoch             int64
	requests, retries int64
}

// BudgetState is a Budget's current window, for the admin API and metrics.
type BudgetState struct {
	Requests int64   // first attempts in the window
	Retries  int64   // retries spent in the window
	Allowed  float64 // ratio × Requests + floor: the retries the window allows
}

// NewBudget returns a Budget; ratio < 0, window <= 0 and minPerSecond < 0
// are replaced by the defaults above. A nil clock means clock.System.
func NewBudget(ratio float64, window time.Duration, minPerSecond float64, c clock.Clock) *Budget {
	if c == nil {
		c = clock.System()
	}
	if ratio < 0 {
		ratio = DefaultBudgetRatio
	}
	if window <= 0 {
		window = DefaultBudgetWindow
	}
	if minPerSecond < 0 {
		minPerSecond = DefaultBudgetFloor
	}
	slice := max(window/budgetBuckets, time.Millisecond)
	return &Budget{
		clk: c, ratio: ratio, floor: minPerSecond * window.Seconds(),
		slice: slice, origin: c.Now(),
	}
}

// current returns the bucket for now, clearing it if it held an old slice.
// Called with b.mu held.
func (b *Budget) current() (*budgetBucket, int64) {
	epoch := int64(b.clk.Now().Sub(b.origin) / b.slice)
	bk := &b.buckets[((epoch%budgetBuckets)+budgetBuckets)%budgetBuckets]
	if bk.epoch != epoch {
		*bk = budgetBucket{epoch: epoch}
	}
	return bk, epoch
}

// sums adds up the buckets inside the window ending at epoch. Called with b.mu held.
func (b *Budget) sums(epoch int64) (requests, retries int64) {
	for i := range b.buckets {
		if bk := &b.buckets[i]; epoch-bk.epoch < budgetBuckets && bk.epoch <= epoch {
			requests += bk.requests
			retries += bk.retries
		}
	}
	return requests, retries
}

// RecordRequest counts one first attempt.
func (b *Budget) RecordRequest() {
	b.mu.Lock()
	bk, _ := b.current()
	bk.requests++
	b.mu.Unlock()
}

// TryRetry spends one retry if the window allows it and reports whether it did.
func (b *Budget) TryRetry() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	bk, epoch := b.current()
	req, ret := b.sums(epoch)
	if float64(ret+1) > b.ratio*float64(req)+b.floor {
		return false
	}
	bk.retries++
	return true
}

// State reports the current window.
func (b *Budget) State() BudgetState {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, epoch := b.current()
	req, ret := b.sums(epoch)
	return BudgetState{Requests: req, Retries: ret, Allowed: b.ratio*float64(req) + b.floor}
}
