// Package demo owns `portcullis demo`: a fake vendor API and a gateway in
// front of it, both on loopback, and a guided tour of what the gateway
// allows and refuses. It needs nothing but this binary.
package demo

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
)

// VendorSpec is the fake vendor's OpenAPI document.
//
//go:embed acmepay.openapi.yaml
var VendorSpec []byte

// Vendor is "Acme Pay", a small payments API that echoes, masked, the
// credential it received so the tour can show the injection.
type Vendor struct {
	// Key is the API key the vendor accepts.
	Key  string
	seq  atomic.Int64
	Hits atomic.Int64
}

// Mask shows the first 8 and last 4 characters of a credential.
func Mask(s string) string {
	if len(s) <= 12 {
		return strings.Repeat("•", len(s))
	}
	return s[:8] + "…" + s[len(s)-4:]
}

func (v *Vendor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	v.Hits.Add(1)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-RateLimit-Limit", "100")
	w.Header().Set("X-RateLimit-Remaining", "99")
	got, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if got != v.Key {
		w.WriteHeader(http.StatusUnauthorized)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"type": "invalid_api_key", "message": "no valid API key"}})
		return
	}
	seen := map[string]any{"authorization": "Bearer " + Mask(got), "caller_headers_seen": headerNames(r)}
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v1/charges":
		n := v.seq.Add(1)
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]any{"id": fmt.Sprintf("ch_%06d", n), "object": "charge", "amount": 1999, "currency": "eur", "status": "succeeded", "vendor_saw": seen})
	case r.Method == http.MethodGet && r.URL.Path == "/v1/charges/ch_broken":
		// A vendor bug (or a compromised vendor): amount comes back as a
		// string and an unexpected field carries data it should not.
		_ = json.NewEncoder(w).Encode(map[string]any{"id": "ch_broken", "object": "charge", "amount": "1999", "currency": "eur", "status": "succeeded"})
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/charges/"):
		_ = json.NewEncoder(w).Encode(map[string]any{"id": strings.TrimPrefix(r.URL.Path, "/v1/charges/"), "object": "charge", "amount": 1999, "currency": "eur", "status": "succeeded", "vendor_saw": seen})
	case r.Method == http.MethodPost && r.URL.Path == "/v1/payouts":
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]any{"id": "po_1", "object": "payout", "amount": 100000})
	default:
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"type": "not_found"}})
	}
}

func headerNames(r *http.Request) []string {
	out := make([]string, 0, len(r.Header))
	for k := range r.Header {
		out = append(out, k)
	}
	return out
}
