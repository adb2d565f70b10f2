// Package clock owns where Portcullis reads time and waits: the Clock
// interface every component that times something takes as an option
// (breakers, limiters, budgets, anomaly baselines, store leases and expiry,
// the SLA tracker, webhook replay windows), System for production, and Fake,
// a manually advanced clock for tests, so no test waits on the wall clock
// for a breaker to open or a bucket to refill.
package clock

import (
	"context"
	"sort"
	"sync"
	"time"
)

// Clock is where a component reads time and waits.
// System is the real one; Fake is for tests.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// After returns a channel that receives the time once d has passed
	// (at once when d <= 0).
	After(d time.Duration) <-chan time.Time
	// AfterFunc calls f in its own goroutine once d has passed; stop
	// prevents the call if it has not happened yet and reports whether it did.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// System returns the process clock (package time).
func System() Clock { return systemClock{} }

// Or returns c, or System when c is nil, so an option left unset means the
// process clock.
func Or(c Clock) Clock {
	if c == nil {
		return System()
	}
	return c
}

type systemClock struct{}

func (systemClock) Now() time.Time                         { return time.Now() }
func (systemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
func (systemClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}

// Sleep waits for d on clk, returning early with ctx's error when ctx is done.
func Sleep(ctx context.Context, clk Clock, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-clk.After(d):
		return nil
	}
}

// Fake is a manually advanced Clock for tests. Timers registered with
// After and AfterFunc fire, in deadline order, when Advance or Set moves the
// clock past their deadline. It is safe for concurrent use.
//
// Hand-written rather than imported: it is small, and the only external
// alternatives (clockwork, benbjohnson/clock) would put their timer types
// into the interface every package takes. Tests that exercise code reading
// time.Now directly (gobreaker) use testing/synctest instead.
type Fake struct {
	mu      sync.Mutex
	now     time.Time
	seq     int
	waiters []*fakeWaiter
}

type fakeWaiter struct {
	at   time.Time
	seq  int
	ch   chan time.Time // After
	fn   func()         // AfterFunc
	done bool
}

// NewFake returns a Fake reading start.
func NewFake(start time.Time) *Fake { return &Fake{now: start} }

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// After returns a channel that receives the fake time once the clock has
// been advanced by d.
func (f *Fake) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	f.add(&fakeWaiter{ch: ch}, d)
	return ch
}

// AfterFunc calls fn (in its own goroutine) once the clock has been advanced by d.
func (f *Fake) AfterFunc(d time.Duration, fn func()) func() bool {
	w := &fakeWaiter{fn: fn}
	f.add(w, d)
	return func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		if w.done {
			return false
		}
		w.done = true
		f.remove(w)
		return true
	}
}

func (f *Fake) add(w *fakeWaiter, d time.Duration) {
	f.mu.Lock()
	w.at = f.now.Add(d)
	f.seq++
	w.seq = f.seq
	f.waiters = append(f.waiters, w)
	f.mu.Unlock()
	if d <= 0 {
		f.Advance(0)
	}
}

func (f *Fake) remove(w *fakeWaiter) {
	for i, x := range f.waiters {
		if x == w {
			f.waiters = append(f.waiters[:i], f.waiters[i+1:]...)
			return
		}
	}
}

// Advance moves the clock forward by d and fires every timer now due.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	f.set(f.now.Add(d))
}

// Set moves the clock to t (never backwards) and fires every timer now due.
func (f *Fake) Set(t time.Time) {
	f.mu.Lock()
	if t.Before(f.now) {
		t = f.now
	}
	f.set(t)
}

// set is called with f.mu held and releases it.
func (f *Fake) set(t time.Time) {
	f.now = t
	var due []*fakeWaiter
	keep := f.waiters[:0]
	for _, w := range f.waiters {
		if !w.at.After(t) {
			w.done = true
			due = append(due, w)
		} else {
			keep = append(keep, w)
		}
	}
	f.waiters = keep
	f.mu.Unlock()
	sort.Slice(due, func(i, j int) bool {
		if due[i].at.Equal(due[j].at) {
			return due[i].seq < due[j].seq
		}
		return due[i].at.Before(due[j].at)
	})
	for _, w := range due {
		if w.ch != nil {
			w.ch <- t
		} else {
			go w.fn()
		}
	}
}

// Waiters is the number of timers not yet fired or stopped.
func (f *Fake) Waiters() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.waiters)
}

// BlockUntil waits (in real time) until at least n timers are pending, so a
// test can advance the clock only once the code under test is waiting.
func (f *Fake) BlockUntil(ctx context.Context, n int) error {
	for f.Waiters() < n {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
	return nil
}
