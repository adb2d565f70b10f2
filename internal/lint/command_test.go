package lint

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/config"
)

func TestCommandExitCodes(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	clean := write("clean.yaml", hardened)
	infoOnly := write("info.yaml", strings.Replace(hardened, "mode: enforce", "mode: report", 1))
	warn := write("warn.yaml", strings.Replace(hardened, ", max_age: 90d", "", 1))
	bad := write("bad.yaml", strings.Replace(hardened, "secret: env:PAY_KEY", "secret: sk_live_plaintext_1234567890", 1))
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  []string
	}{
		{name: "clean", args: []string{"--config", clean}, wantCode: 0, wantOut: []string{"0 error(s), 0 warning(s), 0 info"}},
		{name: "info-only-strict-passes", args: []string{"--strict", "--config", infoOnly}, wantCode: 0, wantOut: []string{"info: integrations.payments.validate.mode", "[PC009]"}},
		{name: "warnings-pass", args: []string{"--config", warn}, wantCode: 0, wantOut: []string{"warn.yaml:11: warning: integrations.payments.credential:", "0 error(s), 1 warning(s)"}},
		{name: "warnings-fail-strict", args: []string{"--strict", "--config", warn}, wantCode: 1},
		{name: "errors-fail", args: []string{"--config", bad}, wantCode: 1, wantOut: []string{"bad.yaml:11: error: integrations.payments.credential.secret:", "[PC001]", "    fix: Move the value", "1 error(s)"}},
		{name: "json", args: []string{"--format", "json", "--config", warn}, wantCode: 0, wantOut: []string{`"id": "PC013"`, `"warnings": 1`, `"fix": "Add max_age`}},
		{name: "sarif-errors-still-exit-1", args: []string{"--format", "sarif", "--config", bad}, wantCode: 1, wantOut: []string{`"ruleId": "PC001"`, `"startLine": 11`}},
		{name: "missing-file", args: []string{"--config", filepath.Join(dir, "nope.yaml")}, wantCode: 1},
		{name: "bad-format", args: []string{"--format", "xml", "--config", clean}, wantCode: 2},
		{name: "unknown-flag", args: []string{"--frobnicate"}, wantCode: 2},
		{name: "help", args: []string{"--help"}, wantCode: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := Command(tc.args, &out, &errb)
			if code != tc.wantCode {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.wantCode, out.String(), errb.String())
			}
			for _, w := range tc.wantOut {
				if !strings.Contains(out.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, out.String())
				}
			}
			if strings.Contains(out.String()+errb.String(), "sk_live_plaintext") {
				t.Error("output echoes the plain secret")
			}
		})
	}
}

func TestNewCommandRunsExtraValidation(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte(hardened), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	run := NewCommand(func(*config.Config) error { return errors.New("integrations.payments: breaker: bad window") })
	if code := run([]string{"--config", p}, &out, &bytes.Buffer{}); code != 1 || !strings.Contains(out.String(), "error: integrations.payments: breaker: bad window [PC000]") {
		t.Errorf("exit %d, output:\n%s", code, out.String())
	}
}

// TestCheckCompatibility is cmd/portcullis's TestCheck run against Command:
// the lines and counts `portcullis check` printed before this package.
func TestCheckCompatibility(t *testing.T) {
	run := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := Command(args, &out, &errb)
		return code, out.String() + errb.String()
	}
	if code, out := run("--config", "../../examples/portcullis.yaml"); code != 0 {
		t.Fatalf("check examples: exit %d\n%s", code, out)
	}
	ex, err := os.ReadFile("../../examples/portcullis.yaml")
	if err != nil {
		t.Fatal(err)
	}
	risky := filepath.Join(t.TempDir(), "risky.yaml")
	_ = os.WriteFile(risky, []byte(strings.Replace(string(ex), `egress: {allow: ["api.twilio.com:443"]}`, `egress: {allow: ["api.twilio.com:443"], allow_private: true}`, 1)), 0o600)
	if code, out := run("--config", risky); code != 0 || !strings.Contains(out, "warning: integrations.sms.egress.allow_private") {
		t.Errorf("warnings only: exit %d, want 0 and the warning:\n%s", code, out)
	}
	if code, _ := run("--strict", "--config", risky); code != 1 {
		t.Errorf("--strict with warnings: exit %d, want 1", code)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	_ = os.WriteFile(bad, []byte(`version: 1
callers: {billing: {tokens: ["pcs_raw"]}}
integrations:
  pay:
    upstream: https://api.pay.example
    egress: {allow: ["api.other.example:443"]}
    credential: {type: bearer, secret: sk_live_plaintext_123}
    timeouts: {request: forever}
    routes: [{method: GET, path: /x, callers: [ghost]}]
`), 0o600)
	code, out := run("--config", bad)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	for _, want := range []string{"bad.yaml:2:", "bad.yaml:5:", "bad.yaml:7:", "bad.yaml:8:", "bad.yaml:9:", "5 error(s)"} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "sk_live_plaintext_123") || strings.Contains(out, "pcs_raw") {
		t.Errorf("check echoes a secret:\n%s", out)
	}
}
