package drill

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/portcullis-dev/portcullis/internal/chaos"
	"github.com/portcullis-dev/portcullis/internal/secret"
)

func drillConfig(g *fakeGateway) Config {
	return Config{Gateway: g.gw.URL, Admin: g.admin.URL, AdminToken: secret.New("admin-token"), CallerToken: secret.New("caller-token"),
		Integration: "payments", Path: "/v1/charges/ch_1", Calls: 12, LatencyBound: time.Second, Recover: 3 * time.Second, Poll: 20 * time.Millisecond}
}

type outcome struct {
	Protection string
	Engaged    bool
}

func outcomes(r Result) []outcome {
	var out []outcome
	for _, c := range r.Checks {
		out = append(out, outcome{c.Protection, c.Engaged})
	}
	return out
}

// warm makes one good call so the fallback has something to serve.
func warm(t *testing.T, g *fakeGateway) {
	t.Helper()
	r := &runner{c: drillConfig(g)}
	r.c.defaults()
	if c := r.call(t.Context()); c.status != 200 {
		t.Fatalf("warm-up call: %+v", c)
	}
}

func TestScenarios(t *testing.T) {
	off := func(f func(*fakeGateway)) []func(*fakeGateway) { return []func(*fakeGateway){f} }
	tests := []struct {
		name     string
		scenario string
		gateway  []func(*fakeGateway)
		warm     bool
		wantPass bool
		want     []outcome
	}{
		{name: "vendor-outage-passes", scenario: "vendor-outage", warm: true, wantPass: true,
			want: []outcome{{BreakerOpened, true}, {FallbackServed, true}, {LatencyBounded, true}, {BreakerClosed, true}, {AlertEmitted, true}}},
		{name: "vendor-outage-without-fallback-still-passes", scenario: "vendor-outage", wantPass: true,
			gateway: off(func(g *fakeGateway) { g.fallback = false }),
			want:    []outcome{{BreakerOpened, true}, {FallbackServed, false}, {LatencyBounded, true}, {BreakerClosed, true}, {AlertEmitted, true}}},
		{name: "vendor-outage-fails-with-breaker-off", scenario: "vendor-outage", wantPass: false,
			gateway: off(func(g *fakeGateway) { g.breaker = false }),
			// The drill's own warm-up call fills the stale cache, so the
			// fallback is still served; the breaker is what failed.
			want: []outcome{{BreakerOpened, false}, {FallbackServed, true}, {LatencyBounded, true}, {BreakerClosed, false}, {AlertEmitted, false}}},
		{name: "bad-payload-passes", scenario: "bad-payload", wantPass: true,
			want: []outcome{{InvalidBlocked, true}, {LatencyBounded, true}}},
		{name: "bad-payload-fails-with-validation-off", scenario: "bad-payload", wantPass: false,
			gateway: off(func(g *fakeGateway) { g.validate = false }),
			want:    []outcome{{InvalidBlocked, false}, {LatencyBounded, true}}},
		{name: "revoked-key-passes", scenario: "revoked-key", wantPass: true,
			want: []outcome{{RefreshAttempted, true}, {CredentialRefused, false}, {LatencyBounded, true}}},
		{name: "revoked-key-fails-with-refresh-off", scenario: "revoked-key", wantPass: false,
			gateway: off(func(g *fakeGateway) { g.refresh = false }),
			want:    []outcome{{RefreshAttempted, false}, {CredentialRefused, false}, {LatencyBounded, true}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := newFakeGateway(t, tc.gateway...)
			if tc.warm {
				warm(t, g)
			}
			res, err := Run(t.Context(), tc.scenario, drillConfig(g))
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			if err := WriteTable(&b, res); err != nil {
				t.Fatal(err)
			}
			t.Logf("\n%s", b.String())
			if res.Pass != tc.wantPass {
				t.Errorf("pass = %v, want %v", res.Pass, tc.wantPass)
			}
			if d := cmp.Diff(tc.want, outcomes(res)); d != "" {
				t.Errorf("protections (-want +got):\n%s", d)
			}
			if left := g.inj.List(); len(left) != 0 {
				t.Errorf("the drill left faults behind: %+v", left)
			}
		})
	}
}

func TestRequireMakesOptionalRequired(t *testing.T) {
	g := newFakeGateway(t, func(g *fakeGateway) { g.fallback = false })
	c := drillConfig(g)
	c.Require = []string{FallbackServed}
	res, err := Run(t.Context(), "vendor-outage", c)
	if err != nil {
		t.Fatal(err)
	}
	if res.Pass {
		t.Error("drill passed though a required fallback was never served")
	}
}

func TestDrillCannotRun(t *testing.T) {
	tests := []struct {
		name    string
		gateway []func(*fakeGateway)
		change  func(*Config)
		want    error
	}{
		{name: "chaos-disabled", gateway: []func(*fakeGateway){func(g *fakeGateway) { g.chaosOn = false }}, want: chaos.ErrAdmin},
		{name: "wrong-admin-token", change: func(c *Config) { c.AdminToken = secret.New("nope") }, want: ErrGateway},
		{name: "unknown-integration", change: func(c *Config) { c.Integration = "crm" }, want: ErrGateway},
		{name: "unknown-scenario", change: func(c *Config) {}, want: ErrUnknownScenario},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := newFakeGateway(t, tc.gateway...)
			c := drillConfig(g)
			if tc.change != nil {
				tc.change(&c)
			}
			scenario := "bad-payload"
			if tc.name == "unknown-scenario" {
				scenario = "meteor-strike"
			}
			_, err := Run(t.Context(), scenario, c)
			if !errors.Is(err, tc.want) {
				t.Errorf("err %v, want %v", err, tc.want)
			}
			if strings.Contains(errString(err), "admin-token") {
				t.Error("error carries the admin token")
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestCommand(t *testing.T) {
	g := newFakeGateway(t)
	t.Setenv("TEST_ADMIN", "admin-token")
	t.Setenv("TEST_CALLER", "caller-token")
	base := []string{"--gateway", g.gw.URL, "--admin", g.admin.URL, "--token-env", "TEST_ADMIN", "--caller-token-env", "TEST_CALLER",
		"--integration", "payments", "--path", "/v1/charges/ch_1", "--calls", "5", "--recover", "3s"}
	var out, errb bytes.Buffer
	code := Command(append([]string{"--scenario", "bad-payload"}, base...), &out, &errb)
	if code != 0 || !strings.Contains(out.String(), "invalid body blocked") || !strings.Contains(out.String(), "drill bad-payload: PASS (2/2 required protections engaged)") {
		t.Errorf("exit %d\n%s%s", code, out.String(), errb.String())
	}
	g.validate = false
	out.Reset()
	if code := Command(append([]string{"--scenario", "bad-payload", "--format", "json"}, base...), &out, &errb); code != 1 || !strings.Contains(out.String(), `"pass": false`) {
		t.Errorf("with validation off: exit %d\n%s", code, out.String())
	}
	for _, args := range [][]string{{"--integration", "payments"}, {"--scenario", "bad-payload"}, append([]string{"--scenario", "x", "--require", "magic"}, base...)} {
		if code := Command(args, &out, &errb); code != 2 {
			t.Errorf("Command(%v) = %d, want 2", args, code)
		}
	}
}

var integrationsSeeds = []string{
	`{"integrations":[{"name":"payments","status":{"breaker":"open","credential":{"revoked":true,"last_refresh":"2026-11-25T10:00:00Z"}}}]}`,
	`{"integrations":[{"name":"payments","status":{"breaker":{"state":"half-open"}}}]}`,
	`{"integrations":[{"name":"payments","status":"weird"}]}`,
	`{"integrations":[{"name":"maps"}]}`,
	`[]`,
}

func TestParseIntegrations(t *testing.T) {
	want := map[int]Status{
		0: {Found: true, Breaker: "open", CredentialRevoked: true, LastRefresh: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)},
		3: {},
	}
	for i, w := range want {
		got, err := ParseIntegrations([]byte(integrationsSeeds[i]), "payments")
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(w, got); d != "" {
			t.Errorf("seed %d (-want +got):\n%s", i, d)
		}
	}
	// Shapes the admin API does not send (admin.IntegrationList): a breaker
	// object, a status string, a list instead of an object.
	for _, i := range []int{1, 2, 4} {
		if _, err := ParseIntegrations([]byte(integrationsSeeds[i]), "payments"); !errors.Is(err, ErrGateway) {
			t.Errorf("seed %d: %v, want ErrGateway", i, err)
		}
	}
}

func FuzzParseIntegrations(f *testing.F) {
	for _, s := range integrationsSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := ParseIntegrations(data, "payments")
		if err != nil && !errors.Is(err, ErrGateway) {
			t.Fatalf("error %v does not wrap ErrGateway", err)
		}
		if !st.Found && (st.Breaker != "" || st.CredentialRevoked) {
			t.Fatalf("state for a missing integration: %+v", st)
		}
	})
}
