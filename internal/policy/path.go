package policy

import (
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// ErrBadPath is wrapped by every error [CheckPath] returns. The gateway maps
// it to the bad_request_path problem (400).
var ErrBadPath = errors.New("bad request path")

const (
	// MaxPathLen is the longest escaped vendor path accepted, in bytes.
	MaxPathLen = 2048
	// MaxSegments is the largest number of segments accepted, counting a
	// trailing slash as one (empty) segment.
	MaxSegments = 64
)

// Public reasons carried by [PathError]. They are short, fixed strings, safe
// to put in a problem detail: none of them echoes the path.
const (
	ReasonNotAbsolute     = "missing leading slash"
	ReasonTooLong         = "too long"
	ReasonTooManySegments = "too many segments"
	ReasonEmptySegment    = "empty segment"
	ReasonDotSegment      = "dot segment"
	ReasonEncodedSlash    = "encoded slash"
	ReasonBackslash       = "backslash"
	ReasonControl         = "control character"
	ReasonDoubleEncoding  = "double encoding"
	ReasonBadEscape       = "bad escape"
	ReasonPathParameter   = "path parameter"
	ReasonQueryOrFragment = "query or fragment"
	ReasonNonASCII        = "non-ASCII byte"
	ReasonInvalidChar     = "invalid character"
	ReasonInvalidUTF8     = "invalid utf-8"
	ReasonUnicodeAmbig    = "ambiguous unicode"
)

// PathError is the error [CheckPath] returns. Reason is one of the Reason*
// constants and is safe to show to the caller. errors.Is(err, ErrBadPath)
// holds for every PathError.
type PathError struct {
	Reason string
}

func (e *PathError) Error() string { return ErrBadPath.Error() + ": " + e.Reason }

// Unwrap returns [ErrBadPath].
func (e *PathError) Unwrap() error { return ErrBadPath }

func badPath(reason string) error { return &PathError{Reason: reason} }

// CheckPath validates the vendor path and returns the decoded segments the
// policy matches on. escaped is the escaped path after the integration
// segment, starting with "/", exactly as it came on the wire (from
// RequestURI, or r.URL.EscapedPath() minus "/{integration}").
//
// The rules, and why each exists:
//
//   - The path must start with "/" and be at most [MaxPathLen] bytes and
//     [MaxSegments] segments: bounded work, bounded log lines.
//   - No empty segment ("//"): many servers merge slashes, others do not, so
//     "/a//b" names different resources to different readers. The one
//     exception is a trailing slash, which is returned as a final "" segment
//     so that "/v1/charges/" stays distinct from "/v1/charges" (routes match
//     segments exactly; a route only covers a trailing slash if its template
//     ends in "/"). The path "/" is therefore the single segment "".
//   - No dot segment: "." and "..", in any mix of raw and %2e/%2E, are
//     resolved by some readers and not others. Segments made only of dots and
//     spaces ("...", ".. ") are refused too: Windows-backed servers strip
//     trailing dots and spaces from names and read them as "..".
//   - No encoded slash (%2f) and no backslash raw or encoded (%5c): a vendor
//     that decodes before routing, or treats "\" as a separator, would see
//     more segments than the policy did.
//   - No control byte, raw or encoded (NUL included), nor a decoded Unicode
//     control character: C strings end at NUL, and logs and headers split on
//     CR/LF.
//   - No "%25": the policy decodes once; a vendor (or a proxy chain) that
//     decodes twice would read "%252f" as "/".
//   - No malformed escape ("%G1", a truncated "%2"): readers disagree on
//     whether to keep, drop or reject them.
//   - No ";" raw or encoded: Tomcat/Jetty-style path parameters
//     ("/admin;x=1", ";jsessionid=") are stripped by some servers before
//     routing and kept by others.
//   - No raw "?" or "#": they cannot be in a path that was split from its
//     query correctly, so their presence means the input was not a path.
//     Encoded (%3F, %23) they are ordinary data in a segment.
//   - Only RFC 3986 pchar bytes may appear raw; non-ASCII bytes must be
//     percent-encoded, and other raw bytes (space, quotes, "<>{}|^[]`") are
//     refused as invalid characters.
//   - Percent-encoded bytes above 0x7F must decode to valid UTF-8 (this also
//     refuses overlong forms such as %C0%AE, which old decoders read as "."),
//     and a segment whose NFKC form would become a dot segment or contain "/",
//     "\", "%" or ";" (fullwidth "．．", "／") is refused as ambiguous unicode:
//     a vendor that normalises would read a different path.
//
// Any failure returns a [*PathError] wrapping [ErrBadPath]; the first problem
// from the left is reported. Segments without escapes are substrings of
// escaped; only segments with escapes are newly allocated.
func CheckPath(escaped string) (segments []string, err error) {
	var dst []string
	if len(escaped) <= MaxPathLen {
		dst = make([]string, 0, min(strings.Count(escaped, "/"), MaxSegments))
	}
	segments, err = AppendCheckPath(dst, escaped)
	if err != nil {
		return nil, err
	}
	return segments, nil
}

// AppendCheckPath is [CheckPath] appending the segments to dst, so that a
// caller reusing a buffer checks paths without escapes allocation-free. On
// error it returns dst unchanged in length.
func AppendCheckPath(dst []string, escaped string) ([]string, error) {
	if len(escaped) > MaxPathLen {
		return dst, badPath(ReasonTooLong)
	}
	if escaped == "" || escaped[0] != '/' {
		return dst, badPath(ReasonNotAbsolute)
	}
	start := len(dst)
	rest := escaped[1:]
	for n := 1; ; n++ {
		if n > MaxSegments {
			return dst[:start], badPath(ReasonTooManySegments)
		}
		seg, tail, more := strings.Cut(rest, "/")
		if seg == "" {
			if more {
				return dst[:start], badPath(ReasonEmptySegment)
			}
			return append(dst, ""), nil // trailing slash
		}
		dec, err := checkSegment(seg)
		if err != nil {
			return dst[:start], err
		}
		dst = append(dst, dec)
		if !more {
			return dst, nil
		}
		rest = tail
	}
}

// checkSegment validates one non-empty escaped segment and returns it decoded.
// It is hand-written rather than url.PathUnescape because the reasons matter:
// PathUnescape accepts %2f, %25, %00 and raw bytes we refuse, and reports all
// malformed input as one error.
func checkSegment(seg string) (string, error) {
	escapes, highBytes := 0, false
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		if c != '%' {
			if reason := rawByteReason(c); reason != "" {
				return "", badPath(reason)
			}
			continue
		}
		if i+2 >= len(seg) || !isHex(seg[i+1]) || !isHex(seg[i+2]) {
			return "", badPath(ReasonBadEscape)
		}
		b := unhex(seg[i+1])<<4 | unhex(seg[i+2])
		if reason := decodedByteReason(b); reason != "" {
			return "", badPath(reason)
		}
		highBytes = highBytes || b >= 0x80
		escapes++
		i += 2
	}
	dec := seg
	if escapes > 0 {
		dec = decode(seg, escapes)
	}
	if isDotLike(dec) {
		return "", badPath(ReasonDotSegment)
	}
	if highBytes {
		if err := checkUnicode(dec); err != nil {
			return "", err
		}
	}
	return dec, nil
}

// rawByteReason classifies a byte that appears unescaped. Allowed: RFC 3986
// pchar (unreserved, sub-delims, ":" and "@") minus ";".
func rawByteReason(c byte) string {
	switch {
	case c < 0x20 || c == 0x7f:
		return ReasonControl
	case c >= 0x80:
		return ReasonNonASCII
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return ""
	}
	switch c {
	case '-', '.', '_', '~', '!', '$', '&', '\'', '(', ')', '*', '+', ',', '=', ':', '@':
		return ""
	case '\\':
		return ReasonBackslash
	case ';':
		return ReasonPathParameter
	case '?', '#':
		return ReasonQueryOrFragment
	}
	return ReasonInvalidChar
}

// decodedByteReason classifies a byte produced by a %XX escape.
func decodedByteReason(b byte) string {
	switch {
	case b < 0x20 || b == 0x7f:
		return ReasonControl
	case b == '/':
		return ReasonEncodedSlash
	case b == '\\':
		return ReasonBackslash
	case b == '%':
		return ReasonDoubleEncoding
	case b == ';':
		return ReasonPathParameter
	}
	return ""
}

// isDotLike reports whether s is made only of '.' and ' ' with at least one
// '.': ".", "..", and the forms Windows file systems reduce to them.
func isDotLike(s string) bool {
	dots := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '.':
			dots++
		case ' ':
		default:
			return false
		}
	}
	return dots > 0
}

// checkUnicode validates a decoded segment that contains bytes above 0x7F.
func checkUnicode(dec string) error {
	if !utf8.ValidString(dec) {
		return badPath(ReasonInvalidUTF8)
	}
	for _, r := range dec {
		if unicode.IsControl(r) {
			return badPath(ReasonControl)
		}
	}
	if norm.NFKC.IsNormalString(dec) {
		return nil
	}
	n := norm.NFKC.String(dec)
	if isDotLike(n) || strings.ContainsAny(n, `/\%;`) {
		return badPath(ReasonUnicodeAmbig)
	}
	return nil
}

// decode percent-decodes seg, already validated, which holds escapes escapes.
func decode(seg string, escapes int) string {
	var b strings.Builder
	b.Grow(len(seg) - 2*escapes)
	for i := 0; i < len(seg); i++ {
		if seg[i] == '%' {
			b.WriteByte(unhex(seg[i+1])<<4 | unhex(seg[i+2]))
			i += 2
			continue
		}
		b.WriteByte(seg[i])
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}
