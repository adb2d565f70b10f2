package credential

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/portcullis-dev/portcullis/internal/conf"
)

// Keys are generated once per test binary (RSA generation is slow).
var testKeys = sync.OnceValue(func() map[string]crypto.Signer {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsaSmall, _ := rsa.GenerateKey(rand.Reader, 1024)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ec384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	return map[string]crypto.Signer{"rsa": rsaKey, "rsa1024": rsaSmall, "ec": ecKey, "ec384": ec384, "ed": edKey}
})

func pemOf(t testing.TB, typ string, key any) string {
	t.Helper()
	var der []byte
	var err error
	switch typ {
	case "PRIVATE KEY":
		der, err = x509.MarshalPKCS8PrivateKey(key)
	case "RSA PRIVATE KEY":
		der = x509.MarshalPKCS1PrivateKey(key.(*rsa.PrivateKey))
	case "EC PRIVATE KEY":
		der, err = x509.MarshalECPrivateKey(key.(*ecdsa.PrivateKey))
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

type keyCase struct {
	name    string
	pem     string
	alg     string
	wantAlg string
	wantErr string
}

func keyCases(t testing.TB) []keyCase {
	k := testKeys()
	ecParams := "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"
	return []keyCase{
		{name: "rsa-pkcs1", pem: pemOf(t, "RSA PRIVATE KEY", k["rsa"]), alg: "RS256", wantAlg: "RS256"},
		{name: "rsa-pkcs8-inferred", pem: pemOf(t, "PRIVATE KEY", k["rsa"]), wantAlg: "RS256"},
		{name: "ec-sec1-after-parameters-block", pem: ecParams + pemOf(t, "EC PRIVATE KEY", k["ec"]), alg: "ES256", wantAlg: "ES256"},
		{name: "ec-pkcs8", pem: pemOf(t, "PRIVATE KEY", k["ec"]), alg: "ES256", wantAlg: "ES256"},
		{name: "ed25519-pkcs8", pem: pemOf(t, "PRIVATE KEY", k["ed"]), alg: "EdDSA", wantAlg: "EdDSA"},
		{name: "ec-key-for-rs256", pem: pemOf(t, "EC PRIVATE KEY", k["ec"]), alg: "RS256", wantErr: "a ECDSA key cannot sign RS256"},
		{name: "rsa-too-small", pem: pemOf(t, "RSA PRIVATE KEY", k["rsa1024"]), alg: "RS256", wantErr: "1024 bits"},
		{name: "p384-for-es256", pem: pemOf(t, "EC PRIVATE KEY", k["ec384"]), alg: "ES256", wantErr: "P-256"},
		{name: "not-pem", pem: "just some text", alg: "ES256", wantErr: "no PEM private key block"},
		{name: "public-key-only", pem: "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n", wantErr: "no PEM private key block"},
		{name: "encrypted", pem: "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n", wantErr: "encrypted"},
		{name: "corrupt-body", pem: "-----BEGIN PRIVATE KEY-----\nMIIBVgIBADANBgkqhkiG9w0BAQEFAASCAUAwggE8\n-----END PRIVATE KEY-----\n", wantErr: "does not parse"},
	}
}

func TestParsePrivateKey(t *testing.T) {
	for _, tt := range keyCases(t) {
		t.Run(tt.name, func(t *testing.T) {
			key, method, alg, err := parsePrivateKey(tt.pem, tt.alg)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrBadKey) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want ErrBadKey mentioning %q", err, tt.wantErr)
				}
				if body := pemBody(tt.pem); body != "" && strings.Contains(err.Error(), body[:min(len(body), 16)]) {
					t.Errorf("error quotes key material: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if alg != tt.wantAlg || method.Alg() != tt.wantAlg || key == nil {
				t.Fatalf("alg = %s/%s, want %s", alg, method.Alg(), tt.wantAlg)
			}
			signed, err := jwt.NewWithClaims(method, jwt.MapClaims{"x": 1}).SignedString(key)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := jwt.Parse(signed, func(*jwt.Token) (any, error) { return key.Public(), nil }, jwt.WithValidMethods([]string{tt.wantAlg})); err != nil {
				t.Errorf("signature does not verify: %v", err)
			}
		})
	}
}

func pemBody(s string) string {
	lines := strings.Split(s, "\n")
	if len(lines) < 2 {
		return ""
	}
	return lines[1]
}

func FuzzParsePrivateKey(f *testing.F) {
	for _, tt := range keyCases(f) {
		f.Add(tt.pem, tt.alg)
	}
	f.Fuzz(func(t *testing.T, text, alg string) {
		key, method, got, err := parsePrivateKey(text, alg)
		if err != nil {
			if !errors.Is(err, ErrBadKey) {
				t.Fatalf("error %v is not ErrBadKey", err)
			}
			return
		}
		if key == nil || method == nil || (alg != "" && got != alg) {
			t.Fatalf("accepted a key for %q as %q", alg, got)
		}
	})
}

// writeKeyFile writes a PEM key and returns a file: reference to it.
func writeKeyFile(t *testing.T, dir, pemText string) conf.SecretRef {
	t.Helper()
	p := filepath.Join(dir, "key.pem")
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, []byte(pemText), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
	return conf.MustRef("file:" + p)
}

func parseJWT(t *testing.T, raw string, pub crypto.PublicKey, alg string) (jwt.MapClaims, map[string]any) {
	t.Helper()
	claims := jwt.MapClaims{}
	tok, err := jwt.ParseWithClaims(raw, claims, func(*jwt.Token) (any, error) { return pub, nil }, jwt.WithValidMethods([]string{alg}), jwt.WithoutClaimsValidation()) // claims are compared by the caller (fake clock)
	if err != nil {
		t.Fatalf("JWT does not verify: %v", err)
	}
	return claims, tok.Header
}

func TestSelfSignedJWTBearer(t *testing.T) {
	k := testKeys()
	dir := t.TempDir()
	ref := writeKeyFile(t, dir, pemOf(t, "PRIVATE KEY", k["ec"]))
	clock := newClock()
	c := &Spec{Type: "jwt_bearer", PrivateKey: ref, Algorithm: "ES256", KeyID: "key-2026",
		Issuer: "portcullis", Subject: "svc-payments", Audience: "https://api.vendor.example", Scopes: []string{"read"},
		TokenTTL: conf.Dur(4 * time.Minute), TTL: conf.Dur(time.Hour)}
	in, logs := newTestInjector(t, c, clock)
	ctx := context.Background()

	info, req, err := apply(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
	claims, hdr := parseJWT(t, raw, k["ec"].Public(), "ES256")
	now := clock.Now().Unix()
	want := jwt.MapClaims{"iss": "portcullis", "sub": "svc-payments", "aud": "https://api.vendor.example", "scope": "read",
		"iat": float64(now), "exp": float64(now + 240)}
	jti := claims["jti"]
	delete(claims, "jti")
	if diff := cmp.Diff(want, claims); diff != "" {
		t.Errorf("claims (-want +got):\n%s", diff)
	}
	if s, _ := jti.(string); len(s) < 20 || hdr["kid"] != "key-2026" {
		t.Errorf("jti %v or kid %v missing", jti, hdr["kid"])
	}
	if diff := cmp.Diff(Info{Version: "gen-1", Scopes: []string{"read"}}, info, cmpopts.IgnoreUnexported(Info{})); diff != "" {
		t.Errorf("Info (-want +got):\n%s", diff)
	}

	clock.Advance(2 * time.Minute) // under 3/4 of 4m: same JWT
	if _, r2, _ := apply(ctx, in); r2.Header.Get("Authorization") != req.Header.Get("Authorization") {
		t.Errorf("JWT re-signed before 3/4 of its lifetime")
	}
	clock.Advance(61 * time.Second)
	_, r3, _ := apply(ctx, in)
	if r3.Header.Get("Authorization") == req.Header.Get("Authorization") {
		t.Fatalf("JWT not re-signed at 3/4 of its lifetime")
	}
	raw3, _ := strings.CutPrefix(r3.Header.Get("Authorization"), "Bearer ")
	if c3, _ := parseJWT(t, raw3, k["ec"].Public(), "ES256"); c3["jti"] == jti {
		t.Errorf("jti reused")
	}

	// Key rotation: the new key signs after a Refresh.
	next, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	writeKeyFile(t, dir, pemOf(t, "PRIVATE KEY", next))
	if err := in.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	info, r4, err := apply(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	raw4, _ := strings.CutPrefix(r4.Header.Get("Authorization"), "Bearer ")
	parseJWT(t, raw4, next.Public(), "ES256")
	if info.Version != "gen-2" || in.Status().SecretVersion != "gen-2" {
		t.Errorf("after rotation Info.Version = %q, want gen-2", info.Version)
	}
	assertNoCanary(t, pemBody(pemOf(t, "PRIVATE KEY", next))[:20], logs.String())
}

// private_key_jwt (RFC 7523 §2.2) and the JWT bearer grant (§2.1) against a
// token endpoint that verifies the assertion.
func TestTokenEndpointAssertions(t *testing.T) {
	k := testKeys()
	tests := []struct {
		name      string
		cred      func(tokenURL string, ref conf.SecretRef) *Spec
		wantGrant string
		param     string
	}{
		{
			name: "private-key-jwt-client-auth",
			cred: func(u string, ref conf.SecretRef) *Spec {
				return &Spec{Type: "oauth2_client_credentials", TokenURL: u, ClientID: "client-1",
					AuthMethod: "private_key_jwt", PrivateKey: ref, KeyID: "k1", Scopes: []string{"read"}}
			},
			wantGrant: "client_credentials", param: "client_assertion",
		},
		{
			name: "jwt-bearer-grant",
			cred: func(u string, ref conf.SecretRef) *Spec {
				return &Spec{Type: "jwt_bearer", TokenURL: u, ClientID: "client-1", Issuer: "client-1",
					Subject: "svc", PrivateKey: ref, Algorithm: "ES256", Scopes: []string{"read"}}
			},
			wantGrant: grantJWTBearer, param: "assertion",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref := writeKeyFile(t, t.TempDir(), pemOf(t, "EC PRIVATE KEY", k["ec"]))
			idp := newFakeIdP(t)
			var jtis []any
			var mu sync.Mutex
			idp.set(func(w http.ResponseWriter, n int, form url.Values) {
				if form.Get("grant_type") != tt.wantGrant || form.Get("client_secret") != "" {
					http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
					return
				}
				if tt.param == "client_assertion" && form.Get("client_assertion_type") != assertionTypeJWT {
					http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
					return
				}
				claims := jwt.MapClaims{}
				_, err := jwt.ParseWithClaims(form.Get(tt.param), claims, func(*jwt.Token) (any, error) { return k["ec"].Public(), nil },
					jwt.WithValidMethods([]string{"ES256"}), jwt.WithAudience(idp.srv.URL), jwt.WithIssuer("client-1"), jwt.WithExpirationRequired(), jwt.WithIssuedAt())
				if err != nil {
					http.Error(w, `{"error":"invalid_client","error_description":"bad assertion"}`, http.StatusUnauthorized)
					return
				}
				mu.Lock()
				jtis = append(jtis, claims["jti"])
				mu.Unlock()
				writeTokenJSON(w, map[string]any{"access_token": fmt.Sprintf("tok-%d", n), "token_type": "bearer", "expires_in": 60, "scope": form.Get("scope")})
			})
			in, _ := newTestInjector(t, tt.cred(idp.srv.URL, ref), nil)
			for range 2 {
				if err := in.Refresh(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			info, req, err := apply(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			if req.Header.Get("Authorization") != "Bearer tok-2" || info.Version != "token-2" {
				t.Errorf("got %q %q", req.Header.Get("Authorization"), info.Version)
			}
			if len(jtis) != 2 || jtis[0] == jtis[1] || idp.auths[0] != "" {
				t.Errorf("jtis %v (want 2 distinct), Authorization on token request %q (want none)", jtis, idp.auths[0])
			}
			if st := in.Status(); st.Ref != ref.Ref() || st.SecretVersion != "gen-1" {
				t.Errorf("Status = %+v", st)
			}
		})
	}
}
