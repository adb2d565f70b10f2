package lint

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/portcullis-dev/portcullis/internal/conf"
	"github.com/portcullis-dev/portcullis/internal/mint"
)

// TestInspectCA: check loads server.inspect_ca.cert, reports a file that
// is not a usable CA on its line, and warns 30 days before it expires.
func TestInspectCA(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, validity time.Duration) string {
		c, _, err := mint.NewCA(mint.CAOptions{Validity: validity})
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, c, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	garbage := filepath.Join(dir, "garbage.pem")
	os.WriteFile(garbage, []byte("not a certificate"), 0o644)
	tests := []struct {
		name, cert string
		want       []brief
		msg        string
	}{
		{"valid", write("year.pem", 365*24*time.Hour), nil, ""},
		{"expiring", write("week.pem", 7*24*time.Hour), []brief{{conf.InspectCAExpiring, conf.Warning, "server.inspect_ca.cert"}}, "expires in 6 days"},
		{"not-a-ca", garbage, []brief{{conf.ConfigInvalid, conf.Error, "server.inspect_ca.cert"}}, "no PEM CERTIFICATE block"},
		{"missing", filepath.Join(dir, "missing.pem"), []brief{{conf.ConfigInvalid, conf.Error, "server.inspect_ca.cert"}}, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			y := strings.Replace(hardened, "server:\n", "server:\n  inspect_ca:\n    cert: "+tt.cert+"\n    key: env:INSPECT_CA_KEY\n", 1) +
				"    proxy: {inspect: true}\n"
			r := Check("inspect.yaml", []byte(y))
			if d := cmp.Diff(tt.want, briefs(r), cmpopts.EquateEmpty()); d != "" {
				t.Fatalf("findings (-want +got):\n%s\n%+v", d, r.Findings)
			}
			if tt.msg != "" {
				f := r.Findings[0]
				if !strings.Contains(f.Message, tt.msg) || f.Line != 4 {
					t.Errorf("finding %q on line %d; want %q on line 4", f.Message, f.Line, tt.msg)
				}
			}
		})
	}
}
