package validate

import (
	"errors"
	"fmt"
	"math/big"
	"slices"
	"sort"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
)

// Rule texts are written here from the schema (what the spec wanted) and the
// JSON type of the instance, never from the libraries' messages: those quote
// the value ("'x' is not valid email") or the whole schema, and kin-openapi's
// 3.1 path says outright that its messages include values.

// addKin converts a kin-openapi (OpenAPI 3.0) validation error.
func (s *Spec) addKin(v *Violation, err error) {
	var me openapi3.MultiError
	if errors.As(err, &me) && !isSchemaError(err) {
		for _, e := range me {
			s.addKin(v, e)
		}
		return
	}
	var se *openapi3.SchemaError
	if !errors.As(err, &se) {
		v.add("", "schema")
		return
	}
	path := se.JSONPointer()
	switch se.SchemaField {
	case "allOf":
		// Report what broke inside the allOf branches, not the allOf itself.
		var inner openapi3.MultiError
		if se.Origin != nil && errors.As(se.Origin, &inner) {
			s.addKin(v, inner)
			return
		}
	case "properties":
		// An undeclared property where additionalProperties is false: name
		// the field (if it may be named), not the object.
		obj, _ := se.Value.(map[string]any)
		var extra []string
		for k := range obj {
			if se.Schema == nil || se.Schema.Properties[k] == nil {
				extra = append(extra, k)
			}
		}
		sort.Strings(extra)
		for _, k := range extra {
			v.add(s.pointer(append(slices.Clone(path), k)), "additionalProperties: not allowed")
		}
		if len(extra) > 0 {
			return
		}
	}
	v.add(s.pointer(path), kinRule(se))
}

func isSchemaError(err error) bool {
	_, ok := err.(*openapi3.SchemaError)
	return ok
}

func kinRule(e *openapi3.SchemaError) string {
	sc := e.Schema
	if sc == nil {
		sc = &openapi3.Schema{}
	}
	switch f := e.SchemaField; f {
	case "type", "nullable":
		want := "any"
		if sc.Type != nil && len(*sc.Type) > 0 {
			want = strings.Join(sc.Type.Slice(), " or ")
		}
		return fmt.Sprintf("type: want %s, got %s", want, jsonType(e.Value))
	case "required":
		return "required: missing"
	case "enum":
		return enumRule(sc.Enum)
	case "format":
		return "format: want " + sc.Format
	case "pattern":
		return "pattern: want a match of " + clip(sc.Pattern, 80)
	case "minLength":
		return fmt.Sprintf("minLength: want at least %d characters", sc.MinLength)
	case "maxLength":
		return fmt.Sprintf("maxLength: want at most %d characters", deref(sc.MaxLength))
	case "minimum", "exclusiveMinimum":
		return fmt.Sprintf("%s: want %s %g", f, cmpWord(f), derefF(sc.Min, sc.ExclusiveMin.Value))
	case "maximum", "exclusiveMaximum":
		return fmt.Sprintf("%s: want %s %g", f, cmpWord(f), derefF(sc.Max, sc.ExclusiveMax.Value))
	case "multipleOf":
		return fmt.Sprintf("multipleOf: want a multiple of %g", derefF(sc.MultipleOf, nil))
	case "minItems":
		return fmt.Sprintf("minItems: want at least %d items", sc.MinItems)
	case "maxItems":
		return fmt.Sprintf("maxItems: want at most %d items", deref(sc.MaxItems))
	case "uniqueItems":
		return "uniqueItems: duplicate items"
	case "minProperties":
		return fmt.Sprintf("minProperties: want at least %d properties", sc.MinProps)
	case "maxProperties":
		return fmt.Sprintf("maxProperties: want at most %d properties", deref(sc.MaxProps))
	case "oneOf":
		if errors.Is(e.Origin, openapi3.ErrOneOfConflict) {
			return "oneOf: matches more than one schema"
		}
		return fmt.Sprintf("oneOf: matches none of %d schemas", len(sc.OneOf))
	case "anyOf":
		return fmt.Sprintf("anyOf: matches none of %d schemas", len(sc.AnyOf))
	case "allOf":
		return "allOf: does not match every schema"
	case "not":
		return "not: matches a schema it must not"
	case "discriminator":
		return "discriminator: missing or unknown"
	case "writeOnly":
		return "writeOnly: property must not appear in a response"
	case "boolean":
		return "schema: false (no value allowed)"
	case "":
		return "schema"
	default:
		return f
	}
}

func cmpWord(field string) string {
	switch field {
	case "minimum":
		return ">="
	case "exclusiveMinimum":
		return ">"
	case "maximum":
		return "<="
	}
	return "<"
}

func enumRule(values []any) string {
	if len(values) == 0 || len(values) > 8 {
		return fmt.Sprintf("enum: not one of the %d allowed values", len(values))
	}
	parts := make([]string, len(values))
	for i, x := range values {
		parts[i] = fmt.Sprint(x)
	}
	return "enum: want one of " + clip(strings.Join(parts, ", "), 120)
}

func ratString(r *big.Rat) string {
	if r == nil {
		return "?"
	}
	f, _ := r.Float64()
	return fmt.Sprintf("%g", f)
}

func deref(p *uint64) uint64 {
	if p == nil {
		return 0
	}
	return *p
}

func derefF(a, b *float64) float64 {
	switch {
	case a != nil:
		return *a
	case b != nil:
		return *b
	}
	return 0
}

// addJS converts a JSON Schema 2020-12 (OpenAPI 3.1) validation error.
func (s *Spec) addJS(v *Violation, err error) {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		v.add("", "schema")
		return
	}
	s.walkJS(v, ve)
}

func (s *Spec) walkJS(v *Violation, e *jsonschema.ValidationError) {
	switch e.ErrorKind.(type) {
	case *kind.Schema, *kind.Reference, *kind.Group, *kind.AllOf:
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				s.walkJS(v, c)
			}
			return
		}
	}
	path := e.InstanceLocation
	switch k := e.ErrorKind.(type) {
	case *kind.Required:
		for _, m := range k.Missing {
			v.add(s.pointer(append(slices.Clone(path), m)), "required: missing")
		}
		return
	case *kind.AdditionalProperties:
		for _, p := range k.Properties {
			v.add(s.pointer(append(slices.Clone(path), p)), "additionalProperties: not allowed")
		}
		return
	}
	v.add(s.pointer(path), jsRule(e.ErrorKind))
}

func jsRule(k jsonschema.ErrorKind) string {
	switch k := k.(type) {
	case *kind.Type:
		return fmt.Sprintf("type: want %s, got %s", strings.Join(k.Want, " or "), k.Got)
	case *kind.Enum:
		return enumRule(k.Want)
	case *kind.Const:
		return "const: not the one allowed value"
	case *kind.Format:
		return "format: want " + k.Want
	case *kind.Pattern:
		return "pattern: want a match of " + clip(k.Want, 80)
	case *kind.MinLength:
		return fmt.Sprintf("minLength: want at least %d characters", k.Want)
	case *kind.MaxLength:
		return fmt.Sprintf("maxLength: want at most %d characters", k.Want)
	case *kind.Minimum:
		return "minimum: want >= " + ratString(k.Want)
	case *kind.Maximum:
		return "maximum: want <= " + ratString(k.Want)
	case *kind.ExclusiveMinimum:
		return "exclusiveMinimum: want > " + ratString(k.Want)
	case *kind.ExclusiveMaximum:
		return "exclusiveMaximum: want < " + ratString(k.Want)
	case *kind.MultipleOf:
		return "multipleOf: want a multiple of " + ratString(k.Want)
	case *kind.MinItems:
		return fmt.Sprintf("minItems: want at least %d items", k.Want)
	case *kind.MaxItems:
		return fmt.Sprintf("maxItems: want at most %d items", k.Want)
	case *kind.UniqueItems:
		return "uniqueItems: duplicate items"
	case *kind.MinProperties:
		return fmt.Sprintf("minProperties: want at least %d properties", k.Want)
	case *kind.MaxProperties:
		return fmt.Sprintf("maxProperties: want at most %d properties", k.Want)
	case *kind.AnyOf:
		return "anyOf: matches none of the schemas"
	case *kind.OneOf:
		if len(k.Subschemas) > 1 {
			return "oneOf: matches more than one schema"
		}
		return "oneOf: matches none of the schemas"
	case *kind.Not:
		return "not: matches a schema it must not"
	case *kind.FalseSchema:
		return "schema: false (no value allowed)"
	case *kind.DependentRequired:
		return "dependentRequired: missing " + strings.Join(k.Missing, ", ")
	default:
		if kw := k.KeywordPath(); len(kw) > 0 {
			return kw[len(kw)-1]
		}
		return "schema"
	}
}
