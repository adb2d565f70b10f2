package main

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
	"syscall"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/identity"
	"github.com/portcullis-dev/portcullis/internal/testpki"
)

const caE2EConfig = `version: 1
server: {listen: "{{CALLER}}", admin_listen: "{{ADMIN}}", shutdown_grace: 1s}
state: {data_dir: "{{DATA}}"}
callers:
  billing: {tokens: ["%[1]s"]}
integrations:
  payments:
    upstream: %[2]s
    egress: {allow: ["%[3]s"], allow_private: true, ca_file: %[4]q}
    timeouts: {connect: 1s, request: 5s}
    routes:
      - {method: GET, path: "/v1/charges/{id}", callers: [billing]}
`

// TestReloadCARotatedInPlace: the vendor moves to a certificate from a new
// CA, the operator overwrites ca_file with the new CA (same path, config
// unchanged) and sends SIGHUP; calls go through again.
func TestReloadCARotatedInPlace(t *testing.T) {
	pki1 := testpki.New(t, "vendor CA 1")
	ca1, cert1 := pki1.PEM, pki1.Leaf
	pki2 := testpki.New(t, "vendor CA 2")
	ca2, cert2 := pki2.PEM, pki2.Leaf
	var cur atomic.Pointer[tls.Certificate]
	cur.Store(&cert1)
	v := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"ok":true}`)
	}))
	// Asked on every handshake (a client dialling an IP sends no SNI, so
	// GetCertificate would not be).
	v.TLS = &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
		return &tls.Config{Certificates: []tls.Certificate{*cur.Load()}}, nil
	}}
	v.Config.ErrorLog = log.New(io.Discard, "", 0)
	v.StartTLS()
	t.Cleanup(v.Close)

	caFile := filepath.Join(t.TempDir(), "vendor-ca.pem")
	if err := os.WriteFile(caFile, ca1, 0o600); err != nil {
		t.Fatal(err)
	}
	tok, hash, _ := identity.NewToken()
	p := startServe(t, fmt.Sprintf(caE2EConfig, hash, v.URL, strings.TrimPrefix(v.URL, "https://"), caFile))
	if code, body, _ := p.get(t, "GET", "/payments/v1/charges/ch_1", tok); code != 200 {
		t.Fatalf("vendor on CA 1, ca_file holds CA 1: %d %s", code, body)
	}

	cur.Store(&cert2)
	v.CloseClientConnections()
	if code, _, h := p.get(t, "GET", "/payments/v1/charges/ch_1", tok); code != 502 || h.Get("X-Portcullis-Error") != "upstream_unreachable" {
		t.Fatalf("vendor on CA 2 before the rotation: %d %s, want 502 upstream_unreachable", code, h.Get("X-Portcullis-Error"))
	}
	if err := os.WriteFile(caFile, ca2, 0o600); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, func() bool {
		code, _, _ := p.get(t, "GET", "/payments/v1/charges/ch_1", tok)
		return code == 200
	}, "calls through the rotated CA after SIGHUP")
}
