package policy

import "strings"

// Public reasons for a refused query, carried by [PathError] like the path
// reasons: the query is part of the request target, and the gateway answers
// both with bad_request_path.
const (
	ReasonFragment       = "fragment"
	ReasonQuerySemicolon = "semicolon in query"
)

// CheckQuery validates the caller's raw query (r.URL.RawQuery: the bytes
// after the first "?" of the request target, without the "?"), exactly as it
// came on the wire. Go's server does not split a fragment off a request
// target, so "GET /x?a=1#k=v" arrives here as "a=1#k=v".
//
// Allowed raw bytes are RFC 3986 query characters: unreserved, sub-delims,
// ":", "@", "/" and "?", and well-formed %XX escapes (any byte may be
// escaped: in a query, %23, %3B and %26 are data). Refused:
//
//   - "#": a vendor reads what follows as a fragment, so a parameter
//     appended after it (the injected credential) would be cut off, and what
//     precedes it would be read differently by the policy and the vendor.
//   - ";": Go before 1.17, Rails, Tomcat and many others split pairs on
//     ";" as well as "&", so "a=1;key=x" is one pair to one reader and two
//     to another: a caller could smuggle a parameter past the injector.
//   - control bytes, bytes above 0x7F, and other raw bytes ("\"<>\\^`{|}",
//     space, "[" "]"): readers disagree on whether to escape, keep or reject
//     them.
//   - a malformed escape ("%zz", a truncated "%4").
//
// Any failure is a [*PathError] wrapping [ErrBadPath]; the first problem
// from the left is reported.
func CheckQuery(raw string) error {
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c == '%' {
			if i+2 >= len(raw) || !isHex(raw[i+1]) || !isHex(raw[i+2]) {
				return badPath(ReasonBadEscape)
			}
			i += 2
			continue
		}
		if reason := rawQueryByteReason(c); reason != "" {
			return badPath(reason)
		}
	}
	return nil
}

// rawQueryByteReason classifies a byte that appears unescaped in a query.
func rawQueryByteReason(c byte) string {
	switch c {
	case '/', '?':
		return ""
	case '#':
		return ReasonFragment
	case ';':
		return ReasonQuerySemicolon
	}
	return rawByteReason(c)
}

// EscapeQuery returns raw with every byte [CheckQuery] refuses
// percent-encoded: "#" becomes %23, ";" %3B, a "%" that starts no
// well-formed escape %25, and so on. A query that passes CheckQuery is
// returned unchanged (same string, no allocation), so a checked query is
// forwarded byte for byte and a vendor that verifies a signature over it
// still can. The gateway checks the query before routing and applies
// EscapeQuery where it builds the outbound request, as a second line: a
// request reaching the proxy by another path still leaves with valid
// query bytes only.
//
// Hand-written because url.QueryEscape would also escape "&", "=", "/" and
// every already-escaped "%", changing the meaning of a valid query.
func EscapeQuery(raw string) string {
	if CheckQuery(raw) == nil {
		return raw
	}
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(raw) + 16)
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c == '%' && i+2 < len(raw) && isHex(raw[i+1]) && isHex(raw[i+2]) {
			b.WriteString(raw[i : i+3])
			i += 2
			continue
		}
		if c != '%' && rawQueryByteReason(c) == "" {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&0xf])
	}
	return b.String()
}
