package gateway

import (
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/problem"
	"github.com/portcullis-dev/portcullis/internal/testpki"
)

// tlsVendor is a TLS vendor whose certificate (and health) the test
// switches; a switch drops open connections, as a vendor restart would.
type tlsVendor struct {
	*httptest.Server
	cert    atomic.Pointer[tls.Certificate]
	failing atomic.Bool
}

func newTLSVendor(t *testing.T, ca testpki.CA) *tlsVendor {
	t.Helper()
	v := &tlsVendor{}
	v.cert.Store(&ca.Leaf)
	v.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v.failing.Load() {
			w.WriteHeader(503)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"path":%q}`, r.URL.Path)
	}))
	// GetConfigForClient, not GetCertificate: StartTLS fills Certificates,
	// and a client dialling an IP sends no SNI, so GetCertificate would not
	// be asked.
	v.TLS = &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
		return &tls.Config{Certificates: []tls.Certificate{*v.cert.Load()}}, nil
	}}
	// The refused handshakes are the point of the test, not log noise.
	v.Config.ErrorLog = log.New(io.Discard, "", 0)
	v.StartTLS()
	t.Cleanup(v.Close)
	return v
}

func (v *tlsVendor) serve(ca testpki.CA) {
	v.cert.Store(&ca.Leaf)
	v.CloseClientConnections()
}

// caConfig trusts only the CA in __CA__ for the vendor.
const caConfig = `
version: 1
callers:
  billing: {tokens: ["%[3]s"]}
  support: {tokens: ["%[4]s"]}
integrations:
  payments:
    upstream: %[1]s
    egress: {allow: ["%[2]s"], allow_private: true, ca_file: "__CA__"}
    timeouts: {connect: 1s, request: 2s}
    circuit_breaker: {failure_ratio: 0.5, min_requests: 4, window: 10s, open_for: 1m, half_open_probes: 1}
    routes:
      - {method: GET, path: "/v1/charges/{id}", callers: [billing]}
`

func newCAFixture(t *testing.T, v *tlsVendor, caFile string) *fixture {
	t.Helper()
	return newFixture(t, v.URL, strings.Replace(caConfig, "__CA__", filepath.ToSlash(caFile), 1))
}

func (f *fixture) charge(t *testing.T) (int, string) {
	t.Helper()
	resp := f.do(t, "GET", "/payments/v1/charges/ch_1", f.billing, nil, nil)
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get(problem.HeaderError)
}

// TestReloadPicksUpCARotatedInPlace: the vendor moves to a certificate from
// a new CA and the operator overwrites ca_file (same path) with that CA; a
// reload of the unchanged config must trust the new CA.
func TestReloadPicksUpCARotatedInPlace(t *testing.T) {
	ca1, ca2 := testpki.New(t, "vendor CA 1"), testpki.New(t, "vendor CA 2")
	v := newTLSVendor(t, ca1)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, ca1.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	f := newCAFixture(t, v, caFile)
	if code, perr := f.charge(t); code != 200 {
		t.Fatalf("vendor signed by CA 1, ca_file holds CA 1: %d %s\n%s", code, perr, f.logs)
	}

	v.serve(ca2)
	if code, perr := f.charge(t); code != 502 || perr != "upstream_unreachable" {
		t.Fatalf("vendor on CA 2 before the CA file changed: %d %s, want 502 upstream_unreachable", code, perr)
	}
	if err := os.WriteFile(caFile, ca2.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := f.gw.Reload(f.gw.Config()); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if code, perr := f.charge(t); code != 200 {
		t.Fatalf("after ca_file was rotated in place and reloaded: %d %s, want 200", code, perr)
	}

	// A CA file that is gone is a config error naming the key; the running
	// config keeps serving.
	if err := os.Remove(caFile); err != nil {
		t.Fatal(err)
	}
	err := f.gw.Reload(f.gw.Config())
	if err == nil || !strings.Contains(err.Error(), "integrations.payments: egress:") || !strings.Contains(err.Error(), fmt.Sprintf("ca_file %q", caFile)) {
		t.Fatalf("reload with the CA file removed: %v, want an error naming integrations.payments egress ca_file and the file", err)
	}
	if code, perr := f.charge(t); code != 200 {
		t.Errorf("after a refused reload: %d %s, want the old config still serving", code, perr)
	}
}

// TestReloadKeepsBreakerWhenCAUnchanged: a reload that changes neither
// settings nor the CA file's contents keeps the integration's state, here
// an open breaker; a rotated CA gives a fresh core with a closed breaker.
func TestReloadKeepsBreakerWhenCAUnchanged(t *testing.T) {
	ca1, ca2 := testpki.New(t, "vendor CA 1"), testpki.New(t, "vendor CA 2")
	v := newTLSVendor(t, ca1)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, ca1.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	f := newCAFixture(t, v, caFile)
	v.failing.Store(true)
	open := false
	for i := 0; i < 20 && !open; i++ {
		_, perr := f.charge(t)
		open = perr == "circuit_open"
	}
	if !open {
		t.Fatal("breaker never opened against a failing vendor")
	}
	v.failing.Store(false)

	// Rewriting the file with the same bytes is no change.
	if err := os.WriteFile(caFile, ca1.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := f.gw.Reload(f.gw.Config()); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if code, perr := f.charge(t); perr != "circuit_open" {
		t.Fatalf("after a reload with the same CA contents: %d %s, want the breaker still open (circuit_open)", code, perr)
	}

	v.serve(ca2)
	if err := os.WriteFile(caFile, ca2.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := f.gw.Reload(f.gw.Config()); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if code, perr := f.charge(t); code != 200 {
		t.Fatalf("after the CA was rotated: %d %s, want 200 through a new core", code, perr)
	}
}

const specTmpl = `openapi: 3.0.3
info: {title: vendor, version: "1"}
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
                required: [%s]
                properties: {%s: {type: string}}
`

// TestReloadRereadsSpecChangedInPlace: an OpenAPI file edited in place
// (same path) counts from the next reload. Specs are read on every
// compile, so this guards against caching them by path across reloads.
func TestReloadRereadsSpecChangedInPlace(t *testing.T) {
	v := newVendor(t, nil) // answers {"path": "..."}
	spec := filepath.Join(t.TempDir(), "vendor.openapi.yaml")
	if err := os.WriteFile(spec, fmt.Appendf(nil, specTmpl, "id", "id"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, v.URL, baseConfig+"    validate: {openapi: \""+filepath.ToSlash(spec)+"\", mode: enforce}\n")
	resp := f.do(t, "GET", "/payments/v1/charges/ch_1", f.billing, nil, nil)
	if got := problemOf(t, resp).Code; got != problem.InvalidUpstreamResponse {
		t.Fatalf("body without id under a spec that requires it: %d %s, want invalid_upstream_response", resp.StatusCode, got)
	}
	if err := os.WriteFile(spec, fmt.Appendf(nil, specTmpl, "path", "path"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := f.gw.Reload(f.gw.Config()); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if code, perr := f.charge(t); code != 200 {
		t.Fatalf("after the spec was changed in place and reloaded: %d %s, want 200", code, perr)
	}
}
