package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/identity"
)

const drillConfig = `version: 1
server: {listen: "{{CALLER}}", admin_listen: "{{ADMIN}}", admin_token: env:E2E_ADMIN_TOKEN, shutdown_grace: 2s}
state: {data_dir: "{{DATA}}"}
chaos: {enabled: true}
callers:
  billing: {tokens: ["%[1]s"]}
integrations:
  payments:
    upstream: %[2]s
    egress: {allow: ["%[3]s"], allow_private: true}
    timeouts: {connect: 1s, request: 2s}
    retry: {attempts: 2, backoff: 10ms, max_backoff: 50ms, budget: 0.2}
    circuit_breaker: {failure_ratio: 0.5, min_requests: 5, window: 10s, open_for: 1s, half_open_probes: 1}
    fallback: {stale_for: 10m}
%[4]s    routes:
      - {method: GET, path: "/v1/charges/{id}", callers: [billing]}
`

func runDrill(t *testing.T, p *proc, tok string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(binPath, append([]string{"drill", "--gateway", "http://" + p.caller, "--admin", "http://" + p.admin,
		"--integration", "payments", "--path", "/v1/charges/ch_1", "--recover", "20s", "--token-env", "E2E_ADMIN_TOKEN"}, args...)...)
	cmd.Env = append(cmd.Environ(), "PORTCULLIS_CALLER_TOKEN="+tok, "E2E_ADMIN_TOKEN=adm_drill_token_123456")
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	return code, string(out)
}

// TestDrillVendorOutage runs `portcullis drill` against the real binary:
// chaos makes the vendor fail, the breaker must open, the stale fallback be
// served, caller latency stay bounded, and the breaker close afterwards.
func TestDrillVendorOutage(t *testing.T) {
	v := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"id":"ch_1","object":"charge","amount":1,"currency":"eur","status":"succeeded"}`)
	}))
	defer v.Close()
	tok, hash, _ := identity.NewToken()
	p := startServe(t, fmt.Sprintf(drillConfig, hash, v.URL, strings.TrimPrefix(v.URL, "http://"), ""), "E2E_ADMIN_TOKEN=adm_drill_token_123456")
	code, out := runDrill(t, p, tok, "--scenario", "vendor-outage", "--require", "fallback")
	t.Logf("portcullis drill --scenario vendor-outage:\n%s", out)
	if code != 0 {
		t.Errorf("drill exit %d, want 0 (every protection engaged)", code)
	}
}

const drillSpec = `openapi: 3.0.3
info: {title: drill vendor, version: "1"}
paths:
  /v1/charges/{id}:
    get:
      parameters: [{name: id, in: path, required: true, schema: {type: string}}]
      responses:
        "200":
          description: a charge
          content:
            application/json:
              schema:
                type: object
                additionalProperties: false
                required: [id, object, amount, currency, status]
                properties:
                  id: {type: string}
                  object: {type: string, enum: [charge]}
                  amount: {type: integer}
                  currency: {type: string}
                  status: {type: string}
`

// TestDrillBadPayload: with validate enforce the schema-breaking body is
// blocked and the drill passes; with validation switched off the same
// drill fails, naming the protection that did not engage.
func TestDrillBadPayload(t *testing.T) {
	v := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"id":"ch_1","object":"charge","amount":1,"currency":"eur","status":"succeeded"}`)
	}))
	defer v.Close()
	for _, tc := range []struct {
		name     string
		validate string
		wantExit int
	}{
		{"enforce-passes", "    validate: {openapi: drill.openapi.yaml, mode: enforce}\n", 0},
		{"validation-off-fails", "", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, hash, _ := identity.NewToken()
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "drill.openapi.yaml"), []byte(drillSpec), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg := strings.Replace(fmt.Sprintf(drillConfig, hash, v.URL, strings.TrimPrefix(v.URL, "http://"), tc.validate), "    fallback: {stale_for: 10m}\n", "", 1)
			p := startServeIn(t, dir, "", "", cfg, "E2E_ADMIN_TOKEN=adm_drill_token_123456")
			code, out := runDrill(t, p, tok, "--scenario", "bad-payload")
			t.Logf("portcullis drill --scenario bad-payload (%s):\n%s", tc.name, out)
			if code != tc.wantExit {
				t.Errorf("drill exit %d, want %d", code, tc.wantExit)
			}
		})
	}
}
