package gateway

import (
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/internal/resilience"
)

const keyBase = `version: 1
callers:
  billing: {tokens: ["sha256:` + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" + `"]}
integrations:
  pay:
    upstream: https://api.pay.example
    egress: {allow: ["api.pay.example:443"]}
    credential: {type: bearer, secret: env:PAY_KEY}
    timeouts: {connect: 2s, request: 10s}
    retry: {attempts: 3}
    routes:
      - {method: GET, path: "/v1/x", callers: [billing]}
`

func keyOf(t *testing.T, yaml string) string {
	t.Helper()
	cfg, _, err := config.Parse("t.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Integrations["pay"]
	eg, err := c.Egress.Policy(c.Timeouts, nil)
	if err != nil {
		t.Fatal(err)
	}
	return reloadKey(c, resilience.Compile(c.Retry, c.CircuitBreaker, c.RateLimit, c.Limits, c.Timeouts.PerTry.D), eg)
}

// The reload key is the integration's Specs by value: the same settings
// written elsewhere in the file keep the core (and its breaker and
// limiter state); any setting of a Spec the core is built from gives a new
// one, including those the hand-written key it replaced left out
// (credential.max_age).
func TestReloadKey(t *testing.T) {
	base := keyOf(t, keyBase)
	moved := strings.Replace(keyBase, "    retry: {attempts: 3}\n", "", 1)
	moved = strings.Replace(moved, "    upstream:", "    retry:\n      attempts: 3\n\n    upstream:", 1)
	if got := keyOf(t, moved); got != base {
		t.Errorf("same settings on other lines gave a new key:\n%s\n%s", base, got)
	}
	for name, edit := range map[string][2]string{
		"credential.max_age": {"secret: env:PAY_KEY}", "secret: env:PAY_KEY, max_age: 1h}"},
		"credential.secret":  {"env:PAY_KEY", "env:PAY_KEY2"},
		"retry.attempts":     {"attempts: 3", "attempts: 2"},
		"timeouts.connect":   {"connect: 2s", "connect: 3s"},
		"egress.allow":       {`allow: ["api.pay.example:443"]`, `allow: ["api.pay.example:443", "x.pay.example:443"]`},
		"rate_limit":         {"    routes:", "    rate_limit: {rate: 5/s}\n    routes:"},
	} {
		if got := keyOf(t, strings.Replace(keyBase, edit[0], edit[1], 1)); got == base {
			t.Errorf("%s changed but the reload key did not", name)
		}
	}
	if strings.Contains(base, "line") || strings.Contains(base, "0x") {
		t.Errorf("key holds line numbers or pointers: %s", base)
	}
}
