package mint

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/clock"
)

// FuzzNew feeds arbitrary cert and key files to New: it must never panic,
// every error must wrap ErrBadCA, and no error may hold a PEM block or the
// key's bytes.
func FuzzNew(f *testing.F) {
	c, k, err := NewCA(CAOptions{Now: t0})
	if err != nil {
		f.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sec1, _ := x509.MarshalECPrivateKey(key)
	seeds := [][2][]byte{
		{c, k},
		{c, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})},
		{c, []byte("hello")},
		{[]byte("hello"), k},
		{append(k, c...), k},
		{c, c},
		{c, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("nope")})},
		{c, pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}})},
		{c, []byte("-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n")},
		{pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{0x30, 0x03, 0x02, 0x01, 0x01}}), k},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, certPEM, keyPEM []byte) {
		a, err := New(certPEM, keyPEM, Options{Clock: clock.NewFake(t0), Allowed: allowAll})
		if err != nil {
			if !errors.Is(err, ErrBadCA) {
				t.Fatalf("error %q does not wrap ErrBadCA", err)
			}
			msg := fmt.Sprintf("%v %+v %#v", err, err, err)
			if strings.Contains(msg, "-----BEGIN") {
				t.Fatalf("error holds a PEM block: %s", msg)
			}
			for rest := keyPEM; ; {
				var b *pem.Block
				if b, rest = pem.Decode(rest); b == nil {
					break
				}
				if len(b.Bytes) >= 8 && strings.Contains(msg, string(b.Bytes)) {
					t.Fatalf("error holds the key block's bytes: %s", msg)
				}
			}
			return
		}
		if _, err := a.Leaf("api.vendor.test"); err != nil {
			t.Fatalf("New accepted the CA but Leaf fails: %v", err)
		}
	})
}

// FuzzLeafHost: for any host text, Leaf either refuses it or returns a
// leaf for exactly one name (the canonical host) that verifies for it.
func FuzzLeafHost(f *testing.F) {
	for _, h := range []string{"api.vendor.test", "API.Vendor.Test.", "127.0.0.1", "::1", "[2001:db8::7]", "", "*.vendor.test",
		"a..b", "x:443", "fe80::1%eth0", "xn--bcher-kva.test", "_dmarc.vendor.test", "-a.test", "1.2.3.4.5", "0x7f.1"} {
		f.Add(h)
	}
	c, k, err := NewCA(CAOptions{Now: t0})
	if err != nil {
		f.Fatal(err)
	}
	a, err := New(c, k, Options{Clock: clock.NewFake(t0), Allowed: allowAll, CacheSize: 64})
	if err != nil {
		f.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(c)
	f.Fuzz(func(t *testing.T, host string) {
		leaf, err := a.Leaf(host)
		if err != nil {
			if !errors.Is(err, ErrBadHost) {
				t.Fatalf("Leaf(%q): %v, want ErrBadHost or a leaf", host, err)
			}
			return
		}
		l := leaf.Leaf
		if n := len(l.DNSNames) + len(l.IPAddresses); n != 1 || len(l.URIs)+len(l.EmailAddresses) > 0 {
			t.Fatalf("Leaf(%q): %d SANs %v %v", host, n, l.DNSNames, l.IPAddresses)
		}
		name := ""
		if len(l.DNSNames) == 1 {
			name = l.DNSNames[0]
			if strings.ContainsAny(name, "*: \t\r\n") {
				t.Fatalf("Leaf(%q): SAN %q", host, name)
			}
		} else {
			name = l.IPAddresses[0].String()
		}
		if _, err := l.Verify(x509.VerifyOptions{DNSName: name, Roots: pool, CurrentTime: t0}); err != nil {
			t.Fatalf("Leaf(%q) does not verify for %q: %v", host, name, err)
		}
	})
}
