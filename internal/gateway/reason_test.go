package gateway

import (
	"errors"
	"fmt"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/policy"
)

// TestPublicPathReason: the public detail is the PathError's reason, whole,
// however the error was wrapped; any other error gets no detail, so no
// internal message text reaches the caller.
func TestPublicPathReason(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"path-error", &policy.PathError{Reason: policy.ReasonTooLong}, "ambiguous or unsafe request path (too long)"},
		{"wrapped", fmt.Errorf("segment 3: %w", &policy.PathError{Reason: policy.ReasonDotSegment}),
			"ambiguous or unsafe request path (" + policy.ReasonDotSegment + ")"},
		{"reason-with-colon", &policy.PathError{Reason: "bad escape: %zz"}, "ambiguous or unsafe request path (bad escape: %zz)"},
		{"other-error", errors.New("internal: secret detail"), "ambiguous or unsafe request path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := publicPathReason(tt.err); got != tt.want {
				t.Errorf("publicPathReason() = %q, want %q", got, tt.want)
			}
		})
	}
}
