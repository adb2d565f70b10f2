package gateway

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/internal/egress"
	"github.com/portcullis-dev/portcullis/internal/forward"
	"github.com/portcullis-dev/portcullis/internal/identity"
	"github.com/portcullis-dev/portcullis/internal/lint"
)

const oneSpecYAML = `version: 1
callers:
  billing: {tokens: ["sha256:0000000000000000000000000000000000000000000000000000000000000000"]}
integrations:
  x:
    upstream: https://api.x.example
    egress: {allow: ["api.x.example:443", "files.x.example:8443"], allow_cidrs: ["10.9.0.0/16"]%s}
    timeouts: {connect: 1500ms, tls: 2s, headers: 3s, idle_conn: 4s, request: 9s}
    routes: [{method: GET, path: /v1, callers: [billing]}]
    proxy: {mode: enforce}
`

// TestEgressFromOneSpec: gateway compile, the forward proxy and
// `portcullis check` all build an integration's egress from the same
// egress.Spec (Spec.Config / Spec.Policy), so they agree on the timeouts,
// on what is allow-listed, and on what is refused.
func TestEgressFromOneSpec(t *testing.T) {
	text := strings.Replace(oneSpecYAML, "%s", "", 1)
	cfg, _, err := config.Parse("one.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	spec := cfg.Integrations["x"]
	want := spec.Egress.Config(spec.Timeouts, nil)
	if want.ConnectTimeout != 1500*time.Millisecond || want.TLSHandshakeTimeout != 2*time.Second ||
		want.ResponseHeaderTimeout != 3*time.Second || want.IdleConnTimeout != 4*time.Second {
		t.Fatalf("Spec.Config did not carry the file's timeouts: %+v", want)
	}

	o := &Options{Credentials: func(string, *config.Credential, http.RoundTripper, *egress.Policy) (http.RoundTripper, func(context.Context) error, error) {
		return nil, nil, nil
	}}
	o.defaults()
	rt, err := compile(cfg, o, nil)
	if err != nil {
		t.Fatal(err)
	}
	base := rt.integrations["x"].core.base
	got := []any{base.TLSHandshakeTimeout, base.ResponseHeaderTimeout, base.IdleConnTimeout}
	if d := cmp.Diff([]any{want.TLSHandshakeTimeout, want.ResponseHeaderTimeout, want.IdleConnTimeout}, got); d != "" {
		t.Errorf("gateway transport timeouts differ from the Spec's (-spec +gateway):\n%s", d)
	}

	auth, err := identity.New(cfg.Callers)
	if err != nil {
		t.Fatal(err)
	}
	fwd, err := forward.New(cfg.ForwardIntegrations(), auth, forward.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pol, err := spec.Egress.Policy(spec.Timeouts, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, hp := range [][2]string{{"api.x.example", "443"}, {"files.x.example", "8443"}, {"api.x.example", "80"}, {"other.example", "443"}} {
		_, ferr := fwd.Decide(forward.Args{Caller: "billing", Host: hp[0], Port: hp[1]})
		if listed := pol.AllowsHostPort(hp[0], hp[1]); listed != (ferr == nil) {
			t.Errorf("%s:%s: Spec policy allows=%v, forward proxy error=%v", hp[0], hp[1], listed, ferr)
		}
	}

	// A Spec that does not compile: check and serve refuse it in the same words.
	bad := strings.Replace(oneSpecYAML, "%s", `, pin_spki: ["nope"]`, 1)
	badCfg, _, err := config.Parse("bad.yaml", []byte(bad))
	if err != nil {
		t.Fatal(err)
	}
	verr := Validate(badCfg)
	if verr == nil {
		t.Fatal("gateway.Validate accepted a bad pin")
	}
	var lintMsg string
	for _, f := range lint.Check("bad.yaml", []byte(bad)).Findings {
		if f.Path == "integrations.x.egress" {
			lintMsg = f.Message
		}
	}
	if lintMsg == "" || !strings.Contains(verr.Error(), lintMsg) {
		t.Errorf("check said %q, serve said %q", lintMsg, verr)
	}
}
