package server

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
)

// gcHeapFloor is the heap size below which the garbage collector does not
// start a cycle. With the default GOGC=100 a gateway whose live heap is a
// few MB (its usual state: config, route tables, the usage buffer) collects
// every few MB allocated, several times a second under load; with
// GOMAXPROCS=1 each mark phase takes the one P from the requests in
// flight for milliseconds (the periodic stalls of issue 16's p90/p99 at
// half load: GODEBUG=gctrace=1 showed 4–5 cycles a second at 3,000 req/s
// with a 4 MB live heap). Once the live heap passes half the floor, GOGC
// is the default again, so a large heap (thousands of calls in flight)
// costs no more memory than before.
const gcHeapFloor = 64 << 20

// startGCFloor keeps the heap goal at gcHeapFloor or more by raising the
// GC percent after each cycle while the live heap is small. It does
// nothing when the operator set GOGC or GOMEMLIMIT. stop ends the tuning
// and restores the percent it found.
func startGCFloor() (stop func()) {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return func() {}
	}
	t := &gcFloor{base: 100} // GOGC's default
	t.sample = []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	t.adjust()
	t.arm()
	return func() {
		t.stopped.Store(true)
		debug.SetGCPercent(t.base)
	}
}

type gcFloor struct {
	base    int // the GC percent to use for large heaps
	sample  []metrics.Sample
	percent int
	stopped atomic.Bool
}

// arm runs adjust after the next collection: the cleanup of an object
// nothing references runs once a cycle has found it unreachable.
func (t *gcFloor) arm() {
	runtime.AddCleanup(new([16]byte), func(t *gcFloor) {
		if t.stopped.Load() {
			return
		}
		t.adjust()
		t.arm()
	}, t)
}

// adjust sets the percent so that live × (1 + percent/100) ≥ the floor.
func (t *gcFloor) adjust() {
	metrics.Read(t.sample)
	live := uint64(0)
	if t.sample[0].Value.Kind() == metrics.KindUint64 {
		live = t.sample[0].Value.Uint64()
	}
	p := t.base
	if live > 0 && live < gcHeapFloor/2 {
		p = max(t.base, int(gcHeapFloor*100/live)-100)
	} else if live == 0 {
		p = max(t.base, 1000)
	}
	p = min(p, 10000)
	// Small changes are not worth the call (it takes the heap lock).
	if p != t.percent && (p == t.base || t.percent == 0 || p > t.percent*11/10 || p < t.percent*9/10) {
		if t.stopped.Load() {
			return
		}
		debug.SetGCPercent(p)
		t.percent = p
	}
}
