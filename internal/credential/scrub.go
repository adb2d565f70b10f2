package credential

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/portcullis-dev/portcullis/internal/secret"
)

// minMaskLen is the shortest injected value that is masked in responses:
// masking every occurrence of a 3-byte "secret" would wreck bodies, and a
// value that short protects nothing.
const minMaskLen = 6

// maskPrefix starts every mask; the rest of the mask is '*', so a masked
// value keeps its length (see redactor).
const maskPrefix = secret.Redacted

// redactor masks, in vendor responses, the credential values that were put
// on one outbound attempt: the value itself, its URL-escaped forms (query
// and path escaping, as a vendor reflecting the request URL writes them),
// and the base64 of "user:secret" for basic (and its escaped forms). It is built once per material
// (secret version, access token, signed JWT) and shared by the requests
// that use it; it is read-only after newRedactor.
//
// Each match is overwritten in place by a mask of the SAME length
// ("REDACTED" then '*'s; only '*'s for values shorter than 8 bytes). The
// length is kept on purpose: a response's Content-Length stays true while
// its body is streamed, so no body is ever buffered to recount it and no
// response is turned into a chunked one. The price is that the caller
// learns how long the secret is, which vendors publish anyway.
//
// strings.Replacer is not used because it cannot work across read
// boundaries of a stream, and a regexp would cost a compile per material and
// more per byte than bytes.Index, which is vectorised.
type redactor struct {
	raw     []string // the injected values, to tell fresh material from the same
	needles []needle
	maxLen  int
}

type needle struct {
	s    string
	b    []byte
	mask []byte
}

// newRedactor builds the redactor for the values injected on a request;
// encoded holds extra forms to mask (the Basic header's base64). Values
// shorter than minMaskLen are remembered (for sameMaterial) but not masked.
func newRedactor(values []string, encoded ...string) *redactor {
	r := &redactor{raw: values}
	add := func(s string) {
		if len(s) < minMaskLen {
			return
		}
		for _, n := range r.needles {
			if n.s == s {
				return
			}
		}
		r.needles = append(r.needles, needle{s: s, b: []byte(s), mask: maskOf(len(s))})
		r.maxLen = max(r.maxLen, len(s))
	}
	for _, v := range slices.Concat(values, encoded) {
		add(v)
		add(url.QueryEscape(v))
		add(url.PathEscape(v))
	}
	// Longest first, so a value is never cut by a shorter one inside it.
	slices.SortStableFunc(r.needles, func(a, b needle) int { return len(b.s) - len(a.s) })
	return r
}

func maskOf(n int) []byte {
	m := bytes.Repeat([]byte{'*'}, n)
	if n >= len(maskPrefix) {
		copy(m, maskPrefix)
	}
	return m
}

// basicEncoding is what a basic credential puts after "Basic ".
func basicEncoding(user, password string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
}

// sameMaterial reports whether two attempts injected the same values.
func (r *redactor) sameMaterial(o *redactor) bool {
	if r == nil || o == nil {
		return r == o
	}
	if len(r.raw) != len(o.raw) {
		return false
	}
	for i := range r.raw {
		if r.raw[i] != o.raw[i] {
			return false
		}
	}
	return true
}

// String masks s.
func (r *redactor) String(s string) string {
	var b []byte
	for _, n := range r.needles {
		if b == nil {
			if !strings.Contains(s, n.s) {
				continue
			}
			b = []byte(s)
		}
		r.maskOne(b, n)
	}
	if b == nil {
		return s
	}
	return string(b)
}

// mask overwrites every needle in b.
func (r *redactor) mask(b []byte) {
	for _, n := range r.needles {
		r.maskOne(b, n)
	}
}

func (r *redactor) maskOne(b []byte, n needle) {
	for i := 0; ; {
		j := bytes.Index(b[i:], n.b)
		if j < 0 {
			return
		}
		copy(b[i+j:], n.mask)
		i += j + len(n.b)
	}
}

// Header masks every value of h in place (header names are left alone).
// A value without an injected one is not written: value slices may be
// shared with other headers (the gateway's request id).
func (r *redactor) Header(h http.Header) {
	for _, vs := range h {
		for i, v := range vs {
			if m := r.String(v); m != v {
				vs[i] = m
			}
		}
	}
}

// Response masks resp's header now, and its body and trailer as they are
// read: the body through a streaming reader that holds back only a tail
// that could begin a value (at most maxLen-1 bytes), so a value split
// across reads is still caught and no body is buffered; the trailer when the body reaches EOF (that is when
// net/http fills it in, and when httputil.ReverseProxy copies it).
func (r *redactor) Response(resp *http.Response) {
	r.responseInto(resp, nil)
}

// responseInto is Response with the body's scrubber in *mb (nil: a new one).
func (r *redactor) responseInto(resp *http.Response, mb *maskedBody) {
	if r == nil || resp == nil || len(r.needles) == 0 {
		return
	}
	r.Header(resp.Header)
	if resp.Body == nil || resp.Body == http.NoBody {
		r.Header(resp.Trailer)
		return
	}
	if mb == nil {
		mb = new(maskedBody)
	}
	*mb = maskedBody{rc: resp.Body, r: r, resp: resp}
	resp.Body = mb
}

// maskBuffers recycles maskedBody buffers: one 32 KiB buffer per response
// would otherwise be the scrubbing's main cost. Only reads into a small p
// use one (see maskedBody.Read).
var maskBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

var errBodyClosed = errors.New("read on a closed response body")

// maskedBody is the streaming scrubber. buf[rd:rdy] is masked and may be
// handed out; buf[rdy:w] is held back because a value may continue in the
// next read.
type maskedBody struct {
	rc io.ReadCloser
	r  *redactor
	// resp's Trailer is masked at EOF; it is read then, not now, because
	// net/http replaces a nil Trailer map with the unannounced trailers.
	resp    *http.Response
	buf     *[]byte
	rd, rdy int
	w       int
	err     error
	closed  bool
}

// Read hands out the masked body. A p of at least 4×maxLen bytes (the
// 32 KiB of ReverseProxy's copy) is read into and masked in place, so the
// scrubber holds no buffer of its own while a response is copied: only a
// held-back tail, at most maxLen-1 bytes, waits in buf between reads.
// A smaller p is served from a pooled 32 KiB buffer, filled as before.
func (b *maskedBody) Read(p []byte) (int, error) {
	if b.closed {
		return 0, errBodyClosed
	}
	if b.rd == b.rdy && b.err == nil && len(p) > 0 && len(p) >= 4*b.r.maxLen {
		return b.readInto(p)
	}
	for b.rd == b.rdy {
		if b.err != nil {
			return 0, b.err
		}
		b.fill()
	}
	n := copy(p, (*b.buf)[b.rd:b.rdy])
	b.rd += n
	return n, nil
}

// readInto is Read in place: the held-back tail, then one read from the
// vendor, masked together in p; a new tail that could begin a value is
// kept back (and cleared from p) for the next read.
func (b *maskedBody) readInto(p []byte) (int, error) {
	for {
		t := 0
		if b.buf != nil {
			t = copy(p, (*b.buf)[b.rdy:b.w])
		}
		b.rd, b.rdy, b.w = 0, 0, 0
		n, err := b.rc.Read(p[t:])
		m := t + n
		b.r.mask(p[:m])
		if err != nil {
			if errors.Is(err, io.EOF) && b.resp != nil {
				b.r.Header(b.resp.Trailer)
			}
			b.err = err
			if m == 0 {
				return 0, err
			}
			return m, nil
		}
		hold := b.r.pending(p[:m])
		if hold > 0 {
			if b.buf == nil {
				tail := make([]byte, b.r.maxLen)
				b.buf = &tail
			}
			b.w = copy(*b.buf, p[m-hold:m])
			clear(p[m-hold : m])
		}
		if m > hold {
			return m - hold, nil
		}
	}
}

// fill reads once from the vendor, masks what is buffered and works out
// how much of it is safe to hand out.
func (b *maskedBody) fill() {
	if b.buf == nil || len(*b.buf) < 4*b.r.maxLen {
		nb := maskBuffers.Get().(*[]byte)
		if len(*nb) < 4*b.r.maxLen { // a huge signed JWT
			big := make([]byte, 4*b.r.maxLen)
			nb = &big
		}
		if b.buf != nil { // readInto's tail
			b.w = copy(*nb, (*b.buf)[b.rd:b.w])
			b.rd = 0
		}
		b.buf = nb
	}
	buf := *b.buf
	b.w = copy(buf, buf[b.rd:b.w]) // keep the held-back tail
	b.rd, b.rdy = 0, 0
	n, err := b.rc.Read(buf[b.w:])
	b.w += n
	b.r.mask(buf[:b.w])
	if err != nil {
		if errors.Is(err, io.EOF) && b.resp != nil {
			b.r.Header(b.resp.Trailer)
		}
		b.err, b.rdy = err, b.w
		return
	}
	b.rdy = b.w - b.r.pending(buf[:b.w])
}

// pending is how many bytes at the end of b could begin a value that the
// next read completes: the longest suffix of b that is a proper prefix of
// a needle. Only those are held back, so a streamed answer (server-sent
// events) is not delayed unless its last bytes really look like the start
// of a credential.
func (r *redactor) pending(b []byte) int {
	hold := 0
	for _, n := range r.needles {
		from := max(0, len(b)-(len(n.b)-1))
		for i := from; i < len(b)-hold; {
			j := bytes.IndexByte(b[i:len(b)-hold], n.b[0])
			if j < 0 {
				break
			}
			i += j
			if bytes.HasPrefix(n.b, b[i:]) {
				hold = len(b) - i
				break
			}
			i++
		}
	}
	return hold
}

func (b *maskedBody) Close() error {
	if !b.closed {
		b.closed = true
		if b.buf != nil && len(*b.buf) == 32<<10 {
			maskBuffers.Put(b.buf)
		}
		b.buf = nil
	}
	return b.rc.Close()
}
