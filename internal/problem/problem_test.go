package problem

import (
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestWriteHidesCause(t *testing.T) {
	rec := httptest.NewRecorder()
	cause := errors.New("dial tcp 10.0.0.5:443: secret-canary-value")
	Write(rec, "req-1", Wrap(UpstreamUnreachable, "vendor could not be reached", cause))
	if rec.Code != 502 {
		t.Fatalf("status = %d, want 502", rec.Code)
	}
	if got := rec.Header().Get(HeaderError); got != "upstream_unreachable" {
		t.Errorf("X-Portcullis-Error = %q", got)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type = %q", ct)
	}
	if strings.Contains(rec.Body.String(), "canary") || strings.Contains(rec.Body.String(), "10.0.0.5") {
		t.Errorf("body leaks cause: %s", rec.Body)
	}
	var b Body
	if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
		t.Fatal(err)
	}
	want := Body{Type: "about:blank", Title: "Upstream unreachable", Status: 502,
		Code: UpstreamUnreachable, Detail: "vendor could not be reached", RequestID: "req-1"}
	if d := cmp.Diff(want, b); d != "" {
		t.Errorf("body (-want +got):\n%s", d)
	}
}

func TestUnknownErrorBecomesInternal(t *testing.T) {
	rec := httptest.NewRecorder()
	Write(rec, "r", errors.New("boom with secret"))
	if rec.Code != 500 || strings.Contains(rec.Body.String(), "secret") {
		t.Fatalf("got %d %s", rec.Code, rec.Body)
	}
}

func TestStatuses(t *testing.T) {
	tests := []struct {
		code Code
		want int
	}{
		{BadRequestPath, 400}, {Unauthenticated, 401}, {RouteNotAllowed, 403},
		{UnknownIntegration, 404}, {RequestTooLarge, 413}, {RateLimited, 429},
		{UpstreamTimeout, 504}, {ResponseTooLarge, 502}, {IntegrationDisabled, 503},
		{CircuitOpen, 503}, {Overloaded, 503}, {CredentialUnavailable, 503},
		{EgressDenied, 502}, {UpstreamUnreachable, 502}, {InvalidUpstreamResponse, 502},
		{WebhookRejected, 400}, {RequestTimeout, 408},
	}
	for _, tt := range tests {
		t.Run(string(tt.code), func(t *testing.T) {
			if got := tt.code.Status(); got != tt.want {
				t.Errorf("%s.Status() = %d, want %d", tt.code, got, tt.want)
			}
		})
	}
}

func TestRetryAfterHeader(t *testing.T) {
	rec := httptest.NewRecorder()
	Write(rec, "r", &Error{Code: RateLimited, Detail: "slow down", RetryAfter: 3})
	if got := rec.Header().Get("Retry-After"); got != "3" {
		t.Errorf("Retry-After = %q", got)
	}
}
