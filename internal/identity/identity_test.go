package identity

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func newAuth(t *testing.T) (*Authenticator, string, string) {
	t.Helper()
	tb, hb, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	ts, hs, _ := NewToken()
	a, err := New(map[string]*Caller{
		"billing": {Tokens: []string{hb}, MTLSSubjects: []string{"spiffe://corp.example/billing"}},
		"support": {Tokens: []string{hs}, MTLSSubjects: []string{"CN=support,O=Corp"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return a, tb, ts
}

func TestNewTokenShape(t *testing.T) {
	tok, h, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, TokenPrefix) || len(tok) < 40 {
		t.Errorf("token %q: want pcs_ and 256 bits", tok)
	}
	if h != Hash(tok) || !strings.HasPrefix(h, "sha256:") || len(h) != 7+64 {
		t.Errorf("hash %q", h)
	}
	tok2, _, _ := NewToken()
	if tok == tok2 {
		t.Error("two tokens are equal")
	}
}

func TestRequest(t *testing.T) {
	a, tb, ts := newAuth(t)
	tests := []struct {
		name, header, want string
		ok                 bool
	}{
		{"billing-token", "Bearer " + tb, "billing", true},
		{"support-token-lowercase-scheme", "bearer " + ts, "support", true},
		{"missing", "", "", false},
		{"wrong-token", "Bearer pcs_nope", "", false},
		{"basic-scheme", "Basic " + tb, "", false},
		{"token-with-suffix", "Bearer " + tb + "x", "", false},
		{"empty-bearer", "Bearer ", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/x", nil)
			if tt.header != "" {
				r.Header.Set("Authorization", tt.header)
			}
			got, _, ok := a.Request(r)
			if got != tt.want || ok != tt.ok {
				t.Errorf("Request = %q,%v want %q,%v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestCertificate(t *testing.T) {
	a, _, _ := newAuth(t)
	spiffe, _ := url.Parse("spiffe://corp.example/billing")
	other, _ := url.Parse("spiffe://corp.example/evil")
	tests := []struct {
		name string
		cert *x509.Certificate
		want string
	}{
		{"spiffe-uri", &x509.Certificate{URIs: []*url.URL{spiffe}}, "billing"},
		{"subject-dn", &x509.Certificate{Subject: pkix.Name{CommonName: "support", Organization: []string{"Corp"}}}, "support"},
		{"unknown-uri", &x509.Certificate{URIs: []*url.URL{other}}, ""},
		{"cn-only-not-enough", &x509.Certificate{Subject: pkix.Name{CommonName: "support"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := a.Certificate(tt.cert)
			if got != tt.want {
				t.Errorf("got %q want %q", got, tt.want)
			}
			// Through a request: only verified chains count.
			r := httptest.NewRequest("GET", "/x", nil)
			r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{tt.cert}}
			if n, _, ok := a.Request(r); ok {
				t.Errorf("unverified certificate accepted as %q", n)
			}
			r.TLS.VerifiedChains = [][]*x509.Certificate{{tt.cert}}
			n, m, _ := a.Request(r)
			if n != tt.want || (n != "" && m != MethodMTLS) {
				t.Errorf("verified: got %q %q", n, m)
			}
		})
	}
}

func TestProxy(t *testing.T) {
	a, tb, _ := newAuth(t)
	basic := func(u, p string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(u+":"+p)) }
	tests := []struct {
		name, header, want string
	}{
		{"basic-right-user", basic("billing", tb), "billing"},
		{"basic-wrong-user", basic("support", tb), ""},
		{"bearer", "Bearer " + tb, "billing"},
		{"bad-base64", "Basic !!!", ""},
		{"no-colon", "Basic " + base64.StdEncoding.EncodeToString([]byte(tb)), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("CONNECT", "api.example:443", nil)
			r.Header.Set("Proxy-Authorization", tt.header)
			got, _, _ := a.Proxy(r)
			if got != tt.want {
				t.Errorf("got %q want %q", got, tt.want)
			}
		})
	}
}

func TestNewRejectsBadHash(t *testing.T) {
	_, err := New(map[string]*Caller{"x": {Tokens: []string{"pcs_rawtoken"}}})
	if err == nil || strings.Contains(err.Error(), "pcs_rawtoken") {
		t.Fatalf("err = %v", err)
	}
}

func BenchmarkToken(b *testing.B) {
	callers := map[string]*Caller{}
	var tok string
	for i := 0; i < 20; i++ {
		t, h, _ := NewToken()
		tok = t
		callers[string(rune('a'+i))] = &Caller{Tokens: []string{h}}
	}
	a, _ := New(callers)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := a.Token(tok); !ok {
			b.Fatal("no match")
		}
	}
}

func FuzzCredentials(f *testing.F) {
	a, tb, _ := func() (*Authenticator, string, string) {
		tb, hb, _ := NewToken()
		a, _ := New(map[string]*Caller{"billing": {Tokens: []string{hb}}})
		return a, tb, ""
	}()
	for _, s := range []string{"Bearer " + tb, "Basic " + base64.StdEncoding.EncodeToString([]byte("billing:"+tb)), "Basic", "bearer  ", "Basic Og==", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		r := httptest.NewRequest("GET", "/x", nil)
		r.Header.Set("Authorization", h)
		r.Header.Set("Proxy-Authorization", h)
		n1, _, ok1 := a.Request(r)
		n2, _, ok2 := a.Proxy(r)
		// Only the real token authenticates, under its own caller.
		if ok1 && n1 != "billing" || ok2 && n2 != "billing" {
			t.Fatalf("authenticated %q/%q from %q", n1, n2, h)
		}
		if (ok1 || ok2) && !strings.Contains(h, tb) && !strings.Contains(h, base64.StdEncoding.EncodeToString([]byte("billing:" + tb))[:8]) {
			t.Fatalf("authenticated without the token: %q", h)
		}
	})
}
