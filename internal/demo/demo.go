package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/internal/egress"
	"github.com/portcullis-dev/portcullis/internal/identity"
	"github.com/portcullis-dev/portcullis/internal/server"
)

// Options for Run.
type Options struct {
	Stdout, Stderr io.Writer
	// Exit ends the demo after the tour instead of serving until ctx ends.
	Exit bool
	// Listen and AdminListen for the gateway; empty picks free ports.
	Listen, AdminListen string
	// Dir holds the generated config; empty makes a temporary one.
	Dir string
}

const (
	envVendorKey  = "PORTCULLIS_DEMO_PAYMENTS_KEY"
	envAdminToken = "PORTCULLIS_DEMO_ADMIN_TOKEN"
)

// Run starts the vendor and the gateway and runs the tour. It returns an
// error if any step of the tour did not behave as described.
func Run(ctx context.Context, o Options) error {
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	if o.AdminListen == "" {
		o.AdminListen = "127.0.0.1:0"
	}
	if o.Dir == "" {
		d, err := os.MkdirTemp("", "portcullis-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		o.Dir = d
	}
	vendorKey := "sk_demo_" + randomHex(16)
	adminToken := "adm_" + randomHex(16)
	os.Setenv(envVendorKey, vendorKey)
	os.Setenv(envAdminToken, adminToken)

	vendor := &Vendor{Key: vendorKey}
	vln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	vsrv := &http.Server{Handler: vendor, ReadHeaderTimeout: 5 * time.Second}
	go vsrv.Serve(vln)
	defer vsrv.Close()
	vport := vln.Addr().(*net.TCPAddr).Port

	billingTok, billingHash, _ := identity.NewToken()
	supportTok, supportHash, _ := identity.NewToken()
	if err := os.WriteFile(filepath.Join(o.Dir, "acmepay.openapi.yaml"), VendorSpec, 0o600); err != nil {
		return err
	}
	cfgPath := filepath.Join(o.Dir, "portcullis.yaml")
	cfgText := fmt.Sprintf(configTemplate, o.Listen, o.AdminListen, envAdminToken, filepath.Join(o.Dir, "data"),
		billingHash, supportHash, vport, envVendorKey)
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		return err
	}

	sctx, stop := context.WithCancel(ctx)
	defer stop()
	ready := make(chan server.Addrs, 1)
	done := make(chan error, 1)
	logFile, err := os.Create(filepath.Join(o.Dir, "gateway.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	go func() {
		done <- server.Run(sctx, server.Options{ConfigPath: cfgPath, LogOutput: logFile, Ready: func(a server.Addrs) { ready <- a }})
	}()
	var addrs server.Addrs
	select {
	case addrs = <-ready:
	case err := <-done:
		return fmt.Errorf("gateway did not start: %w", err)
	case <-time.After(20 * time.Second):
		return fmt.Errorf("gateway did not start within 20s")
	}

	gw := "http://" + addrs.Caller
	admin := "http://" + addrs.Admin
	out := o.Stdout
	fmt.Fprintf(out, `Portcullis demo — everything runs on loopback, nothing leaves this machine.

  fake vendor "Acme Pay"   http://127.0.0.1:%d   (accepts only its secret API key)
  gateway (callers)        %s
  admin (health, metrics)  %s
  config                   %s
  gateway log (JSON)       %s

The gateway holds the vendor key (from env:%s); callers never see it.
Caller tokens (only their sha256 hashes are in the config):
  billing  %s
  support  %s
  admin    %s

`, vport, gw, admin, cfgPath, logFile.Name(), envVendorKey, billingTok, supportTok, adminToken)

	t := tour{out: out, client: &http.Client{Timeout: 10 * time.Second, Transport: egress.CLITransport()}}
	t.step("1. billing creates a charge: allowed, and the gateway injects the vendor key",
		"POST", gw+"/payments/v1/charges", billingTok, `{"amount":1999,"currency":"eur"}`, 201, "")
	t.step("2. support reads a charge: allowed on GET /v1/charges/{id}",
		"GET", gw+"/payments/v1/charges/ch_000001", supportTok, "", 200, "")
	t.step("3. billing tries a payout: no route allows it (deny by default)",
		"POST", gw+"/payments/v1/payouts", billingTok, `{"amount":100000}`, 403, "route_not_allowed")
	t.step("4. a call without a caller token",
		"GET", gw+"/payments/v1/charges/ch_000001", "", "", 401, "unauthenticated")
	t.step("5. path trick: an encoded ../ to reach another vendor route",
		"GET", gw+"/payments/v1/charges/..%2F..%2Fv1%2Fpayouts", supportTok, "", 400, "bad_request_path")
	t.step("6. SSRF: an integration whose host name resolves to a loopback address (as DNS rebinding would make it)",
		"GET", gw+"/internal/latest/meta-data", billingTok, "", 502, "egress_denied")
	t.step("7. the vendor answers a charge whose amount is a string: the response fails its OpenAPI schema",
		"GET", gw+"/payments/v1/charges/ch_broken", supportTok, "", 502, "invalid_upstream_response")
	t.step("8. Prometheus metrics on the admin listener (admin token required)",
		"GET", admin+"/metrics", adminToken, "", 200, "")
	if hits := vendor.Hits.Load(); hits != 3 {
		t.failf("the vendor was called %d times; only steps 1, 2 and 7 should reach it", hits)
	} else {
		fmt.Fprintln(out, "The vendor saw exactly 3 calls: every other refusal above was decided inside the gateway.")
	}
	fmt.Fprintf(out, "\nEach call is one JSON line in the gateway log: tail -n 8 %s\n", logFile.Name())
	if t.failed > 0 {
		return fmt.Errorf("%d tour step(s) did not behave as described", t.failed)
	}
	if o.Exit {
		fmt.Fprintln(out, "\nDemo passed.")
		return nil
	}
	fmt.Fprintln(out, "\nThe gateway keeps running: try the curl commands above. Ctrl-C stops it.")
	select {
	case <-ctx.Done():
	case err := <-done:
		return err
	}
	stop()
	return <-done
}

type tour struct {
	out    io.Writer
	client *http.Client
	failed int
}

func (t *tour) failf(format string, args ...any) {
	t.failed++
	fmt.Fprintf(t.out, "   !! "+format+"\n", args...)
}

func (t *tour) step(title, method, url, token, body string, wantStatus int, wantCode string) {
	fmt.Fprintf(t.out, "%s\n", title)
	curl := "   $ curl -s"
	if method != "GET" {
		curl += " -X " + method
	}
	if token != "" {
		curl += ` -H "Authorization: Bearer ` + token + `"`
	}
	if body != "" {
		curl += ` -H "Content-Type: application/json" -d '` + body + `'`
	}
	fmt.Fprintf(t.out, "%s '%s'\n", curl, url)
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, url, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := t.client.Do(req)
	if err != nil {
		t.failf("request failed: %v", err)
		return
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	code := resp.Header.Get("X-Portcullis-Error")
	fmt.Fprintf(t.out, "   → %s", resp.Status)
	if code != "" {
		fmt.Fprintf(t.out, "  X-Portcullis-Error: %s", code)
	}
	fmt.Fprintln(t.out)
	switch {
	case strings.HasSuffix(url, "/metrics"):
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "portcullis_requests_total{") {
				fmt.Fprintf(t.out, "     %s\n", l)
			}
		}
	case len(b) > 0:
		var v any
		if json.Unmarshal(b, &v) == nil {
			pretty, _ := json.Marshal(v)
			fmt.Fprintf(t.out, "     %s\n", pretty)
		}
	}
	if resp.StatusCode != wantStatus || code != wantCode {
		t.failf("expected %d %s", wantStatus, wantCode)
	}
	fmt.Fprintln(t.out)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

const configTemplate = `# Generated by portcullis demo. See examples/portcullis.yaml for every option.
version: 1
server:
  listen: %[1]s
  admin_listen: %[2]s
  admin_token: env:%[3]s
state:
  data_dir: %[4]s
callers:
  billing: {tokens: ["%[5]s"], description: "the billing service"}
  support: {tokens: ["%[6]s"], description: "the support back office"}
integrations:
  payments:
    upstream: http://127.0.0.1:%[7]d
    # The demo vendor runs on loopback, which the egress guard denies by
    # default; a real vendor would be https://api.vendor.example:443.
    egress: {allow: ["127.0.0.1:%[7]d"], allow_private: true}
    credential: {type: bearer, secret: env:%[8]s, max_age: 90d}
    request_headers: [Content-Type, Accept, Idempotency-Key]
    timeouts: {connect: 1s, request: 5s}
    # Responses are checked against the vendor's OpenAPI spec; enforce
    # fails closed with invalid_upstream_response.
    validate: {openapi: acmepay.openapi.yaml, mode: enforce}
    routes:
      - {method: POST, path: /v1/charges, callers: [billing]}
      - {method: GET, path: "/v1/charges/{id}", callers: [billing, support]}
  internal:
    # An attacker who controls DNS for an allow-listed name can point it at
    # 127.0.0.1 or 169.254.169.254. The dial-time check refuses the
    # resolved address. "localhost" plays that name here.
    upstream: http://localhost:%[7]d
    egress: {allow: ["localhost:%[7]d"]}
    timeouts: {connect: 1s, request: 5s}
    routes:
      - {method: GET, path: "/latest/meta-data", callers: [billing]}
`
