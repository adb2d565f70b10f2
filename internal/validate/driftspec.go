package validate

import (
	"github.com/getkin/kin-openapi/openapi3"
)

// responseSchema is the schema of the JSON body the spec documents for a
// route and status, or nil (no spec, no operation, no JSON schema).
func (s *Spec) responseSchema(method, template string, status int) *openapi3.Schema {
	if s == nil {
		return nil
	}
	op := s.lookup(method, template)
	if op == nil || op.responses == nil {
		return nil
	}
	rr := op.responses.Status(status)
	if rr == nil {
		rr = op.responses.Default()
	}
	if rr == nil || rr.Value == nil {
		return nil
	}
	if m := rr.Value.Content.Get("application/json"); m != nil && m.Schema != nil {
		return m.Schema.Value
	}
	for _, k := range sortedKeys(rr.Value.Content) {
		if m := rr.Value.Content[k]; isJSONMediaType(k) && m != nil && m.Schema != nil {
			return m.Schema.Value
		}
	}
	return nil
}

// specSetOf flattens a schema and its allOf/anyOf/oneOf members: for drift,
// a field is declared if any of them declares it, and a type is allowed if
// any of them allows it.
func specSetOf(roots ...*openapi3.Schema) specSet {
	var out specSet
	seen := map[*openapi3.Schema]bool{}
	var add func(sc *openapi3.Schema, depth int)
	add = func(sc *openapi3.Schema, depth int) {
		if sc == nil || seen[sc] || depth > 16 {
			return
		}
		seen[sc] = true
		out = append(out, sc)
		for _, refs := range []openapi3.SchemaRefs{sc.AllOf, sc.AnyOf, sc.OneOf} {
			for _, r := range refs {
				if r != nil {
					add(r.Value, depth+1)
				}
			}
		}
	}
	for _, r := range roots {
		add(r, 0)
	}
	return out
}

// types returns the type bits the set allows, or 0 when any type is allowed.
func (set specSet) types() uint8 {
	var bits uint8
	for _, sc := range set {
		if sc.Type == nil || len(*sc.Type) == 0 {
			switch {
			case len(sc.Properties) > 0 || sc.AdditionalProperties.Schema != nil:
				bits |= tObject
			case sc.Items != nil:
				bits |= tArray
			case len(sc.AllOf)+len(sc.AnyOf)+len(sc.OneOf) > 0:
				// a combinator carrier: its members say
			default:
				return 0
			}
		} else {
			for _, t := range *sc.Type {
				bits |= typeBitOf(t)
			}
		}
		if sc.Nullable {
			bits |= tNull
		}
	}
	return bits
}

func typeBitOf(t string) uint8 {
	switch t {
	case "null":
		return tNull
	case "boolean":
		return tBool
	case "integer":
		return tInteger
	case "number":
		return tNumber
	case "string":
		return tString
	case "array":
		return tArray
	case "object":
		return tObject
	}
	return 0
}

// property looks a key up: the schemas that declare it, whether it is
// declared, and whether the object is a map whose keys are data.
func (set specSet) property(k string) (specSet, bool, bool) {
	var sub []*openapi3.Schema
	hasProps := false
	for _, sc := range set {
		if len(sc.Properties) > 0 {
			hasProps = true
		}
		if p := sc.Properties[k]; p != nil {
			sub = append(sub, p.Value)
		}
	}
	if len(sub) > 0 {
		return specSetOf(sub...), true, false
	}
	mapLike := !hasProps
	for _, sc := range set {
		if sc.AdditionalProperties.Schema != nil {
			sub = append(sub, sc.AdditionalProperties.Schema.Value)
			mapLike = true
		}
		if has := sc.AdditionalProperties.Has; has != nil && *has {
			mapLike = true
		}
		if len(sc.PatternProperties) > 0 {
			mapLike = true
		}
	}
	return specSetOf(sub...), false, mapLike
}

func (set specSet) hasProperties() bool {
	for _, sc := range set {
		if len(sc.Properties) > 0 {
			return true
		}
	}
	return false
}

// items is the set for array elements.
func (set specSet) items() specSet {
	var sub []*openapi3.Schema
	for _, sc := range set {
		if sc.Items != nil {
			sub = append(sub, sc.Items.Value)
		}
	}
	return specSetOf(sub...)
}
