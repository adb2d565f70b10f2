package mint

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/portcullis-dev/portcullis/internal/clock"
	"github.com/portcullis-dev/portcullis/internal/conf"
	"github.com/portcullis-dev/portcullis/internal/secret"
)

func TestNewCA(t *testing.T) {
	c, k, err := NewCA(CAOptions{Now: t0, Name: "Acme inspect", Validity: 30 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(c)
	ca, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	got := []any{ca.Subject.CommonName, ca.IsCA, ca.MaxPathLen, ca.MaxPathLenZero, ca.KeyUsage&x509.KeyUsageCertSign != 0,
		ca.NotBefore, ca.NotAfter, ca.PublicKeyAlgorithm}
	want := []any{"Acme inspect", true, 0, true, true, t0.Add(-time.Hour), t0.Add(30 * 24 * time.Hour), x509.ECDSA}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("CA (-want +got):\n%s", d)
	}
	if kb, _ := pem.Decode(k); kb == nil || kb.Type != "PRIVATE KEY" {
		t.Errorf("key is not a PKCS#8 PEM block")
	}
	if _, err := New(c, k, Options{Clock: clock.NewFake(t0)}); err != nil {
		t.Errorf("New refuses what NewCA made: %v", err)
	}
	// The path length 0 CA cannot sign a sub-CA, so a leaked leaf key
	// cannot extend it; leaves still verify (TestLeafVerifies...).
	if _, _, err := NewCA(CAOptions{Validity: -time.Hour}); err == nil {
		t.Error("negative validity accepted")
	}
}

func TestWriteCA(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key")
	c, k := newCA(t)
	if err := WriteCA(cert, key, c, k, false); err != nil {
		t.Fatal(err)
	}
	mode := func(p string) os.FileMode {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return st.Mode().Perm()
	}
	if got := []os.FileMode{mode(cert), mode(key)}; !cmp.Equal(got, []os.FileMode{0o644, 0o600}) {
		t.Errorf("modes %v, want [-rw-r--r-- -rw-------]", got)
	}
	c2, k2 := newCA(t)
	err := WriteCA(cert, key, c2, k2, false)
	if !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), cert) {
		t.Errorf("overwrite without force: %v", err)
	}
	// Only the key exists: still nothing is written.
	other := filepath.Join(dir, "other.pem")
	if err := WriteCA(other, key, c2, k2, false); !errors.Is(err, ErrExists) {
		t.Errorf("existing key: %v", err)
	}
	if _, err := os.Stat(other); !errors.Is(err, os.ErrNotExist) {
		t.Error("the certificate was written although the key path exists")
	}
	if b, _ := os.ReadFile(key); string(b) != string(k) {
		t.Error("the key was overwritten without force")
	}
	// With force, even over a key file made world-readable, the new key
	// ends up 0600.
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteCA(cert, key, c2, k2, true); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(key); string(b) != string(k2) || mode(key) != 0o600 {
		t.Errorf("forced overwrite: mode %v, new key %v", mode(key), string(b) == string(k2))
	}
	if err := WriteCA(cert, cert, c, k, true); err == nil {
		t.Error("same path for cert and key accepted")
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".*tmp*"))
	if len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestCASpec(t *testing.T) {
	tests := []struct {
		name string
		spec *CASpec
		want []string
	}{
		{"none", nil, nil},
		{"ok", &CASpec{Cert: "ca.pem", Key: conf.MustRef("env:CA_KEY")}, nil},
		{"empty", &CASpec{}, []string{"error cert", "error key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, conf.Check(tt.spec)); d != "" {
				t.Errorf("problems (-want +got):\n%s", d)
			}
		})
	}

	dir := t.TempDir()
	s := &CASpec{Cert: filepath.Join(dir, "ca.pem"), Key: conf.MustRef("env:CA_KEY")}
	if _, err := s.CheckCert(t0); !errors.Is(err, ErrBadCA) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	c, k := newCA(t)
	if err := os.WriteFile(s.Cert, c, 0o644); err != nil {
		t.Fatal(err)
	}
	if ca, err := s.CheckCert(t0); err != nil || ca.Subject.CommonName != DefaultCAName {
		t.Errorf("CheckCert: %v", err)
	}
	if _, err := s.CheckCert(t0.Add(2 * DefaultCAValidity)); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("CheckCert after expiry: %v", err)
	}
	a, err := s.Load(secret.New(string(k)), Options{Clock: clock.NewFake(t0)})
	if err != nil {
		t.Fatal(err)
	}
	if string(a.CertPEM()) != string(c) {
		t.Error("Load: CertPEM differs from the file")
	}
	_, k2 := newCA(t)
	if _, err := s.Load(secret.New(string(k2)), Options{Clock: clock.NewFake(t0)}); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("Load with another key: %v", err)
	}
}

func TestInstructions(t *testing.T) {
	out := Instructions("/etc/portcullis/ca.pem", "/etc/portcullis/ca.key")
	for _, want := range []string{"cert: /etc/portcullis/ca.pem", "key: file:/etc/portcullis/ca.key", "SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS",
		"REQUESTS_CA_BUNDLE", "keytool -importcert", "-Djavax.net.ssl.trustStore", "--cacert", "CURL_CA_BUNDLE", "inspect: true"} {
		if !strings.Contains(out, want) {
			t.Errorf("instructions lack %q", want)
		}
	}
}

func TestNewCAPermit(t *testing.T) {
	tests := []struct {
		name    string
		permit  []string
		ok, bad []string
	}{
		{"dns-only", []string{"vendor.test", "*.other.test"}, []string{"vendor.test", "api.vendor.test", "a.b.other.test"}, []string{"evil.test", "vendor.test.evil", "127.0.0.1", "::1"}},
		{"dns-and-ip", []string{"vendor.test", "127.0.0.1", "2001:db8::/32"}, []string{"api.vendor.test", "127.0.0.1", "2001:db8::7"}, []string{"127.0.0.2", "::1", "evil.test"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, k, err := NewCA(CAOptions{Now: t0, Permit: tt.permit})
			if err != nil {
				t.Fatal(err)
			}
			a, err := New(c, k, Options{Clock: clock.NewFake(t0), Allowed: allowAll})
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range tt.ok {
				leaf, err := a.Leaf(h)
				if err != nil {
					t.Errorf("%s: %v", h, err)
					continue
				}
				if err := verify(t, a, leaf, h, t0); err != nil {
					t.Errorf("%s: verify: %v", h, err)
				}
			}
			for _, h := range tt.bad {
				if _, err := a.Leaf(h); !errors.Is(err, ErrNotAllowed) || !strings.Contains(err.Error(), "name constraints") {
					t.Errorf("%s: %v, want a refusal naming the constraints", h, err)
				}
			}
		})
	}
	for _, bad := range []string{"*", ".vendor.test", "a b", "vendor.test:443"} {
		if _, _, err := NewCA(CAOptions{Permit: []string{bad}}); err == nil {
			t.Errorf("permit %q accepted", bad)
		}
	}
}
