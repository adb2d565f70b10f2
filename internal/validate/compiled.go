package validate

import (
	"math"
	"unicode/utf8"

	"github.com/getkin/kin-openapi/openapi3"
)

// A compiled schema answers one question about a JSON value, fast: does
// kin-openapi's OpenAPI 3.0 validator (VisitJSON with this package's
// options) accept it? It is built once per schema at load time and then
// walks the body on a tape (okTape) or decoded (ok) without looking at the
// spec again. kin-openapi
// re-derives everything on every visit (IsEmpty alone walks the schema
// graph below each node with a fresh map), which is most of its cost.
//
// It is a hand-compiled tree rather than a JSON Schema compiler's output
// because the rules to reproduce are kin-openapi's reading of 3.0 (nullable,
// its exact order of checks, which formats it asserts), not JSON Schema's:
// santhosh-tekuri/jsonschema would need the document converted and would
// still differ at the edges. What the tree does not reproduce itself (oneOf,
// not, discriminators, patterns, asserted formats, exclusive bounds,
// multipleOf, uniqueItems, cycles through allOf/anyOf, 3.1-only keywords) it
// hands to kin-openapi for that node and value, so each node's answer is
// kin-openapi's by construction or by the rules below.
//
// Check trusts only an acceptance: a value the tree refuses is checked again
// by kin-openapi, which has the last word and writes the violation. So the
// tree can make a response pass that kin-openapi would refuse only through a
// bug here; TestCompiledAgreesWithKin looks for one on real vendor specs.
type cnode struct {
	kin      *openapi3.Schema
	delegate bool // kin-openapi decides this node for every value

	nullable bool
	empty    bool     // kin's IsEmpty: anything but null passes
	types    typeMask // 0: any type
	anyOf    []*cnode
	allOf    []*cnode

	enum    bool // values restricted to strEnum (and null when enumNil)
	strEnum map[string]struct{}
	enumNil bool

	// Per-type delegation: kin-openapi decides values of that type.
	strKin, numKin bool
	intOnly        bool // type integer without number
	minLen         uint64
	maxLen         *uint64
	min, max       *float64

	minItems uint64
	maxItems *uint64
	items    *cnode // nil: any item

	props    map[string]*cnode
	required []string
	// members is props and required by name, for the tape walk: a
	// required name met counts once (keys are unique on a tape).
	members    map[string]member
	nRequired  int
	minProps   uint64
	maxProps   *uint64
	addlFalse  bool   // additionalProperties: false
	addlSchema *cnode // nil: any additional property
}

type member struct {
	node     *cnode // nil: not a declared property
	required bool
}

type typeMask uint8

const (
	mBool typeMask = 1 << iota
	mInteger
	mNumber
	mString
	mArray
	mObject
)

func (m typeMask) permits(t typeMask) bool { return m == 0 || m&t != 0 }

// compiler builds cnodes, one per *openapi3.Schema.
type compiler struct {
	nodes   map[*openapi3.Schema]*cnode
	onStack map[*openapi3.Schema]bool
	strFmts map[string]bool
}

func newCompiler() *compiler {
	c := &compiler{nodes: map[*openapi3.Schema]*cnode{}, onStack: map[*openapi3.Schema]bool{}, strFmts: map[string]bool{}}
	for k := range stringFormats() {
		c.strFmts[k] = true
	}
	for k := range openapi3.SchemaStringFormats {
		c.strFmts[k] = true
	}
	return c
}

// compile returns the node for s. A schema reached again through allOf or
// anyOf while it is being compiled (the same value visited by the same
// schema: kin-openapi's cycle rule passes it) is left to kin-openapi.
func (c *compiler) compile(s *openapi3.Schema) *cnode {
	if n, ok := c.nodes[s]; ok {
		if c.onStack[s] {
			n.delegate = true
		}
		return n
	}
	n := &cnode{kin: s}
	c.nodes[s] = n
	c.fill(n, s)
	return n
}

func (c *compiler) fill(n *cnode, s *openapi3.Schema) {
	n.nullable = s.Nullable || s.Type.IncludesNull()
	if s.Always != nil || s.Not != nil || len(s.OneOf) > 0 || s.Const != nil ||
		(s.Discriminator != nil && len(s.AnyOf) > 0) || len(s.PrefixItems) > 0 ||
		s.ExclusiveMin.IsSet() || s.ExclusiveMax.IsSet() || s.MultipleOf != nil {
		n.delegate = true
		return
	}
	if s.IsEmpty() {
		n.empty = true
		return
	}
	if s.Type != nil {
		for _, t := range *s.Type {
			switch t {
			case openapi3.TypeBoolean:
				n.types |= mBool
			case openapi3.TypeInteger:
				n.types |= mInteger
			case openapi3.TypeNumber:
				n.types |= mNumber
			case openapi3.TypeString:
				n.types |= mString
			case openapi3.TypeArray:
				n.types |= mArray
			case openapi3.TypeObject:
				n.types |= mObject
			case openapi3.TypeNull:
			default:
				n.delegate = true // a type kin-openapi would name in its error
				return
			}
		}
		if len(*s.Type) > 0 && n.types == 0 {
			n.delegate = true // only "null": leave it to kin
			return
		}
	}
	if len(s.Enum) > 0 {
		n.enum, n.strEnum = true, map[string]struct{}{}
		for _, e := range s.Enum {
			switch e := e.(type) {
			case string:
				n.strEnum[e] = struct{}{}
			case nil:
				n.enumNil = true
			default:
				n.delegate = true
				return
			}
		}
	}
	n.intOnly = n.types.permits(mInteger) && n.types != 0 && n.types&mNumber == 0
	if s.Format != "" {
		n.strKin = c.strFmts[s.Format]
		_, intF := openapi3.SchemaIntegerFormats[s.Format]
		_, numF := openapi3.SchemaNumberFormats[s.Format]
		n.numKin = (n.intOnly && intF) || (!n.intOnly && numF)
	}
	if s.Pattern != "" {
		n.strKin = true
	}
	n.minLen, n.maxLen = s.MinLength, s.MaxLength
	n.min, n.max = s.Min, s.Max
	if s.UniqueItems {
		n.delegate = true
		return
	}
	n.minItems, n.maxItems = s.MinItems, s.MaxItems
	n.minProps, n.maxProps = s.MinProps, s.MaxProps
	n.required = s.Required

	// Same-value edges first (cycles among them are kin's to judge), then
	// the children, which kin visits with a fresh cycle record.
	c.onStack[s] = true
	for _, r := range s.AnyOf {
		if r == nil || r.Value == nil {
			n.delegate = true
			break
		}
		n.anyOf = append(n.anyOf, c.compile(r.Value))
	}
	for _, r := range s.AllOf {
		if r == nil || r.Value == nil {
			n.delegate = true
			break
		}
		n.allOf = append(n.allOf, c.compile(r.Value))
	}
	delete(c.onStack, s)
	if n.delegate {
		return
	}
	if s.Items != nil {
		if s.Items.Value == nil {
			n.delegate = true
			return
		}
		n.items = c.child(s.Items.Value)
	}
	if len(s.Properties) > 0 {
		n.props = make(map[string]*cnode, len(s.Properties))
		for k, r := range s.Properties {
			if r == nil || r.Value == nil {
				n.delegate = true
				return
			}
			n.props[k] = c.child(r.Value)
		}
	}
	n.members = make(map[string]member, len(n.props)+len(n.required))
	for k, p := range n.props {
		n.members[k] = member{node: p}
	}
	for _, k := range n.required {
		if m := n.members[k]; !m.required {
			m.required = true
			n.members[k] = m
			n.nRequired++
		}
	}
	if h := s.AdditionalProperties.Has; h != nil && !*h {
		n.addlFalse = true
	}
	if r := s.AdditionalProperties.Schema; r != nil && !n.addlFalse {
		if r.Value == nil {
			n.delegate = true
			return
		}
		n.addlSchema = c.child(r.Value)
	}
}

// child compiles a schema applied to a nested value: a cycle through it
// descends the instance, so it is not a same-value cycle.
func (c *compiler) child(s *openapi3.Schema) *cnode {
	saved := c.onStack
	c.onStack = map[*openapi3.Schema]bool{}
	n := c.compile(s)
	c.onStack = saved
	return n
}

// kinOK asks kin-openapi about this node and value.
func (n *cnode) kinOK(v any, fast []openapi3.SchemaValidationOption) bool {
	return n.kin.VisitJSON(v, fast...) == nil
}

// ok reports whether kin-openapi accepts v (see cnode); false may be
// a false alarm only where noted, never true where kin would refuse.
func (n *cnode) ok(v any, fast []openapi3.SchemaValidationOption) bool {
	if n.delegate {
		return n.kinOK(v, fast)
	}
	if v == nil && n.nullable {
		return true
	}
	if n.empty {
		return v != nil
	}
	for _, a := range n.allOf {
		if !a.ok(v, fast) {
			return false
		}
	}
	if len(n.anyOf) > 0 {
		matched := false
		for _, a := range n.anyOf {
			if a.ok(v, fast) {
				matched = true
				break
			}
		}
		if !matched {
			return false
		}
	}
	if v == nil && (len(n.anyOf) > 0 || len(n.allOf) > 0) {
		return true
	}
	if n.enum {
		switch x := v.(type) {
		case nil:
			if !n.enumNil {
				return false
			}
		case string:
			if _, in := n.strEnum[x]; !in {
				return false
			}
		default:
			return false
		}
	}
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return n.types.permits(mBool)
	case float64:
		return n.number(x, fast)
	case string:
		return n.str(x, fast)
	case []any:
		return n.array(x, fast)
	case map[string]any:
		return n.object(x, fast)
	}
	return n.kinOK(v, fast)
}

func (n *cnode) number(x float64, fast []openapi3.SchemaValidationOption) bool {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return false
	}
	if n.intOnly {
		if x != math.Trunc(x) {
			return false
		}
	} else if !n.types.permits(mInteger | mNumber) {
		return false
	}
	if n.numKin {
		return n.kinOK(x, fast)
	}
	if n.min != nil && !(*n.min <= x) {
		return false
	}
	if n.max != nil && !(*n.max >= x) {
		return false
	}
	return true
}

func (n *cnode) str(x string, fast []openapi3.SchemaValidationOption) bool {
	if !n.types.permits(mString) {
		return false
	}
	if n.strKin {
		return n.kinOK(x, fast)
	}
	if n.minLen != 0 || n.maxLen != nil {
		// kin-openapi counts runes (its UTF-16 adjustment never applies to
		// a decoded Go string); a string no longer in bytes than maxLength
		// needs no count.
		var l uint64
		if n.minLen != 0 || (n.maxLen != nil && uint64(len(x)) > *n.maxLen) {
			l = uint64(utf8.RuneCountInString(x))
		}
		if n.minLen != 0 && l < n.minLen {
			return false
		}
		if n.maxLen != nil && l > *n.maxLen {
			return false
		}
	}
	return true
}

func (n *cnode) array(x []any, fast []openapi3.SchemaValidationOption) bool {
	if !n.types.permits(mArray) {
		return false
	}
	l := uint64(len(x))
	if n.minItems != 0 && l < n.minItems || n.maxItems != nil && l > *n.maxItems {
		return false
	}
	if n.items != nil {
		for _, it := range x {
			if !n.items.ok(it, fast) {
				return false
			}
		}
	}
	return true
}

func (n *cnode) object(x map[string]any, fast []openapi3.SchemaValidationOption) bool {
	if !n.types.permits(mObject) {
		return false
	}
	l := uint64(len(x))
	if n.minProps != 0 && l < n.minProps || n.maxProps != nil && l > *n.maxProps {
		return false
	}
	for k, v := range x {
		if p, ok := n.props[k]; ok {
			if !p.ok(v, fast) {
				return false
			}
			continue
		}
		if n.addlFalse {
			return false
		}
		if n.addlSchema != nil && !n.addlSchema.ok(v, fast) {
			return false
		}
	}
	for _, k := range n.required {
		if _, ok := x[k]; !ok {
			return false
		}
	}
	return true
}

// okTape is ok for the value at token i of t, without building it; only a
// node left to kin-openapi materialises its value.
func (n *cnode) okTape(t *tape, i int, fast []openapi3.SchemaValidationOption) bool {
	if n.delegate {
		return n.kinOK(t.value(i), fast)
	}
	k := &t.toks[i]
	if k.kind == kNull && n.nullable {
		return true
	}
	if n.empty {
		return k.kind != kNull
	}
	for _, a := range n.allOf {
		if !a.okTape(t, i, fast) {
			return false
		}
	}
	if len(n.anyOf) > 0 {
		matched := false
		for _, a := range n.anyOf {
			if a.okTape(t, i, fast) {
				matched = true
				break
			}
		}
		if !matched {
			return false
		}
	}
	if k.kind == kNull && (len(n.anyOf) > 0 || len(n.allOf) > 0) {
		return true
	}
	if n.enum {
		switch k.kind {
		case kNull:
			if !n.enumNil {
				return false
			}
		case kString:
			var in bool
			if k.esc {
				_, in = n.strEnum[t.str(i)]
			} else {
				_, in = n.strEnum[string(t.raw(i))]
			}
			if !in {
				return false
			}
		default:
			return false
		}
	}
	switch k.kind {
	case kNull:
		return false
	case kTrue, kFalse:
		return n.types.permits(mBool)
	case kNumber:
		return n.number(k.num, fast)
	case kString:
		if !n.types.permits(mString) {
			return false
		}
		if n.strKin || k.esc {
			return n.str(t.str(i), fast)
		}
		if n.minLen != 0 || n.maxLen != nil {
			raw := t.raw(i)
			var l uint64
			if n.minLen != 0 || (n.maxLen != nil && uint64(len(raw)) > *n.maxLen) {
				l = uint64(utf8.RuneCount(raw))
			}
			if n.minLen != 0 && l < n.minLen || n.maxLen != nil && l > *n.maxLen {
				return false
			}
		}
		return true
	case kArray:
		if !n.types.permits(mArray) {
			return false
		}
		l := uint64(k.count)
		if n.minItems != 0 && l < n.minItems || n.maxItems != nil && l > *n.maxItems {
			return false
		}
		if n.items != nil {
			for j := i + 1; j < int(k.next); j = int(t.toks[j].next) {
				if !n.items.okTape(t, j, fast) {
					return false
				}
			}
		}
		return true
	case kObject:
		return n.objectTape(t, i, fast)
	}
	return false
}

func (n *cnode) objectTape(t *tape, i int, fast []openapi3.SchemaValidationOption) bool {
	if !n.types.permits(mObject) {
		return false
	}
	k := &t.toks[i]
	l := uint64(k.count)
	if n.minProps != 0 && l < n.minProps || n.maxProps != nil && l > *n.maxProps {
		return false
	}
	required := 0
	for j := i + 1; j < int(k.next); {
		v := j + 1
		var m member
		var found bool
		if t.toks[j].esc {
			m, found = n.members[t.str(j)]
		} else {
			m, found = n.members[string(t.raw(j))]
		}
		if m.required {
			required++
		}
		switch {
		case found && m.node != nil:
			if !m.node.okTape(t, v, fast) {
				return false
			}
		case n.addlFalse:
			return false
		case n.addlSchema != nil:
			if !n.addlSchema.okTape(t, v, fast) {
				return false
			}
		}
		j = int(t.toks[v].next)
	}
	return required == n.nRequired
}
