package validate

import (
	"bytes"
	"encoding/json"
	"strconv"
	"sync"
	"unicode/utf8"
)

// scanJSON looks at a JSON body before it is decoded and refuses three things
// encoding/json would let through:
//
//   - nesting deeper than maxDepth (encoding/json has no depth option, and a
//     decoder that recursed that deep is what the limit exists to avoid);
//   - invalid UTF-8 (encoding/json silently replaces it with U+FFFD, so the
//     caller's parser might read different text than the validator did);
//   - duplicate object keys (encoding/json keeps the last, other parsers the
//     first: {"amount":1,"amount":"x"} would pass validation as one value
//     and reach the caller as the other).
//
// It is hand-written because no library offers these checks without decoding
// the body into a tree first. It tracks only string boundaries, nesting and
// keys; syntax errors are left to json.Unmarshal, which runs next.
func scanJSON(b []byte, maxDepth int) *scanErr {
	var st scanner
	return st.check(b, maxDepth)
}

// scannerPool reuses stacks and key slices between calls: without it, the
// allocations cost more than the scan itself on small bodies. Each
// Validator owns one.
type scannerPool struct{ p sync.Pool }

func (sp *scannerPool) scan(b []byte, maxDepth int) *scanErr {
	st, _ := sp.p.Get().(*scanner)
	if st == nil {
		st = new(scanner)
	}
	err := st.check(b, maxDepth)
	st.release()
	sp.p.Put(st)
	return err
}

func (s *scanner) check(b []byte, maxDepth int) *scanErr {
	if !utf8.Valid(b) {
		return &scanErr{reason: ReasonMalformed, rule: "encoding: not valid UTF-8"}
	}
	s.maxDepth, s.stack = maxDepth, s.stack[:0]
	return s.run(b)
}

// release drops references into the last body so the pool does not keep it
// alive.
func (s *scanner) release() {
	for i := range s.stack[:cap(s.stack)] {
		f := &s.stack[:cap(s.stack)][i]
		f.key, f.set = nil, nil
		clear(f.keys[:cap(f.keys)])
	}
}

type scanErr struct {
	reason Reason
	rule   string
	path   []string
}

type frame struct {
	object bool
	index  int
	key    []byte
	keys   [][]byte
	set    map[string]struct{}
}

type scanner struct {
	maxDepth int
	stack    []frame
}

// linearKeys is how many keys an object may have before duplicate checks
// switch from comparing with each earlier key to a map.
const linearKeys = 64

func (s *scanner) run(b []byte) *scanErr {
	expectKey := false
	for i := 0; i < len(b); {
		switch c := b[i]; c {
		case '{', '[':
			if len(s.stack) >= s.maxDepth {
				return &scanErr{reason: ReasonTooDeep, rule: "depth: nested deeper than " + strconv.Itoa(s.maxDepth) + " levels", path: s.path()}
			}
			s.push(c == '{')
			expectKey = c == '{'
			i++
		case '}', ']':
			if len(s.stack) == 0 {
				return &scanErr{reason: ReasonMalformed, rule: "body: not valid JSON"}
			}
			s.stack = s.stack[:len(s.stack)-1]
			expectKey = false
			i++
		case ',':
			if n := len(s.stack); n > 0 {
				if s.stack[n-1].object {
					expectKey = true
				} else {
					s.stack[n-1].index++
				}
			}
			i++
		case '"':
			end, escaped := stringEnd(b, i+1)
			if end < 0 {
				return &scanErr{reason: ReasonMalformed, rule: "body: not valid JSON"}
			}
			if n := len(s.stack); expectKey && n > 0 && s.stack[n-1].object {
				key := b[i+1 : end]
				if escaped {
					var k string
					if json.Unmarshal(b[i:end+1], &k) != nil {
						return &scanErr{reason: ReasonMalformed, rule: "body: not valid JSON"}
					}
					key = []byte(k)
				}
				if s.stack[n-1].addKey(key) {
					return &scanErr{reason: ReasonMalformed, rule: "duplicate key", path: s.path()}
				}
				expectKey = false
			}
			i = end + 1
		default:
			i++
		}
	}
	return nil
}

func (s *scanner) push(object bool) {
	if n := len(s.stack); n < cap(s.stack) {
		s.stack = s.stack[:n+1]
		f := &s.stack[n]
		f.object, f.index, f.key, f.keys, f.set = object, 0, nil, f.keys[:0], nil
		return
	}
	s.stack = append(s.stack, frame{object: object})
}

// addKey records key in an object frame and reports whether it was a duplicate.
func (f *frame) addKey(key []byte) bool {
	f.key = key
	if f.set != nil {
		if _, dup := f.set[string(key)]; dup {
			return true
		}
		f.set[string(key)] = struct{}{}
		return false
	}
	for _, k := range f.keys {
		// Length and first byte first: most keys differ there, and the
		// check stays inline.
		if len(k) == len(key) && (len(k) == 0 || k[0] == key[0]) && bytes.Equal(k, key) {
			return true
		}
	}
	f.keys = append(f.keys, key)
	if len(f.keys) > linearKeys {
		f.set = make(map[string]struct{}, 2*len(f.keys))
		for _, k := range f.keys {
			f.set[string(k)] = struct{}{}
		}
	}
	return false
}

func (s *scanner) path() []string {
	out := make([]string, 0, len(s.stack))
	for _, f := range s.stack {
		if f.object {
			if f.key == nil {
				break
			}
			out = append(out, string(f.key))
		} else {
			out = append(out, strconv.Itoa(f.index))
		}
	}
	return out
}

// stringEnd returns the index of the quote closing a string whose contents
// start at i, and whether the string holds escapes; -1 if it never closes.
func stringEnd(b []byte, i int) (int, bool) {
	escaped := false
	for ; i < len(b); i++ {
		switch b[i] {
		case '"':
			return i, escaped
		case '\\':
			escaped = true
			i++
		}
	}
	return -1, escaped
}
