package validate

import (
	"bytes"
	"encoding/json"
	"strconv"
	"sync"
	"unicode/utf8"
)

// A tape is a JSON body parsed into one flat slice of tokens, pointing into
// the body's bytes instead of building maps and strings: the compiled tree
// and drift detection both walk it, so an accepted response costs no decode
// into Go values. It is parsed by hand because encoding/json (and
// go-json-experiment's tokenizer) build or copy a value per token, which is
// what this exists to avoid.
//
// The parser is strict and gives up (ok false) at anything it is not sure
// of: a syntax error, nesting deeper than the limit, a duplicate key, a
// control character, a number out of float64's range. Check then takes the
// path it always had (scan, encoding/json, kin-openapi), which finds the
// same problem and words the violation. So a body parses onto a tape only if
// that path would have decoded it, to the same values (escaped strings are
// decoded by encoding/json itself); FuzzTapeMatchesDecode checks it.
type tape struct {
	body []byte
	toks []tok
	keys []keySet // per open object, reused
	// shape is what drift detection's walk depends on in the body (see
	// Drift.observeTape), built during the parse; shapeOK is false when it
	// would be longer than maxShape.
	shape   []byte
	shapeOK bool
}

// Token kinds.
const (
	kObject = '{'
	kArray  = '['
	kString = '"'
	kNumber = '0'
	kTrue   = 't'
	kFalse  = 'f'
	kNull   = 'n'
)

type tok struct {
	kind  byte
	esc   bool    // string holding escapes: decode with str
	start int32   // string contents (no quotes) or number text
	end   int32   //
	next  int32   // index of the token after this value (containers: after their end)
	count int32   // members or elements
	num   float64 // numbers
}

type keySet struct {
	keys  [][]byte
	set   map[string]struct{}
	bloom uint64 // a bit per (length, first and last byte) seen: most keys differ there
}

func keyBit(key []byte) uint64 {
	if len(key) == 0 {
		return 1
	}
	return 1 << ((uint(len(key))*7 + uint(key[0])*3 + uint(key[len(key)-1])) & 63)
}

var tapes = sync.Pool{New: func() any { return new(tape) }}

func getTape() *tape { return tapes.Get().(*tape) }

// release drops the body and returns t to the pool.
func (t *tape) release() {
	t.body = nil
	for i := range t.keys {
		clear(t.keys[i].keys[:cap(t.keys[i].keys)])
		t.keys[i].keys, t.keys[i].set, t.keys[i].bloom = t.keys[i].keys[:0], nil, 0
	}
	if cap(t.toks) > maxPooledTokens {
		t.toks = nil // do not keep a huge body's tape
	}
	t.shape, t.shapeOK = t.shape[:0], false
	tapes.Put(t)
}

// maxPooledTokens bounds the tapes kept for reuse (32 bytes a token: 4 MB,
// a list page of about 600 KB); bigger ones are left to the collector.
const maxPooledTokens = 1 << 17

// parse fills t from b; false means "take the slow path".
func (t *tape) parse(b []byte, maxDepth int) bool {
	t.body, t.toks = b, t.toks[:0]
	t.shape, t.shapeOK = t.shape[:0], true
	// Compact JSON has about a token per 5 to 8 bytes: size the tape once
	// rather than regrow it (an overestimate costs memory only).
	if want := len(b)/6 + 8; cap(t.toks) < want {
		t.toks = make([]tok, 0, want)
	}
	if !utf8.Valid(b) {
		return false
	}
	p := parser{t: t, b: b, maxDepth: maxDepth}
	p.ws()
	if !p.value(0, true) {
		return false
	}
	p.ws()
	return p.i == len(b)
}

// emit appends c to the shape while it is within maxShape.
func (t *tape) emit(c byte) {
	if t.shapeOK {
		if t.shape = append(t.shape, c); len(t.shape) > maxShape {
			t.shapeOK = false
		}
	}
}

// emitKey appends an object key to the shape: its length first, so keys
// cannot run into each other, then its raw bytes (escapes and all: equal
// keys written differently just make the shapes differ).
func (t *tape) emitKey(raw []byte) {
	if t.shapeOK {
		n := len(raw)
		if t.shape = append(append(t.shape, byte(n>>24), byte(n>>16), byte(n>>8), byte(n)), raw...); len(t.shape) > maxShape {
			t.shapeOK = false
		}
	}
}

type parser struct {
	t        *tape
	b        []byte
	i        int
	maxDepth int
}

func (p *parser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// value parses the value at p.i. sh: its shape goes into the tape's, as
// drift's walk sees it: each value's type (integer apart from number),
// each object's keys in order, the first driftArraySample elements of each
// array, down to driftMaxDepth.
func (p *parser) value(depth int, sh bool) bool {
	if p.i >= len(p.b) {
		return false
	}
	t := p.t
	switch c := p.b[p.i]; c {
	case '{', '[':
		if depth >= p.maxDepth {
			return false
		}
		if sh {
			t.emit(c)
		}
		inner := sh && depth < driftMaxDepth // children and the closing byte
		at := len(t.toks)
		t.toks = append(t.toks, tok{kind: c})
		p.i++
		p.ws()
		var n int32
		if c == '{' {
			for len(t.keys) <= depth {
				t.keys = append(t.keys, keySet{})
			}
			// t.keys may grow below: index it, keep no pointer.
			t.keys[depth].keys, t.keys[depth].set, t.keys[depth].bloom = t.keys[depth].keys[:0], nil, 0
			if p.i < len(p.b) && p.b[p.i] == '}' {
				p.i++
				break
			}
			for {
				if p.i >= len(p.b) || p.b[p.i] != '"' || !p.str() {
					return false
				}
				k := &t.toks[len(t.toks)-1]
				key := p.b[k.start:k.end]
				if k.esc {
					s, ok := unescape(p.b[k.start-1 : k.end+1])
					if !ok {
						return false
					}
					key = []byte(s)
				}
				if t.keys[depth].add(key) {
					return false // duplicate key: the slow path names it
				}
				if inner {
					t.emitKey(p.b[k.start:k.end])
				}
				p.ws()
				if p.i >= len(p.b) || p.b[p.i] != ':' {
					return false
				}
				p.i++
				p.ws()
				if !p.value(depth+1, inner) {
					return false
				}
				n++
				p.ws()
				if p.i < len(p.b) && p.b[p.i] == ',' {
					p.i++
					p.ws()
					continue
				}
				if p.i < len(p.b) && p.b[p.i] == '}' {
					p.i++
					break
				}
				return false
			}
		} else {
			if p.i < len(p.b) && p.b[p.i] == ']' {
				p.i++
				break
			}
			for {
				if !p.value(depth+1, inner && n < driftArraySample) {
					return false
				}
				n++
				p.ws()
				if p.i < len(p.b) && p.b[p.i] == ',' {
					p.i++
					p.ws()
					continue
				}
				if p.i < len(p.b) && p.b[p.i] == ']' {
					p.i++
					break
				}
				return false
			}
		}
		t.toks[at].count = n
		t.toks[at].next = int32(len(t.toks))
		if inner {
			t.emit(c + 2) // '}' or ']'
		}
		return true
	case '"':
		if sh {
			t.emit(kString)
		}
		return p.str()
	case 't':
		return p.lit("true", kTrue, sh)
	case 'f':
		return p.lit("false", kFalse, sh)
	case 'n':
		return p.lit("null", kNull, sh)
	default:
		if !p.number() {
			return false
		}
		if sh {
			if k := &t.toks[len(t.toks)-1]; k.num == float64(int64(k.num)) { // jsonType's integer
				t.emit('i')
			} else {
				t.emit(kNumber)
			}
		}
		return true
	}
	// An empty object or array.
	t.toks[len(t.toks)-1].next = int32(len(t.toks))
	if sh && depth < driftMaxDepth {
		t.emit(p.b[p.i-1])
	}
	return true
}

func (p *parser) lit(word string, kind byte, sh bool) bool {
	if !bytes.HasPrefix(p.b[p.i:], []byte(word)) {
		return false
	}
	if sh {
		p.t.emit(kind)
	}
	p.i += len(word)
	p.t.toks = append(p.t.toks, tok{kind: kind, next: int32(len(p.t.toks) + 1)})
	return true
}

// str reads a string token at p.i (an opening quote).
func (p *parser) str() bool {
	start := p.i + 1
	esc := false
	for i := start; i < len(p.b); i++ {
		for i < len(p.b) && !strSpecial[p.b[i]] {
			i++
		}
		if i == len(p.b) {
			break
		}
		switch c := p.b[i]; {
		case c == '"':
			if esc {
				if _, ok := unescape(p.b[start-1 : i+1]); !ok {
					return false
				}
			}
			p.t.toks = append(p.t.toks, tok{kind: kString, esc: esc, start: int32(start), end: int32(i), next: int32(len(p.t.toks) + 1)})
			p.i = i + 1
			return true
		case c == '\\':
			esc = true
			i++
		case c < 0x20:
			return false
		}
	}
	return false
}

// strSpecial marks the bytes that end a run of plain string contents.
var strSpecial = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// number reads a JSON number (RFC 8259 grammar) and its float64 value.
func (p *parser) number() bool {
	b, i := p.b, p.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return false
		}
	}
	var f float64
	if digits := b[p.i:i]; len(digits) <= 15 && !bytes.ContainsAny(digits, ".eE") {
		// An integer of at most 15 characters is exact in a float64.
		neg := digits[0] == '-'
		if neg {
			digits = digits[1:]
		}
		var n int64
		for _, d := range digits {
			n = n*10 + int64(d-'0')
		}
		f = float64(n)
		if neg {
			f = -f
		}
	} else {
		var err error
		if f, err = strconv.ParseFloat(string(b[p.i:i]), 64); err != nil {
			return false // out of range: encoding/json refuses it too
		}
	}
	p.t.toks = append(p.t.toks, tok{kind: kNumber, start: int32(p.i), end: int32(i), next: int32(len(p.t.toks) + 1), num: f})
	p.i = i
	return true
}

// unescape decodes a quoted JSON string with escapes the way encoding/json
// does (invalid surrogates become U+FFFD).
func unescape(quoted []byte) (string, bool) {
	var s string
	if json.Unmarshal(quoted, &s) != nil {
		return "", false
	}
	return s, true
}

// add records key and reports whether it was already there.
func (ks *keySet) add(key []byte) bool {
	if ks.set != nil {
		if _, dup := ks.set[string(key)]; dup {
			return true
		}
		ks.set[string(key)] = struct{}{}
		return false
	}
	if bit := keyBit(key); ks.bloom&bit == 0 {
		ks.bloom |= bit
	} else {
		for _, k := range ks.keys {
			if len(k) == len(key) && bytes.Equal(k, key) {
				return true
			}
		}
	}
	ks.keys = append(ks.keys, key)
	if len(ks.keys) > linearKeys {
		ks.set = make(map[string]struct{}, 2*len(ks.keys))
		for _, k := range ks.keys {
			ks.set[string(k)] = struct{}{}
		}
	}
	return false
}

// raw is a string token's bytes when it has no escapes.
func (t *tape) raw(i int) []byte { return t.body[t.toks[i].start:t.toks[i].end] }

// str is a string token's value.
func (t *tape) str(i int) string {
	k := &t.toks[i]
	if !k.esc {
		return string(t.body[k.start:k.end])
	}
	s, _ := unescape(t.body[k.start-1 : k.end+1])
	return s
}

// value builds the Go value of the token at i, as encoding/json would.
func (t *tape) value(i int) any {
	k := &t.toks[i]
	switch k.kind {
	case kObject:
		m := make(map[string]any, k.count)
		for j := i + 1; j < int(k.next); {
			key := t.str(j)
			m[key] = t.value(j + 1)
			j = int(t.toks[j+1].next)
		}
		return m
	case kArray:
		a := make([]any, 0, k.count)
		for j := i + 1; j < int(k.next); j = int(t.toks[j].next) {
			a = append(a, t.value(j))
		}
		return a
	case kString:
		return t.str(i)
	case kNumber:
		return k.num
	case kTrue:
		return true
	case kFalse:
		return false
	}
	return nil
}
