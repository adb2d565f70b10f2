package chaos

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/secret"
)

func tokenValue(s string) secret.Value { return secret.New(s) }

func TestCommand(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	inj := NewInjector(nil, true, func() time.Time { return now })
	srv := adminServer(t, inj)
	t.Setenv("TEST_ADMIN_TOKEN", "admin-token")
	admin := []string{"--admin", srv.URL, "--token-env", "TEST_ADMIN_TOKEN"}
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
	}{
		{name: "start", args: []string{"start", "--integration", "payments", "--kind", "error", "--status", "502", "--for", "2m"}, wantCode: 0,
			wantOut: "started fault f1: error on payments (every route), probability 1, until 2026-11-25T12:02:00Z"},
		{name: "start-route-latency", args: []string{"start", "--integration", "ai", "--route", "/v1/chat/completions", "--kind", "latency", "--latency", "2s", "--probability", "0.5"}, wantCode: 0,
			wantOut: "started fault f2: latency on ai /v1/chat/completions, probability 0.5"},
		{name: "list-table", args: []string{"list"}, wantCode: 0, wantOut: "f2  ai           /v1/chat/completions  latency  0.5   latency=2s"},
		{name: "list-json", args: []string{"list", "--format", "json"}, wantCode: 0, wantOut: `"kind": "latency"`},
		{name: "stop-one", args: []string{"stop", "--id", "f1"}, wantCode: 0, wantOut: "stopped fault f1"},
		{name: "stop-unknown", args: []string{"stop", "--id", "f1"}, wantCode: 1},
		{name: "stop-all", args: []string{"stop", "--all"}, wantCode: 0, wantOut: "stopped 1 fault(s)"},
		{name: "start-bad-kind-is-usage", args: []string{"start", "--integration", "x", "--kind", "fire"}, wantCode: 2},
		{name: "stop-needs-one-selector", args: []string{"stop"}, wantCode: 2},
		{name: "unknown-subcommand", args: []string{"pause"}, wantCode: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			args := append(append([]string{}, tc.args...), admin...)
			if tc.name == "unknown-subcommand" {
				args = tc.args
			}
			code := Command(args, &out, &errb)
			if code != tc.wantCode || !strings.Contains(out.String(), tc.wantOut) {
				t.Errorf("exit %d, want %d; stdout:\n%s\nstderr:\n%s\nwant stdout containing %q", code, tc.wantCode, out.String(), errb.String(), tc.wantOut)
			}
		})
	}
	var out, errb bytes.Buffer
	if code := Command([]string{"list", "--admin", srv.URL, "--token-env", "NO_SUCH_VAR_SET"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "401") {
		t.Errorf("list without a token: exit %d, stderr %q; want 1 and the 401", code, errb.String())
	}
	if strings.Contains(errb.String(), "admin-token") {
		t.Error("error output carries the admin token")
	}
}
