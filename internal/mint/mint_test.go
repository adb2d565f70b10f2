package mint

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

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

func newAuthority(t testing.TB, o Options) *Authority {
	t.Helper()
	c, k := newCA(t)
	if o.Clock == nil {
		o.Clock = clock.NewFake(t0)
	}
	a, err := New(c, k, o)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// verify checks leaf's chain against a pool holding only a's CA, for host.
func verify(t *testing.T, a *Authority, leaf *tls.Certificate, host string, at time.Time) error {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(a.CertPEM()) {
		t.Fatal("CertPEM does not parse")
	}
	inter := x509.NewCertPool()
	for _, der := range leaf.Certificate[1:] {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		inter.AddCert(c)
	}
	_, err := leaf.Leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: pool, Intermediates: inter, CurrentTime: at})
	return err
}

func TestLeafVerifiesForExactlyItsHost(t *testing.T) {
	a := newAuthority(t, Options{Allowed: allowAll})
	tests := []struct {
		name, host string
		dns        []string
		ips        []string
		other      string // a host the leaf must not verify for
	}{
		{"dns", "api.vendor.test", []string{"api.vendor.test"}, nil, "other.vendor.test"},
		{"dns-upper-trailing-dot", "API.Vendor.Test.", []string{"api.vendor.test"}, nil, "vendor.test"},
		{"ipv4", "127.0.0.1", nil, []string{"127.0.0.1"}, "127.0.0.2"},
		{"ipv6", "::1", nil, []string{"::1"}, "::2"},
		{"ipv6-brackets", "[2001:db8::7]", nil, []string{"2001:db8::7"}, "2001:db8::8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leaf, err := a.Leaf(tt.host)
			if err != nil {
				t.Fatal(err)
			}
			var ips []string
			for _, ip := range leaf.Leaf.IPAddresses {
				ips = append(ips, ip.String())
			}
			if d := cmp.Diff([]any{tt.dns, tt.ips}, []any{leaf.Leaf.DNSNames, ips}); d != "" {
				t.Errorf("SANs (-want +got):\n%s", d)
			}
			name := strings.Trim(strings.ToLower(strings.TrimSuffix(tt.host, ".")), "[]")
			if err := verify(t, a, leaf, name, t0); err != nil {
				t.Errorf("verify %s: %v", name, err)
			}
			if err := verify(t, a, leaf, tt.other, t0); err == nil {
				t.Errorf("leaf for %s verifies for %s too", tt.host, tt.other)
			}
			l := leaf.Leaf
			if !cmp.Equal(l.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) || l.IsCA {
				t.Errorf("ExtKeyUsage %v IsCA %v", l.ExtKeyUsage, l.IsCA)
			}
			if !l.NotBefore.Equal(t0.Add(-time.Minute)) || !l.NotAfter.Equal(t0.Add(DefaultLeafTTL)) {
				t.Errorf("validity %s .. %s", l.NotBefore, l.NotAfter)
			}
			if k, ok := leaf.PrivateKey.(*ecdsa.PrivateKey); !ok || k.Curve != elliptic.P256() {
				t.Errorf("leaf key %T, want P-256", leaf.PrivateKey)
			}
			if l.SerialNumber.Sign() <= 0 || l.SerialNumber.BitLen() > 128 {
				t.Errorf("serial %v", l.SerialNumber)
			}
			if len(leaf.Certificate) != 2 {
				t.Errorf("chain of %d certificates, want leaf and CA", len(leaf.Certificate))
			}
		})
	}
}

func TestLeafNotAfterCappedByCA(t *testing.T) {
	c, k, err := NewCA(CAOptions{Now: t0, Validity: 2 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(c, k, Options{Clock: clock.NewFake(t0), Allowed: allowAll})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := a.Leaf("api.vendor.test")
	if err != nil {
		t.Fatal(err)
	}
	if !leaf.Leaf.NotAfter.Equal(a.NotAfter()) {
		t.Errorf("leaf NotAfter %s, want the CA's %s", leaf.Leaf.NotAfter, a.NotAfter())
	}
}

func TestCacheAndRemint(t *testing.T) {
	clk := clock.NewFake(t0)
	a := newAuthority(t, Options{Clock: clk, Allowed: allowAll, LeafTTL: 4 * time.Hour})
	first, err := a.Leaf("api.vendor.test")
	if err != nil {
		t.Fatal(err)
	}
	again, _ := a.Leaf("API.vendor.test.")
	if again != first {
		t.Error("second Leaf for the same host minted again")
	}
	clk.Advance(3*time.Hour - time.Second)
	if c, _ := a.Leaf("api.vendor.test"); c != first {
		t.Error("re-minted before three quarters of the validity")
	}
	clk.Advance(time.Second)
	renewed, err := a.Leaf("api.vendor.test")
	if err != nil {
		t.Fatal(err)
	}
	if renewed == first {
		t.Fatal("not re-minted after three quarters of the validity")
	}
	if err := verify(t, a, renewed, "api.vendor.test", t0.Add(4*time.Hour+time.Minute)); err != nil {
		t.Errorf("renewed leaf at the old one's expiry: %v", err)
	}
}

func TestCacheBounded(t *testing.T) {
	a := newAuthority(t, Options{Allowed: allowAll, CacheSize: 2})
	h1, _ := a.Leaf("h1.test")
	_, _ = a.Leaf("h2.test")
	if c, _ := a.Leaf("h1.test"); c != h1 { // h1 now most recent
		t.Fatal("h1 evicted too early")
	}
	_, _ = a.Leaf("h3.test") // evicts h2
	if n := a.st.lru.Len(); n != 2 {
		t.Errorf("cache holds %d, want 2", n)
	}
	if c, _ := a.Leaf("h1.test"); c != h1 {
		t.Error("h1 (recently used) evicted instead of h2")
	}
	if _, ok := a.st.byKey["h2.test"]; ok {
		t.Error("h2 (least recently used) still cached")
	}
}

func TestConcurrentFirstLeafMintsOnce(t *testing.T) {
	a := newAuthority(t, Options{Allowed: allowAll})
	const n = 32
	got := make([]*tls.Certificate, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			c, err := a.Leaf("api.vendor.test")
			if err != nil {
				t.Error(err)
			}
			got[i] = c
		}()
	}
	close(start)
	wg.Wait()
	// A second mint would have handed out a second certificate.
	for i := range got {
		if got[i] != got[0] {
			t.Fatalf("call %d got a different certificate: minted more than once", i)
		}
	}
}

func TestRefusals(t *testing.T) {
	a := newAuthority(t, Options{Allowed: func(h string) bool { return h == "api.vendor.test" }})
	tests := []struct {
		name, host string
		want       error
	}{
		{"not-allowed", "evil.test", ErrNotAllowed},
		{"not-allowed-ip", "10.0.0.1", ErrNotAllowed},
		{"empty", "", ErrBadHost},
		{"wildcard", "*.vendor.test", ErrBadHost},
		{"space", "api vendor.test", ErrBadHost},
		{"empty-label", "api..vendor.test", ErrBadHost},
		{"port", "api.vendor.test:443", ErrBadHost},
		{"long-label", strings.Repeat("a", 64) + ".test", ErrBadHost},
		{"newline", "api.vendor.test\nx", ErrBadHost},
		{"ipv6-zone", "fe80::1%eth0", ErrBadHost},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := a.Leaf(tt.host)
			if !errors.Is(err, tt.want) || c != nil {
				t.Fatalf("Leaf(%q) = %v, %v; want %v", tt.host, c, err, tt.want)
			}
			if tt.host != "" && !strings.Contains(err.Error(), fmt.Sprintf("%q", strings.ToLower(tt.host))) {
				t.Errorf("error %q does not name the host", err)
			}
		})
	}
	if _, err := newAuthority(t, Options{}).Leaf("api.vendor.test"); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("nil Allowed: %v, want ErrNotAllowed", err)
	}
	if _, err := a.GetCertificate(&tls.ClientHelloInfo{}); !errors.Is(err, ErrNoServerName) {
		t.Errorf("no SNI: %v", err)
	}
	if c, err := a.GetCertificate(&tls.ClientHelloInfo{ServerName: "api.vendor.test"}); err != nil || c.Leaf.DNSNames[0] != "api.vendor.test" {
		t.Errorf("SNI api.vendor.test: %v", err)
	}
	if _, err := a.GetCertificate(&tls.ClientHelloInfo{ServerName: "evil.test"}); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("SNI evil.test: %v", err)
	}
}

func TestExpiredCAStopsMinting(t *testing.T) {
	c, k, err := NewCA(CAOptions{Now: t0, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(t0)
	a, err := New(c, k, Options{Clock: clk, Allowed: allowAll})
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Hour)
	if _, err := a.Leaf("api.vendor.test"); !errors.Is(err, ErrExpired) {
		t.Errorf("after the CA expired: %v, want ErrExpired", err)
	}
}

// TestTLSHandshake serves a minted leaf through crypto/tls to a client
// that trusts only the CA, as an SDK behind the gateway would.
func TestTLSHandshake(t *testing.T) {
	// The client checks validity on the process clock: a CA made now.
	c, k, err := NewCA(CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(c, k, Options{Allowed: allowAll})
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(a.CertPEM())
	srv, cli := net.Pipe()
	defer srv.Close()
	defer cli.Close()
	errc := make(chan error, 1)
	go func() {
		s := tls.Server(srv, &tls.Config{GetCertificate: a.GetCertificate})
		errc <- s.Handshake()
	}()
	cl := tls.Client(cli, &tls.Config{ServerName: "api.vendor.test", RootCAs: pool})
	if err := cl.Handshake(); err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("server handshake: %v", err)
	}
}

// keyPEMs returns key in the PEM encodings New accepts.
func keyPEMs(t *testing.T, key crypto.Signer) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	p8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	out["pkcs8"] = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8})
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		// OpenSSL's `ecparam -genkey` writes an EC PARAMETERS block first.
		out["sec1"] = append([]byte("-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"),
			pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})...)
	case *rsa.PrivateKey:
		out["pkcs1"] = pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	}
	return out
}

type caTmpl func(*x509.Certificate)

// makeCA self-signs a certificate for key after tweaking its template.
func makeCA(t *testing.T, key crypto.Signer, tweak caTmpl) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "Test CA"},
		NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	if tweak != nil {
		tweak(tmpl)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestNewKeyTypes(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	for name, key := range map[string]crypto.Signer{"p256": p256, "p384": p384, "rsa": rsaKey, "ed25519": edKey} {
		cert := makeCA(t, key, nil)
		for enc, keyPEM := range keyPEMs(t, key) {
			t.Run(name+"-"+enc, func(t *testing.T) {
				a, err := New(cert, keyPEM, Options{Clock: clock.NewFake(t0), Allowed: allowAll})
				if err != nil {
					t.Fatal(err)
				}
				leaf, err := a.Leaf("api.vendor.test")
				if err != nil {
					t.Fatal(err)
				}
				if err := verify(t, a, leaf, "api.vendor.test", t0); err != nil {
					t.Error(err)
				}
			})
		}
	}
}

func TestNewRefusesBadCA(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	good := makeCA(t, key, nil)
	keyPEM := keyPEMs(t, key)["pkcs8"]
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	tests := []struct {
		name      string
		cert, key []byte
		want      string
	}{
		{"not-a-ca", makeCA(t, key, func(c *x509.Certificate) { c.IsCA = false }), keyPEM, "is not a CA"},
		{"no-cert-sign", makeCA(t, key, func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageDigitalSignature }), keyPEM, "may not sign certificates"},
		{"expired", makeCA(t, key, func(c *x509.Certificate) { c.NotAfter = t0.Add(-time.Minute) }), keyPEM, "expired at 2026-01-01T11:59:00Z"},
		{"not-yet-valid", makeCA(t, key, func(c *x509.Certificate) { c.NotBefore = t0.Add(time.Hour) }), keyPEM, "not valid before"},
		{"mismatched-key", good, keyPEMs(t, other)["pkcs8"], "does not match"},
		{"garbage-cert", []byte("hello"), keyPEM, "no PEM CERTIFICATE block"},
		{"garbage-cert-der", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("nope")}), keyPEM, "certificate 1:"},
		{"key-in-cert-file", append(keyPEM, good...), keyPEM, "the cert file holds a private key"},
		{"garbage-key", good, []byte("hello"), "the key is not PEM"},
		{"cert-as-key", good, good, "holds a certificate, not a private key"},
		{"garbage-key-der", good, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("nope")}), "key's PRIVATE KEY block is not a PKCS#8, SEC1 or PKCS#1 private key"},
		{"encrypted", good, pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}}), "encrypted"},
		{"other-blocks-only", good, []byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"), "holds no PRIVATE KEY"},
		{"short-rsa", good, keyPEMs(t, small)["pkcs1"], "too short"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := New(tt.cert, tt.key, Options{Clock: clock.NewFake(t0), Allowed: allowAll})
			if err == nil {
				t.Fatalf("New succeeded (%v); want an error with %q", a, tt.want)
			}
			if !errors.Is(err, ErrBadCA) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q; want ErrBadCA with %q", err, tt.want)
			}
			assertNoKey(t, err, tt.key)
		})
	}
}

// assertNoKey fails if any fmt rendering of v contains the base64 body of
// a PEM block of keyPEM, or a long run of its raw bytes.
func assertNoKey(t *testing.T, v any, keyPEM []byte) {
	t.Helper()
	var bodies []string
	rest := keyPEM
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			continue
		}
		enc := pem.EncodeToMemory(&pem.Block{Type: b.Type, Bytes: b.Bytes})
		for _, line := range strings.Split(string(enc), "\n") {
			if len(line) == 64 {
				bodies = append(bodies, line)
			}
		}
		if len(b.Bytes) >= 16 {
			bodies = append(bodies, string(b.Bytes[len(b.Bytes)-16:]), fmt.Sprintf("%x", b.Bytes[len(b.Bytes)-16:]))
		}
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%d", "%q"} {
		out := fmt.Sprintf(verb, v)
		if strings.Contains(out, "-----BEGIN") {
			t.Errorf("%s of %T holds a PEM block: %s", verb, v, out)
		}
		for _, b := range bodies {
			if strings.Contains(out, b) {
				t.Errorf("%s of %T contains key material", verb, v)
			}
		}
	}
}

func TestAuthorityNeverPrintsItsKey(t *testing.T) {
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for name, key := range map[string]crypto.Signer{"ecdsa": ecKey, "ed25519": edKey} {
		t.Run(name, func(t *testing.T) {
			keyPEM := keyPEMs(t, key)["pkcs8"]
			a, err := New(makeCA(t, key, nil), keyPEM, Options{Clock: clock.NewFake(t0), Allowed: allowAll})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := a.Leaf("api.vendor.test"); err != nil {
				t.Fatal(err)
			}
			// The key as fmt would print it reflectively: an ECDSA key's
			// scalar, an Ed25519 key's bytes (a slice, printed even when
			// nested).
			var raw []byte
			switch k := key.(type) {
			case *ecdsa.PrivateKey:
				if raw, err = k.Bytes(); err != nil {
					t.Fatal(err)
				}
			case ed25519.PrivateKey:
				raw = k.Seed()
			}
			needles := []string{new(big.Int).SetBytes(raw).String(), fmt.Sprintf("%x", raw[:12]), strings.TrimSuffix(fmt.Sprintf("%d", raw[:12]), "]")[1:]}
			for _, v := range []any{a, *a, []any{a}, struct{ A *Authority }{a}, struct{ A Authority }{*a}} {
				assertNoKey(t, v, keyPEM)
				for _, verb := range []string{"%v", "%+v", "%#v", "%d", "%x", "%s"} {
					out := fmt.Sprintf(verb, v)
					for _, n := range needles {
						if strings.Contains(out, n) {
							t.Errorf("%s of %T prints the key: %s", verb, v, out)
						}
					}
				}
			}
			var buf bytes.Buffer
			slog.New(slog.NewJSONHandler(&buf, nil)).Info("ca", "authority", a)
			if !strings.Contains(buf.String(), a.Fingerprint()) {
				t.Errorf("slog: %s", buf.String())
			}
			for _, n := range needles {
				if strings.Contains(buf.String(), n) {
					t.Errorf("slog prints the key: %s", buf.String())
				}
			}
			if bytes.Contains(a.CertPEM(), []byte("PRIVATE")) {
				t.Error("CertPEM holds a key")
			}
		})
	}
	a := newAuthority(t, Options{})
	want := fmt.Sprintf("mint.Authority{subject=%q sha256=%s}", "CN=Portcullis inspect CA,O=Portcullis", a.Fingerprint())
	if got := fmt.Sprint(a); got != want {
		t.Errorf("String = %s, want %s", got, want)
	}
}

// A PKCS#8 key under an "RSA PRIVATE KEY" label (hand-relabelled) loads.
func TestKeyLabelMismatchLoads(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p8, _ := x509.MarshalPKCS8PrivateKey(key)
	if _, err := New(makeCA(t, key, nil), pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: p8}), Options{Clock: clock.NewFake(t0)}); err != nil {
		t.Fatal(err)
	}
}
