package gateway

import (
	"net/http"
	"testing"
)

// rate_limit.caller_burst sizes each caller's bucket: with per_caller 1/h
// (no refill during the test) and caller_burst 3, a caller gets three
// calls, then 429 rate_limited, while another caller still has its own 3.
func TestCallerBurst(t *testing.T) {
	v := newVendor(t, nil)
	f := newFixture(t, v.URL, baseConfig+"    rate_limit: {rate: 1000/s, per_caller: 1/h, caller_burst: 3}\n")
	status := func(token string) int {
		resp := f.do(t, http.MethodGet, "/payments/v1/charges/ch_1", token, nil, nil)
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := range 3 {
		if got := status(f.billing); got != http.StatusOK {
			t.Fatalf("billing call %d: %d, want 200 within caller_burst 3", i+1, got)
		}
	}
	if got := status(f.billing); got != http.StatusTooManyRequests {
		t.Errorf("billing call 4: %d, want 429 past caller_burst 3", got)
	}
	if got := status(f.support); got != http.StatusOK {
		t.Errorf("support's first call: %d, want 200 (its own bucket)", got)
	}
}
