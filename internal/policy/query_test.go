package policy_test

import (
	"errors"
	"net/url"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/policy"
)

// checkQueryTests is shared with FuzzCheckQuery as its seed corpus.
var checkQueryTests = []struct {
	name   string
	in     string
	reason string // PathError.Reason when refused; "" when accepted
}{
	{name: "empty", in: ""},
	{name: "pairs", in: "a=1&b=2"},
	{name: "duplicates-kept", in: "a=1&a=2&a="},
	{name: "escapes-are-data", in: "q=a%23b%3Bc%26d%25e"},
	{name: "utf8-escaped", in: "name=caf%C3%A9"},
	{name: "slash-question-colon-at", in: "next=/a/b?c:d@e"},
	{name: "sub-delims", in: "x=!$'()*+,="},
	{name: "plus-and-tilde", in: "q=a+b~c-d_e.f"},
	{name: "bare-name", in: "flag"},
	{name: "fragment", in: "a=1#", reason: policy.ReasonFragment},
	{name: "fragment-hides-pair", in: "a=1#key=x", reason: policy.ReasonFragment},
	{name: "semicolon-separator", in: "a=1;key=ATTACKER", reason: policy.ReasonQuerySemicolon},
	{name: "double-quote", in: `a="x"`, reason: policy.ReasonInvalidChar},
	{name: "angle-brackets", in: "a=<script>", reason: policy.ReasonInvalidChar},
	{name: "braces", in: "a={}", reason: policy.ReasonInvalidChar},
	{name: "square-brackets", in: "a[]=1", reason: policy.ReasonInvalidChar},
	{name: "pipe-caret-backtick", in: "a=|^`", reason: policy.ReasonInvalidChar},
	{name: "space", in: "a=b c", reason: policy.ReasonInvalidChar},
	{name: "backslash", in: `a=\x`, reason: policy.ReasonBackslash},
	{name: "raw-utf8", in: "a=caf\xc3\xa9", reason: policy.ReasonNonASCII},
	{name: "raw-high-byte", in: "a=\xff", reason: policy.ReasonNonASCII},
	{name: "control", in: "a=\x01", reason: policy.ReasonControl},
	{name: "del", in: "a=\x7f", reason: policy.ReasonControl},
	{name: "bad-escape", in: "a=%zz", reason: policy.ReasonBadEscape},
	{name: "half-hex-escape", in: "a=%4g", reason: policy.ReasonBadEscape},
	{name: "truncated-escape", in: "a=%4", reason: policy.ReasonBadEscape},
	{name: "lone-percent", in: "a=%", reason: policy.ReasonBadEscape},
	{name: "first-problem-reported", in: "a=%zz#", reason: policy.ReasonBadEscape},
}

func TestCheckQuery(t *testing.T) {
	for _, tt := range checkQueryTests {
		t.Run(tt.name, func(t *testing.T) {
			err := policy.CheckQuery(tt.in)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("CheckQuery(%q) = %v, want accepted", tt.in, err)
				}
				if got := policy.EscapeQuery(tt.in); got != tt.in {
					t.Errorf("EscapeQuery(%q) = %q, want it unchanged", tt.in, got)
				}
				return
			}
			var pe *policy.PathError
			if !errors.As(err, &pe) || !errors.Is(err, policy.ErrBadPath) {
				t.Fatalf("CheckQuery(%q) = %v, want a PathError wrapping ErrBadPath", tt.in, err)
			}
			if pe.Reason != tt.reason {
				t.Errorf("CheckQuery(%q) reason %q, want %q", tt.in, pe.Reason, tt.reason)
			}
		})
	}
}

func TestEscapeQuery(t *testing.T) {
	for in, want := range map[string]string{
		"a=1#":             "a=1%23",
		"a=1;key=ATTACKER": "a=1%3Bkey=ATTACKER",
		`a="<>{}`:          "a=%22%3C%3E%7B%7D",
		"a=caf\xc3\xa9":    "a=caf%C3%A9",
		"a=%zz&b=%41":      "a=%25zz&b=%41",
		"a=%":              "a=%25",
		"a=b c\r\n":        "a=b%20c%0D%0A",
	} {
		if got := policy.EscapeQuery(in); got != want {
			t.Errorf("EscapeQuery(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzCheckQuery(f *testing.F) {
	for _, tt := range checkQueryTests {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		err := policy.CheckQuery(in)
		esc := policy.EscapeQuery(in)
		if err == nil {
			if esc != in {
				t.Fatalf("EscapeQuery changed the valid query %q to %q", in, esc)
			}
			// A standard parser that knows no ";" separator reads it
			// without error.
			if _, perr := url.ParseQuery(in); perr != nil {
				t.Fatalf("CheckQuery accepted %q, url.ParseQuery refused it: %v", in, perr)
			}
		} else if !errors.Is(err, policy.ErrBadPath) {
			t.Fatalf("CheckQuery(%q) error %v does not wrap ErrBadPath", in, err)
		}
		if cerr := policy.CheckQuery(esc); cerr != nil {
			t.Fatalf("EscapeQuery(%q) = %q, which CheckQuery refuses: %v", in, esc, cerr)
		}
		if policy.EscapeQuery(esc) != esc {
			t.Fatalf("EscapeQuery is not idempotent on %q", in)
		}
	})
}
