package resilience

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var now0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

var retryAfterCases = []struct {
	name   string
	in     string
	want   time.Duration
	wantOK bool
}{
	{name: "seconds", in: "3", want: 3 * time.Second, wantOK: true},
	{name: "zero", in: "0", want: 0, wantOK: true},
	{name: "spaces-trimmed", in: " 7 ", want: 7 * time.Second, wantOK: true},
	{name: "http-date-future", in: "Sun, 01 Mar 2026 12:00:30 GMT", want: 30 * time.Second, wantOK: true},
	{name: "http-date-past-is-zero", in: "Sun, 01 Mar 2026 11:00:00 GMT", want: 0, wantOK: true},
	{name: "rfc850-date", in: "Sunday, 01-Mar-26 12:01:00 GMT", want: time.Minute, wantOK: true},
	{name: "huge-seconds-clamped", in: "99999999999999999999999", want: maxHeaderDelay, wantOK: true},
	{name: "empty", in: "", wantOK: false},
	{name: "negative", in: "-5", wantOK: false},
	{name: "fraction", in: "1.5", wantOK: false},
	{name: "garbage", in: "soon", wantOK: false},
}

func TestParseRetryAfter(t *testing.T) {
	for _, tc := range retryAfterCases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ParseRetryAfter(tc.in, now0)
			if ok != tc.wantOK || got != tc.want {
				t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, tc := range retryAfterCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		d, ok := ParseRetryAfter(in, now0)
		if !ok && d != 0 {
			t.Fatalf("not ok but delay %v", d)
		}
		if d < 0 || d > maxHeaderDelay {
			t.Fatalf("delay %v out of [0, %v]", d, maxHeaderDelay)
		}
	})
}

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

var rateLimitCases = []struct {
	name   string
	h      http.Header
	want   VendorLimit
	wantOK bool
}{
	{name: "none", h: hdr(), want: VendorLimit{Remaining: -1}},
	{name: "x-ratelimit-delta-seconds", h: hdr("X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "12"),
		want: VendorLimit{Remaining: 0, Reset: now0.Add(12 * time.Second), Source: "x-ratelimit"}, wantOK: true},
	{name: "x-ratelimit-epoch-seconds", h: hdr("X-RateLimit-Remaining", "4", "X-RateLimit-Reset", "1772366460"),
		want: VendorLimit{Remaining: 4, Reset: now0.Add(time.Minute), Source: "x-ratelimit"}, wantOK: true},
	{name: "x-ratelimit-epoch-millis", h: hdr("X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "1772366405000"),
		want: VendorLimit{Remaining: 0, Reset: now0.Add(5 * time.Second), Source: "x-ratelimit"}, wantOK: true},
	{name: "x-ratelimit-fractional-delta", h: hdr("X-RateLimit-Reset", "1.5"),
		want: VendorLimit{Remaining: -1, Reset: now0.Add(1500 * time.Millisecond), Source: "x-ratelimit"}, wantOK: true},
	{name: "x-ratelimit-epoch-in-past-is-now", h: hdr("X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "1000000000"),
		want: VendorLimit{Remaining: 0, Reset: now0, Source: "x-ratelimit"}, wantOK: true},
	{name: "x-ratelimit-http-date", h: hdr("X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "Sun, 01 Mar 2026 12:00:09 GMT"),
		want: VendorLimit{Remaining: 0, Reset: now0.Add(9 * time.Second), Source: "x-ratelimit"}, wantOK: true},
	{name: "x-ratelimit-remaining-only", h: hdr("X-RateLimit-Remaining", "17"),
		want: VendorLimit{Remaining: 17, Source: "x-ratelimit"}, wantOK: true},
	{name: "x-ratelimit-repeated-lines-first-wins", h: hdr("X-RateLimit-Remaining", "3, 9"),
		want: VendorLimit{Remaining: 3, Source: "x-ratelimit"}, wantOK: true},
	{name: "x-ratelimit-garbage-ignored", h: hdr("X-RateLimit-Remaining", "lots", "X-RateLimit-Reset", "later"),
		want: VendorLimit{Remaining: -1}},
	{name: "x-ratelimit-negative-ignored", h: hdr("X-RateLimit-Remaining", "-1"), want: VendorLimit{Remaining: -1}},
	{name: "ietf-draft6-fields", h: hdr("RateLimit-Remaining", "0", "RateLimit-Reset", "30", "X-RateLimit-Remaining", "50"),
		want: VendorLimit{Remaining: 0, Reset: now0.Add(30 * time.Second), Source: "ratelimit-remaining"}, wantOK: true},
	{name: "ietf-structured-item", h: hdr("RateLimit", `"default";r=0;t=12`),
		want: VendorLimit{Remaining: 0, Reset: now0.Add(12 * time.Second), Source: "ratelimit"}, wantOK: true},
	{name: "ietf-structured-token-name", h: hdr("RateLimit", `day;r=40;t=3600`),
		want: VendorLimit{Remaining: 40, Reset: now0.Add(time.Hour), Source: "ratelimit"}, wantOK: true},
	{name: "ietf-structured-most-restrictive-wins", h: hdr("RateLimit", `"hour";r=100;t=3000, "second";r=0;t=1`),
		want: VendorLimit{Remaining: 0, Reset: now0.Add(time.Second), Source: "ratelimit"}, wantOK: true},
	{name: "ietf-structured-two-lines-joined", h: hdr("RateLimit", `"a";r=5;t=10`, "RateLimit", `"b";r=5;t=20`),
		want: VendorLimit{Remaining: 5, Reset: now0.Add(20 * time.Second), Source: "ratelimit"}, wantOK: true},
	{name: "ietf-structured-with-pk", h: hdr("RateLimit", `"default";r=3;t=2;pk=:cHJvamVjdDEyMw==:`),
		want: VendorLimit{Remaining: 3, Reset: now0.Add(2 * time.Second), Source: "ratelimit"}, wantOK: true},
	{name: "ietf-draft7-dictionary", h: hdr("RateLimit", `limit=10, remaining=0, reset=7`),
		want: VendorLimit{Remaining: 0, Reset: now0.Add(7 * time.Second), Source: "ratelimit"}, wantOK: true},
	{name: "ietf-malformed-falls-back-to-x", h: hdr("RateLimit", `"default";r=`, "X-RateLimit-Remaining", "8"),
		want: VendorLimit{Remaining: 8, Source: "x-ratelimit"}, wantOK: true},
	{name: "ietf-negative-remaining-ignored", h: hdr("RateLimit", `"default";r=-1;t=5`),
		want: VendorLimit{Remaining: -1, Reset: now0.Add(5 * time.Second), Source: "ratelimit"}, wantOK: true},
	{name: "ietf-policy-only-is-not-a-quota", h: hdr("RateLimit-Policy", `"default";q=100;w=60`),
		want: VendorLimit{Remaining: -1}},
}

func TestParseRateLimitHeaders(t *testing.T) {
	for _, tc := range rateLimitCases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ParseRateLimitHeaders(tc.h, now0)
			if ok != tc.wantOK {
				t.Errorf("ok = %v, want %v", ok, tc.wantOK)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParseRateLimitHeaders(%v) mismatch (-want +got):\n%s", tc.h, diff)
			}
		})
	}
}

func FuzzParseRateLimitHeaders(f *testing.F) {
	for _, tc := range rateLimitCases {
		f.Add(tc.h.Get("RateLimit"), tc.h.Get("X-RateLimit-Remaining"), tc.h.Get("X-RateLimit-Reset"), tc.h.Get("RateLimit-Reset"))
	}
	f.Fuzz(func(t *testing.T, ietf, xRem, xReset, rlReset string) {
		h := hdr("RateLimit", ietf, "X-RateLimit-Remaining", xRem, "X-RateLimit-Reset", xReset, "RateLimit-Reset", rlReset)
		vl, ok := ParseRateLimitHeaders(h, now0)
		if vl.Remaining < -1 {
			t.Fatalf("remaining %d < -1", vl.Remaining)
		}
		if !vl.Reset.IsZero() && (vl.Reset.Before(now0) || vl.Reset.After(now0.Add(maxHeaderDelay))) {
			t.Fatalf("reset %v outside [now, now+%v]", vl.Reset, maxHeaderDelay)
		}
		if !ok && (vl.Remaining != -1 || !vl.Reset.IsZero()) {
			t.Fatalf("not ok but %+v", vl)
		}
	})
}

var sfListCases = []struct {
	name    string
	in      string
	want    []sfItem
	wantErr bool
}{
	{name: "empty", in: "", want: nil},
	{name: "string-with-params", in: `"default";r=0;t=12`,
		want: []sfItem{{Value: "default", Params: []sfParam{{"r", int64(0)}, {"t", int64(12)}}}}},
	{name: "token-decimal-bool", in: `a;x=1.5;y, b;z=?0`,
		want: []sfItem{
			{Value: sfToken("a"), Params: []sfParam{{"x", 1.5}, {"y", true}}},
			{Value: sfToken("b"), Params: []sfParam{{"z", false}}},
		}},
	{name: "escaped-string", in: `"a\"b\\c"`, want: []sfItem{{Value: `a"b\c`}}},
	{name: "bytes", in: `:aGk=:`, want: []sfItem{{Value: []byte("aGk=")}}},
	{name: "inner-list", in: `("x" y);p=1`,
		want: []sfItem{{Value: []sfItem{{Value: "x"}, {Value: sfToken("y")}}, Params: []sfParam{{"p", int64(1)}}}}},
	{name: "date", in: `@1700000000`, want: []sfItem{{Value: int64(1700000000)}}},
	{name: "negative-int", in: `-3`, want: []sfItem{{Value: int64(-3)}}},
	{name: "trailing-comma", in: `a,`, wantErr: true},
	{name: "unterminated-string", in: `"abc`, wantErr: true},
	{name: "bad-escape", in: `"a\n"`, wantErr: true},
	{name: "int-too-long", in: `1234567890123456`, wantErr: true},
	{name: "decimal-too-precise", in: `1.2345`, wantErr: true},
	{name: "uppercase-param-key", in: `a;R=1`, wantErr: true},
	{name: "junk-after-item", in: `a b`, wantErr: true},
	{name: "bad-bytes", in: `:a*b:`, wantErr: true},
	{name: "bad-bool", in: `?2`, wantErr: true},
}

func TestParseSFList(t *testing.T) {
	for _, tc := range sfListCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseSFList(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("parseSFList(%q) error = %v, wantErr %v", tc.in, err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("parseSFList(%q) mismatch (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}

func TestParseSFDict(t *testing.T) {
	got, err := parseSFDict(`limit=10, remaining=0;w=1, flag`)
	if err != nil {
		t.Fatal(err)
	}
	want := []sfMember{
		{Key: "limit", Item: sfItem{Value: int64(10)}},
		{Key: "remaining", Item: sfItem{Value: int64(0), Params: []sfParam{{"w", int64(1)}}}},
		{Key: "flag", Item: sfItem{Value: true}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}

func FuzzStructuredField(f *testing.F) {
	for _, tc := range sfListCases {
		f.Add(tc.in)
	}
	f.Add(`limit=10, remaining=0, reset=7`)
	f.Fuzz(func(t *testing.T, in string) {
		// Must never panic or loop; whatever parses has only well-formed
		// parameter keys, and input with something besides spaces either
		// parses to at least one item or fails.
		items, err := parseSFList(in)
		if err == nil && items == nil && strings.Trim(in, " ") != "" {
			t.Fatalf("parseSFList(%q) returned no items and no error", in)
		}
		for _, it := range items {
			for _, p := range it.Params {
				if p.Key == "" || !(isLCAlpha(p.Key[0]) || p.Key[0] == '*') {
					t.Fatalf("parseSFList(%q) accepted parameter key %q", in, p.Key)
				}
			}
		}
		_, _ = parseSFDict(in)
	})
}
