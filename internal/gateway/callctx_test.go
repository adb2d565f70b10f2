package gateway

import (
	"context"
	"errors"
	goruntime "runtime"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/observe"
)

type testKey struct{}

// testTimers is the deadline-timer pool of the calls these tests start.
var testTimers sync.Pool

// startCall is a call with its context started as serveFor starts it; the
// context is ended at cleanup.
func startCall(t *testing.T, parent context.Context, timeout time.Duration) *call {
	t.Helper()
	c := &call{}
	c.ctx.start(c, parent, timeout, &testTimers)
	t.Cleanup(c.ctx.end)
	return c
}

// TestCallContextDeadline: the call's context reports the sooner of its
// own deadline and the caller's, answers the call's values and the
// caller's, and ends Canceled when the caller goes away or the call ends.
func TestCallContextDeadline(t *testing.T) {
	c := startCall(t, context.Background(), 0)
	if _, ok := c.ctx.Deadline(); ok {
		t.Error("deadline reported without one")
	}
	before := time.Now()
	c = startCall(t, context.Background(), time.Hour)
	if dl, ok := c.ctx.Deadline(); !ok || dl.Before(before.Add(time.Hour)) || dl.After(time.Now().Add(time.Hour)) {
		t.Errorf("Deadline() = %v %v, want now + 1h", dl, ok)
	}
	if c.ctx.Err() != nil {
		t.Errorf("Err() = %v before the deadline", c.ctx.Err())
	}

	soon := time.Now().Add(time.Minute)
	parent, cancelParent := context.WithDeadline(context.WithValue(context.Background(), testKey{}, "caller's"), soon)
	defer cancelParent()
	c2 := startCall(t, parent, time.Hour)
	if dl, _ := c2.ctx.Deadline(); !dl.Equal(soon) {
		t.Errorf("Deadline() = %v, want the caller's sooner %v", dl, soon)
	}
	if got := c2.ctx.Value(testKey{}); got != "caller's" {
		t.Errorf("caller's value = %v", got)
	}
	if got := c2.ctx.Value(observe.RecordKey{}); got != &c2.rec {
		t.Errorf("RecordKey = %v, want the call's record", got)
	}
	if got := outboundFrom(&c2.ctx); got != &c2.ob {
		t.Errorf("outbound = %p, want the call's %p", got, &c2.ob)
	}
	cancelParent()
	<-c2.ctx.Done()
	if err := c2.ctx.Err(); !errors.Is(err, context.Canceled) {
		t.Errorf("caller gone: Err() = %v, want context.Canceled", err)
	}

	c3 := &call{}
	c3.ctx.start(c3, context.Background(), time.Hour, &testTimers)
	c3.ctx.end()
	select {
	case <-c3.ctx.Done():
	default:
		t.Fatal("Done not closed when the call ended")
	}
	if err := c3.ctx.Err(); err != context.Canceled {
		t.Errorf("ended: Err() = %v, want context.Canceled", err)
	}
	c3.ctx.end() // a second end is a no-op
}

// TestDeadlineCancelsCall: with a real timer, a call with a short
// timeout is cancelled with DeadlineExceeded, and so is a context the
// Transport derives from it; context.Cause says DeadlineExceeded too,
// also under a caller's context that can be cancelled, live or ended
// later (the breaker and the retry tell a timeout from a caller gone by
// it).
// No timing is asserted: the test waits for it.
func TestDeadlineCancelsCall(t *testing.T) {
	for name, cancellable := range map[string]bool{"background": false, "cancellable": true} {
		t.Run(name, func(t *testing.T) {
			parent, cancelParent := context.Background(), context.CancelFunc(func() {})
			if cancellable {
				parent, cancelParent = context.WithCancel(parent)
				defer cancelParent()
			}
			c := startCall(t, parent, 10*time.Millisecond)
			child, cancelChild := context.WithCancelCause(&c.ctx)
			defer cancelChild(nil)
			<-c.ctx.Done()
			if err := c.ctx.Err(); err != context.DeadlineExceeded {
				t.Errorf("Err() = %v, want context.DeadlineExceeded", err)
			}
			if err := context.Cause(&c.ctx); err != context.DeadlineExceeded {
				t.Errorf("Cause = %v, want context.DeadlineExceeded", err)
			}
			<-child.Done()
			if err := context.Cause(child); err != context.DeadlineExceeded {
				t.Errorf("derived context: Cause = %v, want context.DeadlineExceeded", err)
			}
			// The caller's context ending later (as it does when the
			// handler returns) does not rewrite why the call ended.
			cancelParent()
			if err := context.Cause(&c.ctx); err != context.DeadlineExceeded {
				t.Errorf("after the caller's context ended: Cause = %v, want context.DeadlineExceeded", err)
			}
		})
	}
}

// TestDeadlines: the pooled deadline timers. A timer released before it
// fired is disarmed (its call cleared, so a late run of its function
// cancels nothing) and can serve a later call; one that fired is never
// handed out again (its function ran, or may still be running, for the
// call it was armed for), so it cannot cancel a later call early.
func TestDeadlines(t *testing.T) {
	a := startCall(t, context.Background(), time.Hour)
	ta := a.ctx.timer
	if ta == nil {
		t.Fatal("no timer armed for a timeout")
	}
	a.ctx.end()
	if a.ctx.timer != nil || ta.x.Load() != nil {
		t.Fatal("an ended call's timer still points at it")
	}
	ta.fire() // as if it ran late: a's context is not touched again
	if err := a.ctx.Err(); err != context.Canceled {
		t.Fatalf("Err() = %v after a stale run, want the end's context.Canceled", err)
	}

	c := startCall(t, context.Background(), 100*time.Millisecond)
	c.ctx.mu.Lock()
	tc := c.ctx.timer
	c.ctx.mu.Unlock()
	if tc == nil {
		t.Fatal("the timer fired before start returned") // 100ms: a very slow machine
	}
	<-c.ctx.Done()
	if err := c.ctx.Err(); err != context.DeadlineExceeded {
		t.Fatalf("Err() = %v, want context.DeadlineExceeded", err)
	}
	for range 100 {
		d := startCall(t, context.Background(), time.Hour)
		if d.ctx.timer == tc {
			t.Fatal("a timer that fired was handed out again")
		}
		d.ctx.end()
		if d.ctx.Err() != context.Canceled {
			t.Fatalf("ended call: Err() = %v", d.ctx.Err())
		}
	}
}

// TestCallContextStartsNoGoroutine: a held call costs no goroutine of its
// own, whether the caller's context can be cancelled or not and with
// contexts derived from the call's (as the Transport and the per-try
// timeout derive theirs); they all end when the call or the caller does.
func TestCallContextStartsNoGoroutine(t *testing.T) {
	const n = 200
	before := goruntime.NumGoroutine()
	parent, cancelParent := context.WithCancel(context.Background())
	defer cancelParent()
	calls := make([]*call, n)
	derived := make([]context.Context, n)
	for i := range calls {
		calls[i] = &call{}
		calls[i].ctx.start(calls[i], parent, time.Hour, &testTimers)
		var stop context.CancelFunc
		derived[i], stop = context.WithCancel(&calls[i].ctx)
		defer stop()
	}
	if extra := goruntime.NumGoroutine() - before; extra > n/10 {
		t.Errorf("%d held calls started %d goroutines", n, extra)
	}
	for i := range n / 2 {
		calls[i].ctx.end()
	}
	cancelParent()
	for i, d := range derived {
		select {
		case <-d.Done():
		case <-time.After(5 * time.Second):
			t.Fatalf("derived context %d not ended", i)
		}
		if !errors.Is(d.Err(), context.Canceled) {
			t.Errorf("derived context %d: Err() = %v", i, d.Err())
		}
	}
}

// TestCallContextAfterFunc: what registers with the call's AfterFunc
// runs once when the call ends, whatever stop said (stop never
// unregisters), and at once on a call already ended.
func TestCallContextAfterFunc(t *testing.T) {
	c := startCall(t, context.Background(), time.Hour)
	ran := 0
	stop := c.ctx.AfterFunc(func() { ran++ })
	if stop() {
		t.Error("stop() = true: it claims to have unregistered")
	}
	c.ctx.AfterFunc(func() { ran += 10 })
	if ran != 0 {
		t.Fatalf("ran %d before the call ended", ran)
	}
	c.ctx.end()
	c.ctx.end()
	if ran != 11 {
		t.Errorf("functions run at the end: %d, want each once (11)", ran)
	}
	late := false
	c.ctx.AfterFunc(func() { late = true })
	if !late {
		t.Error("AfterFunc on an ended call did not run f")
	}
}

// TestAttemptContextStartsNoGoroutine: an attempt sent, as ReverseProxy
// sends it, under a value context over the call's, with the context the
// credential layer asks AttemptContext for, is derived (as the Transport
// derives its own) without a goroutine, keeps the values, and ends with
// the call.
func TestAttemptContextStartsNoGoroutine(t *testing.T) {
	const n = 200
	parent, cancelParent := context.WithCancel(context.Background())
	defer cancelParent()
	calls := make([]*call, n)
	derived := make([]context.Context, n)
	before := goruntime.NumGoroutine()
	for i := range calls {
		c := &call{}
		c.ctx.start(c, parent, time.Hour, &testTimers)
		calls[i] = c
		traced := context.WithValue(&c.ctx, testKey{}, i) // ReverseProxy's httptrace context
		at := c.ctx.AttemptContext(traced)
		if again := c.ctx.AttemptContext(traced); again != at {
			t.Fatal("the same attempt context was not given twice")
		}
		var stop context.CancelCauseFunc
		derived[i], stop = context.WithCancelCause(at)
		defer stop(nil)
		if derived[i].Value(testKey{}) != i {
			t.Fatal("attempt context lost the value context's value")
		}
	}
	if extra := goruntime.NumGoroutine() - before; extra > n/10 {
		t.Errorf("%d attempts started %d goroutines", n, extra)
	}
	for _, c := range calls {
		c.ctx.end()
	}
	for i, d := range derived {
		select {
		case <-d.Done():
		case <-time.After(5 * time.Second):
			t.Fatalf("attempt %d's derived context did not end with its call", i)
		}
	}
	// Without AttemptContext the value context hides the call's AfterFunc:
	// the context package watches it from a goroutine. This is the
	// goroutine the test would count if the credential layer skipped it.
	c := startCall(t, parent, time.Hour)
	before = goruntime.NumGoroutine()
	d, stop := context.WithCancel(context.WithValue(&c.ctx, testKey{}, 0))
	defer stop()
	if goruntime.NumGoroutine() <= before {
		t.Log("the context package no longer needs a goroutine here; AttemptContext may be unneeded")
	}
	_ = d
}
