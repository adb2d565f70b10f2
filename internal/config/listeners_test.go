package config

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestListenerLimitDefaults(t *testing.T) {
	cfg, _, err := Parse("t.yaml", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	l := cfg.Server.Limits
	if diff := cmp.Diff(DefaultCallerLimit, l.Caller, cmp.Comparer(durEqual)); diff != "" {
		t.Errorf("caller defaults (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(DefaultWebhookLimit, l.Webhook, cmp.Comparer(durEqual)); diff != "" {
		t.Errorf("webhook defaults (-want +got):\n%s", diff)
	}
	if l.Webhook.ReadTimeout.D >= l.Caller.ReadTimeout.D || l.Webhook.MaxConns >= l.Caller.MaxConns {
		t.Errorf("the internet-facing webhook listener should have tighter defaults than the caller's: %+v vs %+v", l.Webhook, l.Caller)
	}
}

func durEqual(a, b Duration) bool { return a.D == b.D }

func TestListenerLimitsFromFile(t *testing.T) {
	yaml := strings.Replace(base, "version: 1\n", `version: 1
server:
  limits:
    caller: {max_conns: 10, read_timeout: 0s}
    webhook: {idle_timeout: 3s, body_stall_timeout: 1s}
`, 1)
	cfg, warnings, err := Parse("t.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	l := cfg.Server.Limits
	got := []any{l.Caller.MaxConns, l.Caller.ReadTimeout.D, l.Caller.IdleTimeout.D, l.Webhook.IdleTimeout.D, l.Webhook.BodyStallTimeout.D, l.Webhook.MaxConns, l.Admin.MaxConns}
	want := []any{10, time.Duration(0), 120 * time.Second, 3 * time.Second, time.Second, 256, 64}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("limits (-want +got):\n%s", diff)
	}
	for _, w := range warnings {
		if strings.HasPrefix(w.Path, "server.limits") {
			t.Errorf("unexpected warning %s", w)
		}
	}
}

func TestListenerLimitErrors(t *testing.T) {
	tests := []struct {
		name, limits, wantMsg string
		line                  int
	}{
		{"negative-max-conns", "    webhook: {max_conns: -1}\n", "server.limits.webhook.max_conns: must be between 1 and", 4},
		{"huge-max-conns", "    caller: {max_conns: 99999999}\n", "server.limits.caller.max_conns: must be between 1 and", 4},
		{"negative-timeout", "    admin: {read_timeout: -1s}\n", `server.limits.admin.read_timeout: bad duration "-1s": must not be negative`, 4},
		{"bad-duration", "    webhook:\n      idle_timeout: soon\n", `server.limits.webhook.idle_timeout: bad duration "soon"`, 5},
		{"unknown-key", "    webhook: {max_connections: 5}\n", `unknown key "max_connections"`, 4},
		{"unknown-listener", "    forward: {max_conns: 5}\n", `unknown key "forward"`, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			yaml := strings.Replace(base, "version: 1\n", "version: 1\nserver:\n  limits:\n"+tt.limits, 1)
			_, _, err := Parse("t.yaml", []byte(yaml))
			ps, ok := err.(*Problems)
			if !ok {
				t.Fatalf("want config problems, got %v", err)
			}
			for _, p := range ps.List {
				if strings.Contains(p.String(), tt.wantMsg) {
					if p.Line != tt.line {
						t.Errorf("%q on line %d, want %d", p, p.Line, tt.line)
					}
					return
				}
			}
			t.Errorf("no problem containing %q in:\n%v", tt.wantMsg, err)
		})
	}
}

func TestListenerLimitWarnings(t *testing.T) {
	yaml := strings.Replace(base, "version: 1\n", "version: 1\nserver:\n  limits:\n    webhook: {idle_timeout: 0s, read_header_timeout: 0s}\n"+
		"    caller: {read_timeout: 0s, body_stall_timeout: 0s}\n    admin: {read_timeout: 0s}\n", 1)
	_, warnings, err := Parse("t.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, w := range warnings {
		if strings.HasPrefix(w.Path, "server.limits") {
			paths = append(paths, w.Path)
			if !strings.HasPrefix(w.Msg, ListenerBoundOff) {
				t.Errorf("warning %q does not start with %q", w.Msg, ListenerBoundOff)
			}
		}
	}
	want := []string{"server.limits.webhook.read_header_timeout", "server.limits.webhook.idle_timeout", "server.limits.caller.read_timeout"}
	if diff := cmp.Diff(want, paths); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
}

func TestFDBudget(t *testing.T) {
	s := Server{Limits: ListenerLimits{Caller: ListenerLimit{MaxConns: 100}, Admin: ListenerLimit{MaxConns: 10}, Webhook: ListenerLimit{MaxConns: 50}}}
	if got, want := s.FDs(true), (FDBudget{Inbound: 160 + FDHeadroom, WithOutbound: 310 + FDHeadroom}); got != want {
		t.Errorf("with webhooks: %+v, want %+v", got, want)
	}
	if got, want := s.FDs(false), (FDBudget{Inbound: 110 + FDHeadroom, WithOutbound: 210 + FDHeadroom}); got != want {
		t.Errorf("without webhooks: %+v, want %+v", got, want)
	}
}
