package resilience

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxHeaderDelay bounds any delay read from a vendor header, so an absurd
// value cannot overflow a time.Duration. Policy caps (MaxRetryAfter,
// LimiterConfig.MaxPause) are applied by the callers, well below this.
const maxHeaderDelay = 30 * 24 * time.Hour

// ParseRetryAfter reads a Retry-After value (RFC 9110 §10.2.3): either
// delay-seconds or an HTTP-date, returned as a delay from now (0 for a date
// in the past). ok is false when the value is absent or malformed.
func ParseRetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if isDigit(v[0]) {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			if ne, isNum := err.(*strconv.NumError); isNum && ne.Err == strconv.ErrRange {
				return maxHeaderDelay, true
			}
			return 0, false
		}
		return secondsDelay(float64(n)), true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return clampDelay(t.Sub(now)), true
}

func clampDelay(d time.Duration) time.Duration {
	return min(max(d, 0), maxHeaderDelay)
}

func secondsDelay(s float64) time.Duration {
	if math.IsNaN(s) || s <= 0 {
		return 0
	}
	if s >= maxHeaderDelay.Seconds() {
		return maxHeaderDelay
	}
	return time.Duration(s * float64(time.Second))
}

// VendorLimit is what a vendor's rate-limit headers say about its quota.
type VendorLimit struct {
	// Remaining is the number of calls the vendor will still accept before
	// Reset; -1 when the headers did not say.
	Remaining int64
	// Reset is when the quota refills; zero when the headers did not say.
	Reset time.Time
	// Source names the header family the values came from: "ratelimit"
	// (IETF structured field), "ratelimit-remaining" (IETF draft ≤ 06) or
	// "x-ratelimit".
	Source string
}

// ParseRateLimitHeaders reads the vendor's quota from, in order of
// preference, the IETF `RateLimit` structured field (draft-ietf-httpapi-
// ratelimit-headers ≥ 08: `"default";r=0;t=12`, or the draft-07 dictionary
// `limit=10, remaining=0, reset=12`; with several policies the most
// restrictive wins), the older `RateLimit-Remaining`/`RateLimit-Reset`, or
// `X-RateLimit-Remaining`/`X-RateLimit-Reset`. A reset is seconds from now,
// except that X-RateLimit-Reset and RateLimit-Reset values that can only be
// epoch times (≥ 10^9: seconds, ≥ 10^12: milliseconds) or HTTP-dates are
// read as such. ok is false when none of these is present and well-formed.
func ParseRateLimitHeaders(h http.Header, now time.Time) (VendorLimit, bool) {
	if vs := h[hRateLimit]; len(vs) > 0 {
		if vl, ok := parseIETFRateLimit(strings.Join(vs, ", "), now); ok {
			return vl, true
		}
	}
	for _, fam := range [...]struct{ remaining, reset, source string }{
		{hRateLimitRemaining, hRateLimitReset, "ratelimit-remaining"},
		{hXRateLimitRemaining, hXRateLimitReset, "x-ratelimit"},
	} {
		rem, okRem := parseRemaining(first(h[fam.remaining]))
		reset, okReset := parseReset(first(h[fam.reset]), now)
		if !okRem && !okReset {
			continue
		}
		vl := VendorLimit{Remaining: -1, Source: fam.source}
		if okRem {
			vl.Remaining = rem
		}
		if okReset {
			vl.Reset = reset
		}
		return vl, true
	}
	return VendorLimit{Remaining: -1}, false
}

// Canonical keys of the rate-limit fields, read from the header map
// directly: http.Header.Get would re-canonicalise them on every response.
const (
	hRateLimit           = "Ratelimit"
	hRateLimitRemaining  = "Ratelimit-Remaining"
	hRateLimitReset      = "Ratelimit-Reset"
	hXRateLimitRemaining = "X-Ratelimit-Remaining"
	hXRateLimitReset     = "X-Ratelimit-Reset"
)

// hasRateLimitHeaders reports whether h carries any field ParseRateLimitHeaders reads.
func hasRateLimitHeaders(h http.Header) bool {
	for _, k := range [...]string{hRateLimit, hRateLimitRemaining, hRateLimitReset, hXRateLimitRemaining, hXRateLimitReset} {
		if len(h[k]) > 0 {
			return true
		}
	}
	return false
}

func first(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

func parseRemaining(v string) (int64, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if first, _, found := strings.Cut(v, ","); found { // repeated field lines
		v = strings.TrimSpace(first)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// parseReset reads a reset value: delta seconds, epoch seconds or
// milliseconds (detected by magnitude: no vendor window is 30 years long),
// or an HTTP-date.
func parseReset(v string, now time.Time) (time.Time, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, false
	}
	if isDigit(v[0]) {
		if first, _, found := strings.Cut(v, ","); found { // repeated field lines
			v = strings.TrimSpace(first)
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) || f < 0 {
			return time.Time{}, false
		}
		switch {
		case f >= 1e15: // beyond epoch milliseconds: garbage
			return time.Time{}, false
		case f >= 1e12:
			return clampReset(time.UnixMilli(int64(f)), now), true
		case f >= 1e9:
			sec, frac := math.Modf(f)
			return clampReset(time.Unix(int64(sec), int64(frac*1e9)), now), true
		}
		return now.Add(secondsDelay(f)), true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return time.Time{}, false
	}
	return clampReset(t, now), true
}

func clampReset(t, now time.Time) time.Time {
	return now.Add(clampDelay(t.Sub(now)))
}

// parseIETFRateLimit reads the RateLimit field: a List of quota items with
// r (remaining) and t (seconds to reset) parameters, or the draft-07
// Dictionary with remaining and reset members.
func parseIETFRateLimit(v string, now time.Time) (VendorLimit, bool) {
	best := VendorLimit{Remaining: -1, Source: "ratelimit"}
	found := false
	consider := func(rem int64, hasRem bool, reset time.Duration, hasReset bool) {
		if !hasRem && !hasReset {
			return
		}
		cand := VendorLimit{Remaining: -1, Source: "ratelimit"}
		if hasRem {
			cand.Remaining = rem
		}
		if hasReset {
			cand.Reset = now.Add(reset)
		}
		if !found || moreRestrictive(cand, best) {
			best, found = cand, true
		}
	}
	if items, err := parseSFList(v); err == nil {
		for _, it := range items {
			r, hasR := sfNonNegInt(it.param("r"))
			t, hasT := sfNonNegInt(it.param("t"))
			consider(r, hasR, secondsDelay(float64(t)), hasT)
		}
		if found {
			return best, true
		}
	}
	if members, err := parseSFDict(v); err == nil {
		var r, t int64
		var hasR, hasT bool
		for _, m := range members {
			switch m.Key {
			case "remaining":
				r, hasR = sfNonNegInt(m.Item.Value, true)
			case "reset":
				t, hasT = sfNonNegInt(m.Item.Value, true)
			}
		}
		consider(r, hasR, secondsDelay(float64(t)), hasT)
	}
	return best, found
}

// moreRestrictive reports whether a leaves fewer calls than b, or as few
// but for longer.
func moreRestrictive(a, b VendorLimit) bool {
	switch {
	case b.Remaining < 0:
		return a.Remaining >= 0 || a.Reset.After(b.Reset)
	case a.Remaining < 0:
		return false
	case a.Remaining != b.Remaining:
		return a.Remaining < b.Remaining
	}
	return a.Reset.After(b.Reset)
}

func sfNonNegInt(v any, ok bool) (int64, bool) {
	n, isInt := v.(int64)
	if !ok || !isInt || n < 0 {
		return 0, false
	}
	return n, true
}
