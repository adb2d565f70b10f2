package gateway

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/problem"
	"github.com/portcullis-dev/portcullis/internal/testpki"
)

// inspectConfig has an https upstream with a base path, as inspect needs.
const inspectConfig = `
version: 1
callers:
  billing: {tokens: ["%[3]s"]}
  support: {tokens: ["%[4]s"]}
integrations:
  payments:
    upstream: %[1]s/v2
    egress: {allow: ["%[2]s"], allow_private: true, ca_file: "__CA__"}
    request_headers: [Accept]
    timeouts: {connect: 1s, request: 2s}
    routes:
      - {method: POST, path: "/v1/charges", callers: [billing]}
      - {method: GET, path: "/v1/charges/{id}", callers: [billing, support]}
`

// TestServeTunneled: a request from an inspected tunnel runs the
// reverse-mode chain with the tunnel's integration and caller: its path
// is the vendor path under the upstream's base path, its Host must be the
// tunnel's, and Authorization or Proxy-Authorization inside it (the SDK's
// placeholder key, or even a real caller token) neither identifies the
// caller nor reaches the vendor.
func TestServeTunneled(t *testing.T) {
	ca := testpki.New(t, "vendor CA", "localhost")
	var mu sync.Mutex
	var seen []http.Header
	v := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Clone())
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"path":%q,"host":%q}`, r.URL.Path, r.Host)
	}))
	v.TLS = &tls.Config{Certificates: []tls.Certificate{ca.Leaf}}
	v.StartTLS()
	t.Cleanup(v.Close)
	_, port, _ := net.SplitHostPort(v.Listener.Addr().String())
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, ca.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	f := newGatewayFixture(t, "https://localhost:"+port, strings.ReplaceAll(inspectConfig, "__CA__", caFile), Options{})

	tests := []struct {
		name, caller, integration, host, path string
		status                                int
		code                                  problem.Code
		vendorPath                            string
	}{
		{name: "allowed", caller: "billing", path: "/v2/v1/charges/ch_1", status: 200, vendorPath: "/v2/v1/charges/ch_1"},
		{name: "host-without-its-port", caller: "billing", host: "localhost", path: "/v2/v1/charges/ch_1", status: 421, code: problem.BadRequestPath},
		{name: "host-case-and-dot", caller: "billing", host: "LOCALHOST.:" + port, path: "/v2/v1/charges/ch_1", status: 200, vendorPath: "/v2/v1/charges/ch_1"},
		{name: "other-host", caller: "billing", host: "evil.test:" + port, path: "/v2/v1/charges/ch_1", status: 421, code: problem.BadRequestPath},
		{name: "outside-base-path", caller: "billing", path: "/v1/charges/ch_1", status: 403, code: problem.RouteNotAllowed},
		{name: "base-path-prefix-only", caller: "billing", path: "/v2x/v1/charges/ch_1", status: 403, code: problem.RouteNotAllowed},
		{name: "route-policy-for-tunnel-caller", caller: "support", path: "/v2/v1/charges", status: 403, code: problem.RouteNotAllowed},
		{name: "path-hygiene", caller: "billing", path: "/v2/v1/charges/%2e%2e", status: 400, code: problem.BadRequestPath},
		{name: "integration-gone", caller: "billing", integration: "removed", path: "/v2/v1/charges/ch_1", status: 404, code: problem.UnknownIntegration},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mu.Lock()
			before := len(seen)
			mu.Unlock()
			method := http.MethodGet
			if strings.HasSuffix(tt.path, "/charges") {
				method = http.MethodPost
			}
			req := httptest.NewRequest(method, tt.path, nil)
			req.Host = "localhost:" + port
			if tt.host != "" {
				req.Host = tt.host
			}
			// The SDK's placeholder, and billing's own token, inside a
			// tunnel opened by tt.caller.
			req.Header.Set("Authorization", "Bearer "+f.billing)
			req.Header.Set("Proxy-Authorization", "Basic c2RrOmR1bW15")
			in := tt.integration
			if in == "" {
				in = "payments"
			}
			rec := httptest.NewRecorder()
			f.gw.ServeTunneled(rec, req, Tunnel{Integration: in, Caller: tt.caller, Auth: "token", Host: "localhost", Port: port})
			resp := rec.Result()
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, rec.Body.String())
			}
			if tt.code != "" {
				if got := problemOf(t, resp).Code; got != tt.code {
					t.Fatalf("code %s, want %s", got, tt.code)
				}
				return
			}
			var body struct{ Path, Host string }
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatal(err)
			}
			if body.Path != tt.vendorPath || body.Host != "localhost:"+port {
				t.Errorf("vendor saw %s %s, want %s", body.Host, body.Path, tt.vendorPath)
			}
			mu.Lock()
			got := seen[before:]
			mu.Unlock()
			for _, h := range got {
				if h.Get("Authorization") != "" || h.Get("Proxy-Authorization") != "" {
					t.Errorf("vendor saw the caller's placeholder: %v", h)
				}
			}
		})
	}
	if logs := f.logs.String(); !strings.Contains(logs, `"via":"inspect"`) || strings.Contains(logs, f.billing) {
		t.Errorf("log lines lack via=inspect or hold the token:\n%s", logs)
	}
}
