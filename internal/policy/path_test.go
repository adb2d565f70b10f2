package policy_test

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/portcullis-dev/portcullis/internal/policy"
)

type checkPathCase struct {
	name   string
	in     string
	want   []string // accepted segments; nil when rejected
	reason string   // PathError.Reason when rejected
}

// checkPathTests is shared with FuzzCheckPath as its seed corpus.
var checkPathTests = []checkPathCase{
	// Accepted.
	{name: "simple", in: "/v1/charges", want: []string{"v1", "charges"}},
	{name: "root", in: "/", want: []string{""}},
	{name: "trailing-slash-kept-as-empty-last-segment", in: "/v1/charges/", want: []string{"v1", "charges", ""}},
	{name: "id-segment", in: "/v1/charges/ch_123-abc~", want: []string{"v1", "charges", "ch_123-abc~"}},
	{name: "case-preserved", in: "/V1/Charges", want: []string{"V1", "Charges"}},
	{name: "encoded-space", in: "/v1/files/a%20b", want: []string{"v1", "files", "a b"}},
	{name: "encoded-unreserved-decoded", in: "/v1/%41bc", want: []string{"v1", "Abc"}},
	{name: "dot-inside-segment", in: "/v1/file.json", want: []string{"v1", "file.json"}},
	{name: "encoded-dot-inside-segment", in: "/v1/a%2eb", want: []string{"v1", "a.b"}},
	{name: "dots-with-letter", in: "/v1/...a", want: []string{"v1", "...a"}},
	{name: "sub-delims-colon-at", in: "/v1/a:b@c!$&'()*+,=", want: []string{"v1", "a:b@c!$&'()*+,="}},
	{name: "encoded-query-and-fragment-are-data", in: "/v1/a%3Fb%23c", want: []string{"v1", "a?b#c"}},
	{name: "utf8-encoded", in: "/v1/caf%C3%A9", want: []string{"v1", "café"}},
	{name: "utf8-lower-hex", in: "/v1/caf%c3%a9", want: []string{"v1", "café"}},
	{name: "max-length", in: "/" + strings.Repeat("a", policy.MaxPathLen-1), want: []string{strings.Repeat("a", policy.MaxPathLen-1)}},
	{name: "max-segments", in: strings.Repeat("/a", policy.MaxSegments), want: strings.Split(strings.Repeat("a", policy.MaxSegments), "")},

	// Shape.
	{name: "empty", in: "", reason: policy.ReasonNotAbsolute},
	{name: "relative", in: "v1/charges", reason: policy.ReasonNotAbsolute},
	{name: "too-long", in: "/" + strings.Repeat("a", policy.MaxPathLen), reason: policy.ReasonTooLong},
	{name: "too-many-segments", in: strings.Repeat("/a", policy.MaxSegments+1), reason: policy.ReasonTooManySegments},
	{name: "too-many-segments-with-trailing-slash", in: strings.Repeat("/a", policy.MaxSegments) + "/", reason: policy.ReasonTooManySegments},
	{name: "leading-double-slash", in: "//v1/charges", reason: policy.ReasonEmptySegment},
	{name: "middle-double-slash", in: "/v1//charges", reason: policy.ReasonEmptySegment},
	{name: "trailing-double-slash", in: "/v1/charges//", reason: policy.ReasonEmptySegment},
	{name: "only-double-slash", in: "//", reason: policy.ReasonEmptySegment},

	// Dot segments.
	{name: "dot", in: "/v1/./charges", reason: policy.ReasonDotSegment},
	{name: "dot-dot", in: "/v1/../admin", reason: policy.ReasonDotSegment},
	{name: "dot-dot-last", in: "/v1/..", reason: policy.ReasonDotSegment},
	{name: "dot-dot-trailing-slash", in: "/v1/../", reason: policy.ReasonDotSegment},
	{name: "encoded-dot", in: "/v1/%2e/charges", reason: policy.ReasonDotSegment},
	{name: "encoded-dot-dot-lower", in: "/v1/%2e%2e/admin", reason: policy.ReasonDotSegment},
	{name: "encoded-dot-dot-upper", in: "/v1/%2E%2E/admin", reason: policy.ReasonDotSegment},
	{name: "encoded-dot-dot-mixed-case", in: "/v1/%2e%2E/admin", reason: policy.ReasonDotSegment},
	{name: "half-encoded-dot-dot-first", in: "/v1/%2e./admin", reason: policy.ReasonDotSegment},
	{name: "half-encoded-dot-dot-second", in: "/v1/.%2E/admin", reason: policy.ReasonDotSegment},
	{name: "triple-dot", in: "/v1/.../admin", reason: policy.ReasonDotSegment},
	{name: "dot-dot-encoded-space", in: "/v1/..%20/admin", reason: policy.ReasonDotSegment},

	// Separators smuggled in a segment.
	{name: "encoded-slash-lower", in: "/v1/a%2fb", reason: policy.ReasonEncodedSlash},
	{name: "encoded-slash-upper", in: "/v1/a%2Fb", reason: policy.ReasonEncodedSlash},
	{name: "encoded-dot-dot-slash", in: "/v1/%2e%2e%2fadmin", reason: policy.ReasonEncodedSlash},
	{name: "backslash-raw", in: `/v1/a\b`, reason: policy.ReasonBackslash},
	{name: "backslash-encoded-lower", in: "/v1/a%5cb", reason: policy.ReasonBackslash},
	{name: "backslash-encoded-upper", in: "/v1/a%5Cb", reason: policy.ReasonBackslash},
	{name: "dot-dot-backslash", in: `/v1/..\admin`, reason: policy.ReasonBackslash},
	{name: "semicolon-matrix-param", in: "/v1/admin;x=1", reason: policy.ReasonPathParameter},
	{name: "semicolon-jsessionid", in: "/v1/charges;jsessionid=abc", reason: policy.ReasonPathParameter},
	{name: "dot-dot-semicolon", in: "/v1/..;/admin", reason: policy.ReasonPathParameter},
	{name: "semicolon-encoded", in: "/v1/a%3Bb", reason: policy.ReasonPathParameter},
	{name: "raw-query", in: "/v1/charges?limit=1", reason: policy.ReasonQueryOrFragment},
	{name: "raw-fragment", in: "/v1/charges#x", reason: policy.ReasonQueryOrFragment},

	// Control characters.
	{name: "nul-raw", in: "/v1/a\x00b", reason: policy.ReasonControl},
	{name: "nul-encoded", in: "/v1/a%00b", reason: policy.ReasonControl},
	{name: "crlf-encoded", in: "/v1/a%0D%0Ab", reason: policy.ReasonControl},
	{name: "tab-raw", in: "/v1/a\tb", reason: policy.ReasonControl},
	{name: "del-encoded", in: "/v1/a%7Fb", reason: policy.ReasonControl},
	{name: "c1-next-line-encoded", in: "/v1/a%C2%85b", reason: policy.ReasonControl},

	// Encoding.
	{name: "double-encoded-slash", in: "/v1/a%252fb", reason: policy.ReasonDoubleEncoding},
	{name: "double-encoded-dot-dot", in: "/v1/%252e%252e/admin", reason: policy.ReasonDoubleEncoding},
	{name: "encoded-percent", in: "/v1/100%25", reason: policy.ReasonDoubleEncoding},
	{name: "bad-escape-non-hex", in: "/v1/%G1", reason: policy.ReasonBadEscape},
	{name: "bad-escape-second-non-hex", in: "/v1/%2G", reason: policy.ReasonBadEscape},
	{name: "bad-escape-truncated", in: "/v1/%2", reason: policy.ReasonBadEscape},
	{name: "bad-escape-truncated-mid-path", in: "/v1/%2/x", reason: policy.ReasonBadEscape},
	{name: "bad-escape-bare-percent", in: "/v1/%", reason: policy.ReasonBadEscape},
	{name: "bad-escape-plus-sign", in: "/v1/%+1", reason: policy.ReasonBadEscape},

	// Bytes and Unicode.
	{name: "non-ascii-raw", in: "/v1/caf\xc3\xa9", reason: policy.ReasonNonASCII},
	{name: "space-raw", in: "/v1/a b", reason: policy.ReasonInvalidChar},
	{name: "braces-raw", in: "/v1/{id}", reason: policy.ReasonInvalidChar},
	{name: "pipe-raw", in: "/v1/a|b", reason: policy.ReasonInvalidChar},
	{name: "quote-raw", in: `/v1/a"b`, reason: policy.ReasonInvalidChar},
	{name: "invalid-utf8", in: "/v1/%FF", reason: policy.ReasonInvalidUTF8},
	{name: "overlong-utf8-dot-dot", in: "/v1/%C0%AE%C0%AE/admin", reason: policy.ReasonInvalidUTF8},
	{name: "fullwidth-dot-dot", in: "/v1/%EF%BC%8E%EF%BC%8E/admin", reason: policy.ReasonUnicodeAmbig},
	{name: "fullwidth-slash", in: "/v1/a%EF%BC%8Fb", reason: policy.ReasonUnicodeAmbig},
	{name: "fullwidth-backslash", in: "/v1/a%EF%BC%BCb", reason: policy.ReasonUnicodeAmbig},
	{name: "fullwidth-semicolon", in: "/v1/a%EF%BC%9Bb", reason: policy.ReasonUnicodeAmbig},
	{name: "one-dot-leader-pair", in: "/v1/%E2%80%A4%E2%80%A4/admin", reason: policy.ReasonUnicodeAmbig},

	// First problem from the left wins.
	{name: "first-problem-reported", in: "/v1/%2e%2e/a%2fb", reason: policy.ReasonDotSegment},
}

func TestCheckPath(t *testing.T) {
	for _, tt := range checkPathTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := policy.CheckPath(tt.in)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("CheckPath(%q) error = %v, want segments %q", tt.in, err, tt.want)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("CheckPath(%q) segments (-want +got):\n%s", tt.in, diff)
				}
				return
			}
			if !errors.Is(err, policy.ErrBadPath) {
				t.Fatalf("CheckPath(%q) = %q, %v; want error wrapping ErrBadPath", tt.in, got, err)
			}
			var pe *policy.PathError
			if !errors.As(err, &pe) {
				t.Fatalf("CheckPath(%q) error %T is not a *PathError", tt.in, err)
			}
			if pe.Reason != tt.reason {
				t.Errorf("CheckPath(%q) reason = %q, want %q", tt.in, pe.Reason, tt.reason)
			}
			if want := "bad request path: " + tt.reason; err.Error() != want {
				t.Errorf("CheckPath(%q) error text = %q, want %q", tt.in, err.Error(), want)
			}
			if got != nil {
				t.Errorf("CheckPath(%q) returned segments %q with an error", tt.in, got)
			}
		})
	}
}

func TestAppendCheckPathKeepsDstOnError(t *testing.T) {
	dst := []string{"keep"}
	got, err := policy.AppendCheckPath(dst, "/v1/ok/../x")
	if err == nil {
		t.Fatal("AppendCheckPath accepted a dot segment")
	}
	if diff := cmp.Diff([]string{"keep"}, got); diff != "" {
		t.Errorf("dst after error (-want +got):\n%s", diff)
	}
	got, err = policy.AppendCheckPath(got[:0], "/v1/charges")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"v1", "charges"}, got); diff != "" {
		t.Errorf("reused dst (-want +got):\n%s", diff)
	}
}

func FuzzCheckPath(f *testing.F) {
	for _, tt := range checkPathTests {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		segs, err := policy.CheckPath(in)
		if err != nil {
			if !errors.Is(err, policy.ErrBadPath) {
				t.Fatalf("CheckPath(%q) error %v does not wrap ErrBadPath", in, err)
			}
			return
		}
		if len(segs) == 0 || len(segs) > policy.MaxSegments {
			t.Fatalf("CheckPath(%q) accepted with %d segments", in, len(segs))
		}
		for i, s := range segs {
			last := i == len(segs)-1
			if s == "" && !last {
				t.Fatalf("CheckPath(%q) accepted empty segment %d", in, i)
			}
			if strings.Trim(s, ". ") == "" && strings.Contains(s, ".") {
				t.Fatalf("CheckPath(%q) accepted dot segment %q", in, s)
			}
			if strings.ContainsAny(s, "/\\%;\x00") {
				t.Fatalf("CheckPath(%q) accepted segment %q holding a separator, %%, ; or NUL", in, s)
			}
		}
		// Re-escaping the segments gives a path that is accepted and read
		// the same: the reading is canonical.
		escaped := make([]string, len(segs))
		for i, s := range segs {
			escaped[i] = minimalEscape(s)
		}
		again, err := policy.CheckPath("/" + strings.Join(escaped, "/"))
		if err != nil {
			t.Fatalf("re-escaped %q rejected: %v", in, err)
		}
		if diff := cmp.Diff(segs, again); diff != "" {
			t.Fatalf("re-escaped %q read differently (-first +second):\n%s", in, diff)
		}
		// An independent decoder (the standard library's) reads the same
		// path, and path cleaning by a vendor would change nothing.
		joined := "/" + strings.Join(segs, "/")
		std, err := url.PathUnescape(in)
		if err != nil || std != joined {
			t.Fatalf("url.PathUnescape(%q) = %q, %v; policy read %q", in, std, err, joined)
		}
		cleaned := path.Clean(joined)
		if segs[len(segs)-1] == "" && cleaned != "/" {
			cleaned += "/"
		}
		if cleaned != joined {
			t.Fatalf("path.Clean changes accepted %q: %q -> %q", in, joined, cleaned)
		}
	})
}

// minimalEscape percent-encodes every byte of a decoded segment except RFC
// 3986 unreserved characters, sub-delims other than ";", ":" and "@". The
// result is never longer than any escaped form CheckPath accepts for s.
func minimalEscape(s string) string {
	const keep = "-._~!$&'()*+,=:@"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(keep, c) >= 0 {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}
