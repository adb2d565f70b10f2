package gateway

import "testing"

// The copy-buffer free list hands a returned buffer out again, keeps at
// most its bound of them, and refuses buffers that are not its size.
func TestBufferPoolIsBounded(t *testing.T) {
	const idle = 4
	p := newBufferPool(idle)
	b := p.Get()
	if len(b) != copyBufferSize {
		t.Fatalf("Get: %d bytes, want %d", len(b), copyBufferSize)
	}
	p.Put(b)
	if again := p.Get(); &again[0] != &b[0] {
		t.Fatal("a returned buffer was not handed out again")
	}
	for range idle + 3 {
		p.Put(make([]byte, copyBufferSize))
	}
	if n := len(p.free); n != idle {
		t.Fatalf("%d idle buffers kept, want %d", n, idle)
	}
	for len(p.free) > 0 {
		<-p.free
	}
	p.Put(make([]byte, 512))
	if n := len(p.free); n != 0 {
		t.Fatal("a 512-byte buffer was kept")
	}
}
