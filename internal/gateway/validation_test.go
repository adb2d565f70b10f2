package gateway

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// TestReadResponse checks the pooled read of a body to validate: what the
// reader delivers decides (a declared length is only a hint), and a body
// over max shows as one byte past it.
func TestReadResponse(t *testing.T) {
	body := strings.Repeat("x", 10_000)
	for _, tt := range []struct {
		name     string
		r        io.Reader
		declared int64
		max      int64
		want     string
	}{
		{"declared", strings.NewReader(body), int64(len(body)), 1 << 20, body},
		{"unknown length", iotest.OneByteReader(strings.NewReader(body)), -1, 1 << 20, body},
		{"declared too short", strings.NewReader(body), 10, 1 << 20, body},
		{"declared too long", strings.NewReader(body[:100]), 5000, 1 << 20, body[:100]},
		{"over max", strings.NewReader(body), -1, 4096, body[:4097]},
		{"empty", strings.NewReader(""), 0, 1 << 20, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := readResponse(tt.r, tt.declared, tt.max)
			if err != nil {
				t.Fatal(err)
			}
			if string(*b) != tt.want {
				t.Errorf("read %d bytes, want %d", len(*b), len(tt.want))
			}
			putBodyBuf(b)
		})
	}
	boom := errors.New("boom")
	if _, err := readResponse(iotest.ErrReader(boom), -1, 100); !errors.Is(err, boom) {
		t.Errorf("err %v, want %v", err, boom)
	}
}

// TestValidatedBodyClose checks that a validated body hands its bytes on
// and, once closed (its buffer back in the pool), reads as empty rather
// than as whatever the buffer holds next.
func TestValidatedBodyClose(t *testing.T) {
	b, err := readResponse(strings.NewReader(`{"id":"first"}`), -1, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	vb := &validatedBody{buf: b}
	vb.r.Reset(*b)
	head := make([]byte, 4)
	if n, err := vb.Read(head); n != 4 || err != nil || string(head) != `{"id` {
		t.Fatalf("read %q, %v", head[:n], err)
	}
	if err := vb.Close(); err != nil {
		t.Fatal(err)
	}
	// Whatever reuses the buffer now, the closed body does not show it.
	next, _ := readResponse(strings.NewReader(`{"id":"second"}`), -1, 1<<20)
	defer putBodyBuf(next)
	rest, err := io.ReadAll(vb)
	if err != nil || len(rest) != 0 {
		t.Errorf("after Close: read %q, %v; want nothing", rest, err)
	}
	if err := vb.Close(); err != nil { // a second Close is harmless
		t.Fatal(err)
	}
	if !bytes.Equal(*next, []byte(`{"id":"second"}`)) {
		t.Errorf("the next body reads %q", *next)
	}
}
