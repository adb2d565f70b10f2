package mint

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/clock"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func newCA(t testing.TB) (certPEM, keyPEM []byte) {
	t.Helper()
	c, k, err := NewCA(CAOptions{Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	return c, k
}

func allowAll(string) bool { return true }

func TestLeafVerifies(t *testing.T) {
	c, k := newCA(t)
	clk := clock.NewFake(t0)
	a, err := New(c, k, Options{Clock: clk, Allowed: allowAll})
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(a.CertPEM()) {
		t.Fatal("CertPEM does not parse")
	}
	for _, host := range []string{"api.vendor.test", "127.0.0.1", "::1"} {
		leaf, err := a.Leaf(host)
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		inter := x509.NewCertPool()
		for _, der := range leaf.Certificate[1:] {
			ci, _ := x509.ParseCertificate(der)
			inter.AddCert(ci)
		}
		if _, err := leaf.Leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: pool, Intermediates: inter, CurrentTime: t0}); err != nil {
			t.Errorf("%s: %v", host, err)
		}
	}
	if _, err := a.GetCertificate(&tls.ClientHelloInfo{}); !errors.Is(err, ErrNoServerName) {
		t.Errorf("empty SNI: %v", err)
	}
}
