package gateway

import "testing"

// TestBufferPool: Get hands out full-size buffers, Put takes back only
// what Get handed out (a resliced or foreign buffer is left to the GC).
func TestBufferPool(t *testing.T) {
	p := newBufferPool(2)
	b := p.Get()
	if len(b) != copyBufferSize || cap(b) != copyBufferSize {
		t.Fatalf("Get: len %d cap %d, want %d", len(b), cap(b), copyBufferSize)
	}
	p.Put(b)
	p.Put(make([]byte, 10)) // not pooled: would panic in the conversion if it were
	p.Put(b[:100])
	if got := p.Get(); len(got) != copyBufferSize {
		t.Errorf("Get after foreign Puts: len %d", len(got))
	}
}
