package gateway

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis-dev/portcullis/internal/chaos"
	"github.com/portcullis-dev/portcullis/internal/credential"
	"github.com/portcullis-dev/portcullis/internal/observe"
)

// callContext is the context the reverse proxy and the outbound chain
// see. It lives in the call and is its own cancellation layer: what
// context.WithTimeout (or WithCancel) gave before, without that layer's
// allocations (the timerCtx, its timer, two closures, and the children
// map the Transport's per-request context registers in).
//
//   - Done is closed, and Err set, when the integration's timeouts.request
//     passes (DeadlineExceeded), when the caller's context ends (its Err),
//     or when the call ends or is aborted (Canceled). The deadline bounds
//     the whole call, the response body included, as WithTimeout did.
//   - Deadline is the sooner of the call's and the caller's.
//   - Value answers for the per-request values (the hooks' outbound data,
//     the log record, the credential call, the chaos target) from the
//     call, and passes every other key to the caller's context; when that
//     one can be cancelled, through context.WithoutCancel, so that
//     context.Cause of this context is always its own Err
//     (DeadlineExceeded for a timeout), as for WithTimeout's, never the
//     cause the caller's context ends with later.
//
// The deadline's timer comes from the integration's pool of them (per
// integration, not global: a timer belongs to the synctest bubble, if
// any, that made it, so tests in bubbles must not share one with others)
// and goes back when the call ends before it fired.
//
// No goroutine is started per call or per attempt. A caller context that
// can be cancelled is watched with context.AfterFunc, which registers
// with the caller's cancelCtx; a context derived from this one directly
// (the per-try timeout's) registers with its AfterFunc method.
// ReverseProxy wraps this context in httptrace's value context, which
// hides that method from the context the Transport derives per attempt;
// the credential layer therefore sends each attempt with the context
// AttemptContext gives, which shows it again.
type callContext struct {
	c        *call
	parent   context.Context // the caller's request context
	values   context.Context // parent, or WithoutCancel(parent) (see above)
	deadline time.Time
	hasDL    bool
	done     chan struct{}

	mu         sync.Mutex
	err        error
	timer      *deadlineTimer // the armed deadline; nil once released
	stopParent func() bool    // stops the caller-context watch
	afters     []func()       // registered by AfterFunc, run on cancel
	afterBuf   [2]func()      // afters' first room
	attempt    attemptContext // the first attempt's context (AttemptContext)
}

// start makes x the live context of call c under parent, with timeout
// (0: no deadline of its own). x.end must be called when the call ends.
func (x *callContext) start(c *call, parent context.Context, timeout time.Duration, timers *sync.Pool) {
	*x = callContext{c: c, parent: parent, values: parent, done: make(chan struct{})}
	x.afters = x.afterBuf[:0]
	x.deadline, x.hasDL = parent.Deadline()
	pdone := parent.Done()
	if pdone != nil {
		x.values = context.WithoutCancel(parent)
	}
	if timeout > 0 {
		if d := time.Now().Add(timeout); !x.hasDL || d.Before(x.deadline) {
			x.deadline, x.hasDL = d, true
			x.mu.Lock() // a timer firing at once waits for x.timer
			x.timer = armDeadline(timers, x, timeout)
			x.mu.Unlock()
		}
		// else the caller's sooner deadline ends parent, and so x.
	}
	if pdone != nil {
		if err := parent.Err(); err != nil {
			x.cancel(err)
		} else {
			stop := context.AfterFunc(parent, x.parentDone)
			x.mu.Lock()
			if x.err == nil {
				x.stopParent = stop
				stop = nil
			}
			x.mu.Unlock()
			if stop != nil { // cancelled meanwhile (the deadline)
				stop()
			}
		}
	}
}

// attemptContext is a context derived from x (ReverseProxy's value
// context over it, for one): its values, deadline and cancellation are
// ctx's, and its AfterFunc is x's. The context package asks for
// AfterFunc only when Value finds no cancelCtx between ctx and x (a
// per-try timeout's is found first, and cancels the Transport's itself),
// so ctx then ends exactly when x does.
type attemptContext struct {
	context.Context
	x *callContext
}

func (a *attemptContext) AfterFunc(f func()) func() bool { return a.x.AfterFunc(f) }

// AttemptContext is credential.AttemptContexter: the context an attempt
// of this call is sent with, from ctx, derived from x. The first one is
// kept in x; a later attempt with another ctx (a retry) gets its own.
func (x *callContext) AttemptContext(ctx context.Context) context.Context {
	if ctx == context.Context(x) {
		return ctx
	}
	switch {
	case x.attempt.x == nil: // only the handler's goroutine sends attempts
		x.attempt = attemptContext{Context: ctx, x: x}
		return &x.attempt
	case x.attempt.Context == ctx: // never rewritten: earlier attempts may read it
		return &x.attempt
	}
	return &attemptContext{Context: ctx, x: x}
}

// parentDone cancels x when the caller's context ends first.
func (x *callContext) parentDone() { x.cancel(x.parent.Err()) }

// AfterFunc is what context.WithCancel and its kind call on a parent
// they do not know (context's afterFuncer): f, their child's cancel, is
// run when x ends, as a cancelCtx cancels its children, instead of a
// goroutine waiting on Done.
//
// The stop it returns does not unregister f and reports false ("f may
// still run"), which the contract allows: the context package calls it
// when the child ends first, and ignores the answer, and a child's cancel
// run again once the child has ended does nothing. Unregistering would
// cost a closure per attempt; the registered funcs live only as long as
// the call, one per attempt.
func (x *callContext) AfterFunc(f func()) (stop func() bool) {
	x.mu.Lock()
	if x.err != nil {
		x.mu.Unlock()
		f()
		return stopNothing
	}
	x.afters = append(x.afters, f)
	x.mu.Unlock()
	return stopNothing
}

func stopNothing() bool { return false }

// end releases x when the call is over: Done is closed, the timer goes
// back to its pool, the caller-context watch is stopped.
func (x *callContext) end() { x.cancel(context.Canceled) }

// cancel ends x with err, once.
func (x *callContext) cancel(err error) {
	x.mu.Lock()
	if x.err != nil {
		x.mu.Unlock()
		return
	}
	x.err = err
	close(x.done)
	t, stop, afters := x.timer, x.stopParent, x.afters
	x.timer, x.stopParent = nil, nil
	x.mu.Unlock()
	if t != nil {
		t.release()
	}
	if stop != nil {
		stop()
	}
	for _, f := range afters {
		f()
	}
}

func (x *callContext) Deadline() (time.Time, bool) { return x.deadline, x.hasDL }

func (x *callContext) Done() <-chan struct{} { return x.done }

func (x *callContext) Err() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.err
}

func (x *callContext) Value(key any) any {
	switch key.(type) {
	case outboundKey:
		return &x.c.ob
	case observe.RecordKey:
		return &x.c.rec
	case credential.CallKey:
		return &x.c.ob.credCall
	case chaos.TargetKey:
		if x.c.target.Integration != "" {
			return &x.c.target
		}
	}
	return x.values.Value(key)
}

// deadlineTimer is a reusable timer that cancels the call it is armed
// for with DeadlineExceeded. It is pooled: it is put back only when Stop
// says its function will not run for the call it was armed for (a timer
// that fired is left to the GC), so a reused timer never cancels a later
// call early.
type deadlineTimer struct {
	pool *sync.Pool // where it goes back
	t    *time.Timer
	x    atomic.Pointer[callContext]
}

// armDeadline arms a timer from pool (of *deadlineTimer, stopped) to
// cancel x after d.
func armDeadline(pool *sync.Pool, x *callContext, d time.Duration) *deadlineTimer {
	t, _ := pool.Get().(*deadlineTimer)
	if t == nil {
		t = &deadlineTimer{pool: pool}
		t.x.Store(x)
		t.t = time.AfterFunc(d, t.fire)
		return t
	}
	t.x.Store(x)
	t.t.Reset(d)
	return t
}

func (t *deadlineTimer) fire() {
	if x := t.x.Load(); x != nil {
		x.cancel(context.DeadlineExceeded)
	}
}

// release stops t and pools it if it had not fired.
func (t *deadlineTimer) release() {
	if t.t.Stop() {
		t.x.Store(nil)
		t.pool.Put(t)
	}
}
