package resilience

import (
	"sync"
	"sync/atomic"
	"testing"
)

func TestBulkheadRefusesAtLimit(t *testing.T) {
	b := NewBulkhead(2)
	r1, ok1 := b.TryAcquire()
	r2, ok2 := b.TryAcquire()
	_, ok3 := b.TryAcquire()
	if !ok1 || !ok2 || ok3 {
		t.Fatalf("acquire results %v %v %v, want true true false", ok1, ok2, ok3)
	}
	if b.InFlight() != 2 {
		t.Errorf("InFlight() = %d, want 2", b.InFlight())
	}
	r1()
	r1() // a second release must not free a slot it does not hold
	if b.InFlight() != 1 {
		t.Errorf("InFlight() = %d after double release, want 1", b.InFlight())
	}
	if _, ok := b.TryAcquire(); !ok {
		t.Error("refused with a free slot")
	}
	if _, ok := b.TryAcquire(); ok {
		t.Error("admitted past the limit after a double release")
	}
	r2()
}

func TestBulkheadUnlimited(t *testing.T) {
	b := NewBulkhead(0)
	for range 1000 {
		if _, ok := b.TryAcquire(); !ok {
			t.Fatal("unlimited bulkhead refused")
		}
	}
}

func TestBulkheadNeverExceedsLimitUnderContention(t *testing.T) {
	const limit = 5
	b := NewBulkhead(limit)
	var peak, cur atomic.Int64
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			for range 200 {
				release, ok := b.TryAcquire()
				if !ok {
					continue
				}
				n := cur.Add(1)
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
				cur.Add(-1)
				release()
			}
		})
	}
	wg.Wait()
	if peak.Load() > limit {
		t.Errorf("peak in flight %d > limit %d", peak.Load(), limit)
	}
	if b.InFlight() != 0 {
		t.Errorf("InFlight() = %d after all released", b.InFlight())
	}
}

// TryTake and Release hold and give back the same slots TryAcquire does.
func TestBulkheadTryTakeRelease(t *testing.T) {
	b := NewBulkhead(2)
	for i := range 2 {
		if !b.TryTake() {
			t.Fatalf("slot %d of 2 not taken", i+1)
		}
	}
	if b.TryTake() {
		t.Fatal("third slot taken past the limit")
	}
	if _, ok := b.TryAcquire(); ok {
		t.Fatal("TryAcquire past the limit TryTake reached")
	}
	b.Release()
	if b.InFlight() != 1 || !b.TryTake() {
		t.Fatalf("after Release: in flight %d, slot not free again", b.InFlight())
	}
	b.Release()
	b.Release()
	if b.InFlight() != 0 {
		t.Errorf("in flight %d after every slot was given back", b.InFlight())
	}
}
