// Package policy owns the two checks a reverse-proxied request passes before
// any limit or vendor is involved (DESIGN.md steps 4 and 5): path hygiene and
// the deny-by-default route policy.
//
// Path hygiene ([CheckPath]) turns the vendor path, exactly as it came on the
// wire, into decoded segments, or refuses it with an error wrapping
// [ErrBadPath]. It never cleans and continues: a path that a vendor, a proxy
// in front of it, or its web framework could read differently from how the
// policy reads it is an error, not something to repair. The gateway must then
// forward the same escaped string it validated, never a re-derived one.
// The query gets the same treatment from [CheckQuery]: a fragment, a ";"
// separator, raw bytes outside RFC 3986 query characters or a bad escape is
// refused, and a checked query is forwarded byte for byte.
//
// Route policy ([Compile], [Table.Decide]) matches METHOD plus the decoded
// segments against route templates such as "/v1/charges/{id}" and answers
// whether the caller is listed on the matched route. Anything that matches no
// route is denied. Method-override headers are removed with
// [StripMethodOverride] so that the method the policy saw is the method the
// vendor acts on.
package policy
