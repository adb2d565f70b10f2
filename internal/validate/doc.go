// Package validate owns what Portcullis checks in a vendor's response before
// any caller sees it (DESIGN.md step 10): validation against the vendor's
// OpenAPI 3.0 or 3.1 document, and schema drift detection.
//
// # Validator choice
//
// Specs are loaded with kin-openapi (github.com/getkin/kin-openapi). It was
// picked over pb33f's libopenapi-validator (v0.16.2) by measurement on real
// vendor documents (Stripe, Slack, Twilio, GitHub), with a throwaway harness
// kept out of the module so as not to depend on both: the two accepted and
// rejected the same generated responses, but libopenapi-validator needed
// 4 min 30 s and 1.4 GB of heap to compile Stripe's 451 response schemas
// (kin-openapi: 0.6 s to load and 0.8 s to check the document, 19 MB) and
// then validated those bodies 12x slower. OpenAPI 3.0 bodies are
// checked by a tree compiled once per response schema at load time (see
// cnode in compiled.go) that gives kin-openapi's verdict without re-deriving
// the schema per request. It walks the body parsed once onto a flat tape
// (tape.go), which drift detection walks too, so a valid body is never
// decoded into Go values; a body the tape parser or the tree refuses takes
// the full path (pre-scan, encoding/json, kin-openapi's own walk), which has
// the last word and writes the violation. A spec whose responses declare
// writeOnly properties keeps kin-openapi's walk throughout. 3.1 bodies take
// the full path too. For OpenAPI 3.1, kin-openapi compiles the JSON Schema
// 2020-12 schema again on every call and falls back silently to its 3.0
// validator when that fails, so this package instead compiles each 3.1
// response schema once, at load time, with santhosh-tekuri/jsonschema (the
// library kin-openapi uses for that path); a schema that does not compile is
// a load error.
//
// # Fail-closed decisions
//
// Both libraries have defaults that pass what they cannot check. Here each
// case is decided explicitly (and tested):
//
//   - A status code the operation does not document (no exact code, no 2XX
//     range, no default) is a violation. kin-openapi passes it unless
//     IncludeResponseStatus is set; this package does not use openapi3filter.
//   - A response documented without content (a 204, say) must have an empty
//     body. A response documented with content must have a non-empty body
//     whose Content-Type matches one of the documented media types.
//   - A media type documented without a schema accepts any body of that type,
//     but a JSON body must still be well-formed, UTF-8, free of duplicate keys
//     and within the depth limit: there is no schema to enforce, not nothing
//     to check.
//   - An empty body or a JSON null never counts as valid by itself: an empty
//     body where content is documented is a violation, and null is validated
//     against the schema like any value (it passes only where the schema is
//     nullable or allows type null).
//   - Format assertions are on: date, date-time, byte, int32, int64, email,
//     uuid, ipv4, ipv6, uri and uri-reference for 3.0; JSON Schema's own
//     format set for 3.1. Formats neither knows (Stripe's unix-time, Twilio's
//     phone-number) are annotations and are not asserted.
//   - A routed call with no operation in the spec is a violation in enforce
//     mode (and `portcullis check` reports it before it happens, see
//     [Spec.Missing]).
//   - 304 Not Modified needs no documentation but must have an empty body;
//     HEAD responses are checked for status only.
//
// # What a violation says
//
// A [Violation] names the JSON path and the broken rule, never the vendor's
// value: rule texts are built from the schema (what was wanted), not from the
// instance, and a path segment that is an object key appears only if the
// spec declares that name or it looks like an identifier; other keys (an
// e-mail address used as a map key, say) are written as "*".
package validate
