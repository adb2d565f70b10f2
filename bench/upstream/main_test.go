package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestHandler(t *testing.T) {
	tests := []struct {
		name       string
		key, auth  string
		wantStatus int
		wantJSON   bool
	}{
		{"right-key-gets-the-body", "k1", "Bearer k1", 200, true},
		{"missing-key-is-401", "k1", "", 401, false},
		{"caller-token-instead-of-key-is-401", "k1", "Bearer pcs_caller", 401, false},
		{"no-key-configured-answers-all", "", "", 200, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/v1/items/42", nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			rec := httptest.NewRecorder()
			handler(0, tt.key).ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d", rec.Code, tt.wantStatus)
			}
			if !tt.wantJSON {
				return
			}
			var v map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
				t.Fatalf("body is not JSON: %v", err)
			}
			if n := rec.Body.Len(); n < 150 || n > 250 {
				t.Errorf("body is %d bytes, want about 200", n)
			}
		})
	}
}

func TestDelayEndsWithTheCaller(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req := httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx)
	start := time.Now()
	handler(time.Minute, "").ServeHTTP(httptest.NewRecorder(), req)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("a cancelled call was held %v; the delay must end with the caller", d)
	}
}
