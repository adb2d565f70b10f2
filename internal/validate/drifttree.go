package validate

import (
	"slices"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
)

// routeDrift is the learned shape of one route and status: a tree of the
// paths seen, walked alongside each response without building path strings
// (a string is made only when something is reported).
type routeDrift struct {
	mu       sync.Mutex
	spec     *Spec
	root     *node
	n        int     // responses observed
	always   []*node // after learning: paths present in every baseline response
	reported map[string]bool
	events   int
	// flips counts objects turned map-like: the one change to the tree
	// that can make a body walked before meet different nodes.
	flips int
	// quiet is the shape (see tape.shape) of a body walked after
	// learning, when flips was quietFlips: walking that shape again finds
	// nothing new (every change it could report is reported, every node it
	// meets exists), so observeTape skips it.
	quiet      []byte
	quietFlips int
}

// Type bits. Integer and number share one bit for baselines.
const (
	tNull uint8 = 1 << iota
	tBool
	tNumber
	tString
	tArray
	tObject
	tInteger // only in spec type sets
)

type node struct {
	parent   *node
	name     string // key, "[]" for array items, "*" for folded keys
	children map[string]*node
	types    uint8
	seen     int // baseline responses containing this path
	lastGen  int
	objGen   int // last response in which this path held an object

	spec       specSet // schemas that apply here (spec mode)
	specKnown  bool
	mapLike    bool // keys below are data, not fields
	undeclared int  // children the spec does not declare (all of them without a spec)

	allowedSet  bool // allowedBits holds spec.types()
	allowedBits uint8
}

// allowed is n.spec.types(), computed once: spec is fixed when n is made.
func (n *node) allowed() uint8 {
	if !n.allowedSet {
		n.allowedBits, n.allowedSet = n.spec.types(), true
	}
	return n.allowedBits
}

type specSet []*openapi3.Schema

func (r *routeDrift) observe(v any, learnN int) []change {
	r.n++
	learning := r.n <= learnN
	var out []change
	r.walk(v, r.root, learning, 0, &out)
	return r.finish(out, learning, learnN)
}

// finish ends the observation of one response: the baseline is fixed after
// the learnN-th, and after it paths always seen before are looked for.
func (r *routeDrift) finish(out []change, learning bool, learnN int) []change {
	if r.n == learnN {
		r.always = r.always[:0]
		r.collectAlways(r.root, learnN)
	}
	if !learning {
		for _, n := range r.always {
			if n.lastGen != r.n && n.parent != nil && n.parent.objGen == r.n {
				r.add(&out, change{kind: ChangeMissing, path: n.path()})
			}
		}
	}
	return out
}

func (r *routeDrift) collectAlways(n *node, learnN int) {
	for _, c := range n.children {
		if c.seen == learnN {
			r.always = append(r.always, c)
			r.collectAlways(c, learnN)
		}
	}
}

func (r *routeDrift) add(out *[]change, c change) {
	key := c.kind + " " + c.path
	if r.reported[key] || r.events > driftMaxEvents {
		return
	}
	r.reported[key] = true
	r.events++
	if r.events > driftMaxEvents {
		c = change{kind: ChangeOverflow}
	}
	*out = append(*out, c)
}

func (r *routeDrift) walk(v any, n *node, learning bool, depth int, out *[]change) {
	if n.lastGen != r.n {
		n.lastGen = r.n
		if learning {
			n.seen++
		}
	}
	t := typeBit(v)
	switch {
	case t == tNull:
	case n.specKnown && n.spec != nil:
		if allowed := n.allowed(); allowed != 0 && !permits(allowed, v, t) {
			r.add(out, change{kind: ChangeTypeChange, path: n.path(), from: typeNames(allowed), to: jsonType(v)})
		}
	case !learning && n.types&^tNull != 0 && n.types&t == 0:
		r.add(out, change{kind: ChangeTypeChange, path: n.path(), from: typeNames(n.types), to: jsonType(v)})
	}
	n.types |= t
	if depth >= driftMaxDepth {
		return
	}
	switch x := v.(type) {
	case map[string]any:
		n.objGen = r.n
		for k, cv := range x {
			c, isNew := r.child(n, k, learning)
			if isNew {
				r.add(out, change{kind: ChangeNewField, path: c.path(), to: jsonType(cv)})
			}
			r.walk(cv, c, learning, depth+1, out)
		}
	case []any:
		if len(x) == 0 {
			return
		}
		c := r.itemsNode(n)
		for i, e := range x {
			if i == driftArraySample {
				break
			}
			r.walk(e, c, learning, depth+1, out)
		}
	}
}

// itemsNode is the node of n's array items.
func (r *routeDrift) itemsNode(n *node) *node {
	c := n.children["[]"]
	if c == nil {
		c = &node{parent: n, name: "[]"}
		if n.specKnown {
			c.spec, c.specKnown = n.spec.items(), true
		}
		n.children = ensure(n.children)
		n.children["[]"] = c
	}
	return c
}

// child returns the node for key k below n, creating it, and reports whether
// k is a new field to report.
func (r *routeDrift) child(n *node, k string, learning bool) (*node, bool) {
	// Known keys first: the spec lookup below allocates.
	if n.mapLike {
		if c := n.children["*"]; c != nil {
			return c, false
		}
	} else if c := n.children[k]; c != nil {
		return c, false
	}
	declared, mapLike := false, n.mapLike
	var sub specSet
	if n.specKnown && !mapLike {
		sub, declared, mapLike = n.spec.property(k)
		if mapLike && !n.spec.hasProperties() {
			n.mapLike = true // a pure map: every key is data
			r.flips++
		}
	}
	name := k
	if mapLike || !declared && !r.spec.segmentSafe(k) {
		name = "*"
	}
	if c := n.children[name]; c != nil {
		return c, false
	}
	if !declared && !mapLike {
		if n.undeclared >= driftMaxKeys {
			// Too many distinct undeclared keys for fields: this object is
			// a map, and its keys are data.
			n.mapLike, mapLike, name = true, true, "*"
			r.flips++
			if c := n.children[name]; c != nil {
				return c, false
			}
		}
		n.undeclared++
	}
	c := &node{parent: n, name: name}
	if n.specKnown {
		c.spec, c.specKnown = sub, declared || mapLike
	}
	n.children = ensure(n.children)
	n.children[name] = c
	switch {
	case mapLike:
		return c, false
	case n.specKnown:
		return c, !declared
	default:
		return c, !learning
	}
}

func ensure(m map[string]*node) map[string]*node {
	if m == nil {
		return map[string]*node{}
	}
	return m
}

func (n *node) path() string {
	var parts []string
	for c := n; c.parent != nil; c = c.parent {
		parts = append(parts, escapePointer(c.name))
	}
	slices.Reverse(parts)
	if len(parts) == 0 {
		return "/"
	}
	return "/" + strings.Join(parts, "/")
}

func typeBit(v any) uint8 {
	switch v.(type) {
	case nil:
		return tNull
	case bool:
		return tBool
	case float64:
		return tNumber
	case string:
		return tString
	case []any:
		return tArray
	case map[string]any:
		return tObject
	}
	return 0
}

func permits(allowed uint8, v any, t uint8) bool {
	if t == tNumber {
		if allowed&tNumber != 0 {
			return true
		}
		return allowed&tInteger != 0 && jsonType(v) == "integer"
	}
	return allowed&t != 0
}

func typeNames(bits uint8) string {
	var names []string
	for _, x := range []struct {
		bit  uint8
		name string
	}{{tNull, "null"}, {tBool, "boolean"}, {tInteger, "integer"}, {tNumber, "number"}, {tString, "string"}, {tArray, "array"}, {tObject, "object"}} {
		if bits&x.bit != 0 {
			names = append(names, x.name)
		}
	}
	return strings.Join(names, " or ")
}
