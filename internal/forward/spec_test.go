package forward

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/portcullis-dev/portcullis/internal/conf"
)

func TestProxySpecProvision(t *testing.T) {
	var s ProxySpec
	s.Provision()
	got := []any{s.Mode, s.MaxTunnels, s.IdleTimeout.D, s.MaxLifetime.D}
	if d := cmp.Diff([]any{"enforce", 100, 5 * time.Minute, time.Hour}, got); d != "" {
		t.Errorf("defaults (-want +got):\n%s", d)
	}
	s = ProxySpec{Mode: "report", MaxTunnels: 3, IdleTimeout: conf.Dur(time.Second), MaxLifetime: conf.Dur(time.Minute)}
	s.Provision()
	if got := []any{s.Mode, s.MaxTunnels, s.IdleTimeout.D, s.MaxLifetime.D}; !cmp.Equal(got, []any{"report", 3, time.Second, time.Minute}) {
		t.Errorf("Provision overwrote set values: %v", got)
	}
}

func TestProxySpecValidate(t *testing.T) {
	tests := []struct {
		name string
		spec *ProxySpec
		want []string
	}{
		{"none", nil, nil},
		{"defaults", &ProxySpec{}, nil},
		{"open", &ProxySpec{Mode: "open"}, nil},
		{"bad-mode-negative-tunnels", &ProxySpec{Mode: "wide", MaxTunnels: -1}, []string{"error mode", "error max_tunnels"}},
		{"inspect-enforce", &ProxySpec{Inspect: true}, nil},
		{"inspect-report", &ProxySpec{Mode: "report", Inspect: true}, []string{"error inspect"}},
		{"inspect-open", &ProxySpec{Mode: "open", Inspect: true}, []string{"error inspect"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, conf.Check(tt.spec)); d != "" {
				t.Errorf("problems (-want +got):\n%s", d)
			}
		})
	}
}
