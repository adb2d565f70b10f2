package egress

import (
	"net"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"

	"github.com/portcullis-dev/portcullis/internal/conf"
)

func TestSpecValidate(t *testing.T) {
	tests := []struct {
		name string
		spec Spec
		want []string
	}{
		{"one-host", Spec{Allow: []string{"api.vendor.example:443"}}, nil},
		{"empty-allow", Spec{}, []string{"error allow"}},
		{"bad-entry-and-wildcard", Spec{Allow: []string{"api.vendor.example", "*.vendor.example:443", "[2001:db8::1]:443"}},
			[]string{"error allow[0]", "warning allow[1]"}},
		{"allow-private", Spec{Allow: []string{"10.0.0.5:443"}, AllowPrivate: true}, []string{"warning allow_private"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, conf.Check(&tt.spec)); d != "" {
				t.Errorf("problems (-want +got):\n%s", d)
			}
		})
	}
}

func TestTimeoutsProvisionAndValidate(t *testing.T) {
	set := func(d time.Duration) conf.Duration {
		var v conf.Duration
		if err := v.UnmarshalYAML(yamlScalar(d.String())); err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name string
		in   Timeouts
		want Timeouts // D values after Provision
		errs []string
	}{
		{"all-defaults", Timeouts{},
			Timeouts{Connect: conf.Dur(5 * time.Second), TLS: conf.Dur(5 * time.Second), Headers: conf.Dur(30 * time.Second),
				Request: conf.Dur(time.Minute), IdleConn: conf.Dur(90 * time.Second)},
			[]string{"warning "}},
		{"set-values-stay", Timeouts{Connect: set(2 * time.Second), Request: set(10 * time.Second), PerTry: set(3 * time.Second)},
			Timeouts{Connect: conf.Dur(2 * time.Second), TLS: conf.Dur(5 * time.Second), Headers: conf.Dur(30 * time.Second),
				Request: conf.Dur(10 * time.Second), PerTry: conf.Dur(3 * time.Second), IdleConn: conf.Dur(90 * time.Second)},
			nil},
		{"per-try-over-request", Timeouts{Request: set(2 * time.Second), PerTry: set(3 * time.Second)},
			Timeouts{Connect: conf.Dur(5 * time.Second), TLS: conf.Dur(5 * time.Second), Headers: conf.Dur(30 * time.Second),
				Request: conf.Dur(2 * time.Second), PerTry: conf.Dur(3 * time.Second), IdleConn: conf.Dur(90 * time.Second)},
			[]string{"error per_try"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.in
			got.Provision()
			d := func(t Timeouts) []time.Duration {
				return []time.Duration{t.Connect.D, t.TLS.D, t.Headers.D, t.Request.D, t.PerTry.D, t.IdleConn.D}
			}
			if diff := cmp.Diff(d(tt.want), d(got)); diff != "" {
				t.Errorf("provisioned (-want +got):\n%s", diff)
			}
			r := conf.NewReport("")
			got.Validate(r)
			if diff := cmp.Diff(tt.errs, r.Paths()); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSpecConfig pins the one translation of a Spec and its Timeouts into
// Policy settings, and that a Policy's Transport carries the timeouts.
func TestSpecConfig(t *testing.T) {
	s := Spec{Allow: []string{"api.vendor.example:443"}, AllowCIDRs: []string{"10.1.0.0/16"}, PinSPKI: []string{"x"}, CAFile: "ca.pem"}
	var tm Timeouts
	tm.Provision()
	res := &net.Resolver{}
	got := s.Config(tm, res)
	want := Config{Allow: s.Allow, AllowCIDRs: s.AllowCIDRs, PinSPKI: s.PinSPKI, CAFile: "ca.pem",
		ConnectTimeout: 5 * time.Second, TLSHandshakeTimeout: 5 * time.Second, ResponseHeaderTimeout: 30 * time.Second,
		IdleConnTimeout: 90 * time.Second, Resolver: res}
	if d := cmp.Diff(want, got, cmp.Comparer(func(a, b *net.Resolver) bool { return a == b })); d != "" {
		t.Errorf("Config (-want +got):\n%s", d)
	}
	dial := got.DialOnly()
	if dial.PinSPKI != nil || dial.CAFile != "" || dial.TLSHandshakeTimeout != 0 || dial.ConnectTimeout != 5*time.Second || len(dial.Allow) != 1 {
		t.Errorf("DialOnly kept TLS settings or lost dial ones: %+v", dial)
	}
	s.PinSPKI, s.CAFile = nil, ""
	p, err := s.Policy(tm, nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := p.Transport()
	if tr.TLSHandshakeTimeout != 5*time.Second || tr.ResponseHeaderTimeout != 30*time.Second || tr.IdleConnTimeout != 90*time.Second {
		t.Errorf("Transport timeouts = %v/%v/%v, want 5s/30s/1m30s", tr.TLSHandshakeTimeout, tr.ResponseHeaderTimeout, tr.IdleConnTimeout)
	}
}

// yamlScalar is a scalar node as the decoder hands it to UnmarshalYAML:
// a value written in the file (line 1).
func yamlScalar(v string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Value: v, Line: 1} }
