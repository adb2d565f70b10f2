package validate

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/portcullis-dev/portcullis/internal/conf"
)

func TestConfigSpec(t *testing.T) {
	s := &ConfigSpec{OpenAPI: "stripe.json"}
	if p := conf.Check(s); p != nil || s.Mode != ModeEnforce || s.MaxDepth != DefaultMaxDepth {
		t.Errorf("defaults: %+v, problems %v", s, p)
	}
	tests := []struct {
		name string
		spec *ConfigSpec
		want []string
	}{
		{"report-without-spec", &ConfigSpec{Mode: ModeReport}, []string{"error openapi"}},
		{"off-without-spec", &ConfigSpec{Mode: ModeOff}, nil},
		{"bad-mode", &ConfigSpec{Mode: "strict", OpenAPI: "x.json", MaxDepth: -1}, []string{"error mode", "error max_depth"}},
		{"absent", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, conf.Check(tt.spec)); d != "" {
				t.Errorf("problems (-want +got):\n%s", d)
			}
		})
	}
}
