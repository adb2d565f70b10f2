package validate

import "bytes"

// observeTape is ObserveValue for a body on a tape (see tape): the same
// walk as routeDrift.walk, in document order instead of map order, without
// building the body's Go values.
func (d *Drift) observeTape(method, template string, status int, t *tape) {
	r := d.route(method, template, status)
	if r == nil {
		return
	}
	r.mu.Lock()
	r.n++
	learning := r.n <= d.learnN
	shaped := false
	if !learning {
		if r.quiet != nil && r.quietFlips == r.flips {
			if end, same := matchShape(r.quiet, 0, t, 0, 0); same && end == len(r.quiet) {
				r.mu.Unlock()
				return
			}
		}
		r.shape, shaped = appendShape(r.shape[:0], t, 0, 0)
	}
	var out []change
	r.walkTape(t, 0, r.root, learning, 0, &out)
	changes := r.finish(out, learning, d.learnN)
	if shaped {
		// After this walk, the same shape again would find nothing: its
		// new fields exist, its changes are in r.reported, and what it
		// lacks of r.always (fixed once learning ends) was reported too.
		r.quiet, r.quietFlips = append(r.quiet[:0], r.shape...), r.flips
	}
	r.mu.Unlock()
	for _, c := range changes {
		d.report(method+" "+template, status, c)
	}
}

func tapeTypeBit(k *tok) uint8 {
	switch k.kind {
	case kNull:
		return tNull
	case kTrue, kFalse:
		return tBool
	case kNumber:
		return tNumber
	case kString:
		return tString
	case kArray:
		return tArray
	}
	return tObject
}

// tapeJSONType is jsonType for a token.
func tapeJSONType(k *tok) string {
	switch k.kind {
	case kNull:
		return "null"
	case kTrue, kFalse:
		return "boolean"
	case kNumber:
		return jsonType(k.num)
	case kString:
		return "string"
	case kArray:
		return "array"
	}
	return "object"
}

func (r *routeDrift) walkTape(tp *tape, i int, n *node, learning bool, depth int, out *[]change) {
	if n.lastGen != r.n {
		n.lastGen = r.n
		if learning {
			n.seen++
		}
	}
	k := &tp.toks[i]
	t := tapeTypeBit(k)
	switch {
	case t == tNull:
	case n.specKnown && n.spec != nil:
		if allowed := n.allowed(); allowed != 0 && !(allowed&t != 0 || t == tNumber && allowed&tInteger != 0 && tapeJSONType(k) == "integer") {
			r.add(out, change{kind: ChangeTypeChange, path: n.path(), from: typeNames(allowed), to: tapeJSONType(k)})
		}
	case !learning && n.types&^tNull != 0 && n.types&t == 0:
		r.add(out, change{kind: ChangeTypeChange, path: n.path(), from: typeNames(n.types), to: tapeJSONType(k)})
	}
	n.types |= t
	if depth >= driftMaxDepth {
		return
	}
	switch k.kind {
	case kObject:
		n.objGen = r.n
		for j := i + 1; j < int(k.next); {
			v := j + 1
			var c *node
			var isNew bool
			if tp.toks[j].esc {
				c, isNew = r.child(n, tp.str(j), learning)
			} else if c = r.known(n, tp.raw(j)); c == nil {
				c, isNew = r.child(n, string(tp.raw(j)), learning)
			}
			if isNew {
				r.add(out, change{kind: ChangeNewField, path: c.path(), to: tapeJSONType(&tp.toks[v])})
			}
			r.walkTape(tp, v, c, learning, depth+1, out)
			j = int(tp.toks[v].next)
		}
	case kArray:
		if k.count == 0 {
			return
		}
		c := r.itemsNode(n)
		for j, e := i+1, 0; j < int(k.next) && e < driftArraySample; j, e = int(tp.toks[j].next), e+1 {
			r.walkTape(tp, j, c, learning, depth+1, out)
		}
	}
}

// known is child's first step for a key already seen, without making the
// key a string.
func (r *routeDrift) known(n *node, key []byte) *node {
	if n.mapLike {
		return n.children["*"]
	}
	return n.children[string(key)]
}

// maxShape bounds the shapes observeTape keeps (a list page's can be a
// good part of its size); a bigger body is walked every time.
const maxShape = 16 << 10

// appendShape appends to b what walkTape's outcome depends on in the value
// at token i: each value's JSON type (integer apart from number), each
// object's keys in order, the first driftArraySample elements of each
// array, down to driftMaxDepth. Two bodies of one shape walk the same nodes
// with the same types. False: longer than maxShape.
func appendShape(b []byte, tp *tape, i, depth int) ([]byte, bool) {
	k := &tp.toks[i]
	c := k.kind
	if c == kNumber && tapeJSONType(k) == "integer" {
		c = 'i'
	}
	b = append(b, c)
	if depth >= driftMaxDepth {
		return b, true
	}
	ok := true
	switch k.kind {
	case kObject:
		for j := i + 1; j < int(k.next) && ok; {
			raw := tp.raw(j)
			if len(b)+len(raw) > maxShape {
				return b, false
			}
			// Length first, so keys cannot run into each other; raw
			// bytes (escapes and all) of equal keys are equal or the shape
			// just misses.
			n := len(raw)
			b = append(b, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
			b = append(b, raw...)
			b, ok = appendShape(b, tp, j+1, depth+1)
			j = int(tp.toks[j+1].next)
		}
		b = append(b, '}')
	case kArray:
		for j, e := i+1, 0; j < int(k.next) && e < driftArraySample && ok; j, e = int(tp.toks[j].next), e+1 {
			b, ok = appendShape(b, tp, j, depth+1)
		}
		b = append(b, ']')
	}
	return b, ok && len(b) <= maxShape
}

// matchShape reports whether s[at:] starts with the shape of the value at
// token i (appendShape's bytes, compared as they would be appended), and
// where that shape ends in s.
func matchShape(s []byte, at int, tp *tape, i, depth int) (int, bool) {
	k := &tp.toks[i]
	c := k.kind
	if c == kNumber && tapeJSONType(k) == "integer" {
		c = 'i'
	}
	if at >= len(s) || s[at] != c {
		return at, false
	}
	at++
	if depth >= driftMaxDepth {
		return at, true
	}
	same := true
	switch k.kind {
	case kObject:
		for j := i + 1; j < int(k.next); {
			raw := tp.raw(j)
			n := len(raw)
			if at+4+n > len(s) || s[at] != byte(n>>24) || s[at+1] != byte(n>>16) || s[at+2] != byte(n>>8) || s[at+3] != byte(n) ||
				!bytes.Equal(s[at+4:at+4+n], raw) {
				return at, false
			}
			if at, same = matchShape(s, at+4+n, tp, j+1, depth+1); !same {
				return at, false
			}
			j = int(tp.toks[j+1].next)
		}
		if at >= len(s) || s[at] != '}' {
			return at, false
		}
	case kArray:
		for j, e := i+1, 0; j < int(k.next) && e < driftArraySample; j, e = int(tp.toks[j].next), e+1 {
			if at, same = matchShape(s, at, tp, j, depth+1); !same {
				return at, false
			}
		}
		if at >= len(s) || s[at] != ']' {
			return at, false
		}
	default:
		return at, true
	}
	return at + 1, true
}
