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
	// After a walk past learning, the same shape again would find nothing:
	// its new fields exist, its changes are in r.reported, and what it
	// lacks of r.always (fixed once learning ends) was reported too. The
	// shape was built by the parse (tape.shape).
	if !learning && t.shapeOK && r.quiet != nil && r.quietFlips == r.flips && bytes.Equal(r.quiet, t.shape) {
		r.mu.Unlock()
		return
	}
	var out []change
	r.walkTape(t, 0, r.root, learning, 0, &out)
	changes := r.finish(out, learning, d.learnN)
	if !learning && t.shapeOK {
		r.quiet, r.quietFlips = append(r.quiet[:0], t.shape...), r.flips
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
