package webhook

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/portcullis-dev/portcullis/internal/conf"
)

func TestSpecProvision(t *testing.T) {
	var s Spec
	s.Provision()
	got := []any{s.Tolerance.D, s.MaxBodyBytes.N, s.RateLimit.PerSecond}
	if d := cmp.Diff([]any{5 * time.Minute, int64(1 << 20), 50.0}, got); d != "" {
		t.Errorf("defaults (-want +got):\n%s", d)
	}
	s = Spec{Tolerance: conf.Dur(time.Minute), MaxBodyBytes: conf.Bytes(10)}
	s.Provision()
	if s.Tolerance.D != time.Minute || s.MaxBodyBytes.N != 10 {
		t.Errorf("Provision overwrote set values: %v %v", s.Tolerance.D, s.MaxBodyBytes.N)
	}
}

func TestSpecValidate(t *testing.T) {
	secrets := []conf.SecretRef{conf.MustRef("env:WH")}
	tests := []struct {
		name string
		spec *Spec
		want []string
	}{
		{"empty", nil, []string{"error "}},
		{"stripe", &Spec{Path: "/wh", Scheme: "stripe", Secrets: secrets}, nil},
		{"relative-path-no-secrets", &Spec{Path: "wh", Scheme: "github"}, []string{"error path", "error secrets"}},
		{"unknown-scheme", &Spec{Path: "/wh", Scheme: "svix", Secrets: secrets}, []string{"error scheme"}},
		{"hmac-everything-wrong", &Spec{Path: "/wh", Scheme: "hmac_sha256", Secrets: secrets, Encoding: "b32", Signed: "all"},
			[]string{"error header", "error encoding", "error signed"}},
		{"forward-without-secret", &Spec{Path: "/wh", Scheme: "slack", Secrets: secrets, ForwardTo: "ftp://x"},
			[]string{"error forward_to", "error forward_secret"}},
		{"forward", &Spec{Path: "/wh", Scheme: "slack", Secrets: secrets, ForwardTo: "http://127.0.0.1:7000/x", ForwardSecret: conf.MustRef("env:FS")}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, conf.Check(tt.spec)); d != "" {
				t.Errorf("problems (-want +got):\n%s", d)
			}
		})
	}
}
