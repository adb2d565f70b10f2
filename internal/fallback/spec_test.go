package fallback

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/portcullis-dev/portcullis/internal/conf"
)

func TestSpecValidate(t *testing.T) {
	tests := []struct {
		name string
		spec *Spec
		want []string
	}{
		{"queue-always-alone", &Spec{QueueAlways: true}, []string{"error queue_always"}},
		{"queue-always", &Spec{Queue: true, QueueAlways: true}, nil},
		{"negative-stale", &Spec{StaleFor: conf.Dur(-1)}, []string{"error stale_for"}},
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
