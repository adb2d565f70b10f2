package validate

import "github.com/getkin/kin-openapi/openapi3"

// declaredNames collects every property name the response schemas declare
// (a violation or drift path may repeat those) and notes whether any of them
// is writeOnly.
func declaredNames(s *Spec) map[string]struct{} {
	names := map[string]struct{}{}
	seen := map[*openapi3.Schema]bool{}
	var walk func(sc *openapi3.Schema)
	walkRefs := func(refs openapi3.SchemaRefs) {
		for _, r := range refs {
			if r != nil {
				walk(r.Value)
			}
		}
	}
	walkRef := func(r *openapi3.SchemaRef) {
		if r != nil {
			walk(r.Value)
		}
	}
	walk = func(sc *openapi3.Schema) {
		if sc == nil || seen[sc] {
			return
		}
		seen[sc] = true
		for name, p := range sc.Properties {
			names[name] = struct{}{}
			if p != nil && p.Value != nil && p.Value.WriteOnly {
				s.writeOnly = true
			}
			walkRef(p)
		}
		for _, name := range sc.Required {
			names[name] = struct{}{}
		}
		walkRefs(sc.AllOf)
		walkRefs(sc.AnyOf)
		walkRefs(sc.OneOf)
		walkRefs(sc.PrefixItems)
		walkRef(sc.Not)
		walkRef(sc.Items)
		walkRef(sc.AdditionalProperties.Schema)
		walkRef(sc.If)
		walkRef(sc.Then)
		walkRef(sc.Else)
		walkRef(sc.Contains)
		for _, p := range sc.PatternProperties {
			walkRef(p)
		}
	}
	for _, m := range s.mtIndex {
		walk(m.schema)
	}
	return names
}
