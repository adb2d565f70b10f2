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
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// parsePrivateKey loads a PEM private key (PKCS#8 "PRIVATE KEY", PKCS#1
// "RSA PRIVATE KEY" or SEC 1 "EC PRIVATE KEY"; other blocks such as
// "EC PARAMETERS" are skipped) and checks it suits alg (RS256, ES256, EdDSA;
// empty means "infer from the key"). It returns the key, the signing method
// and the algorithm name. Errors never include key material.
func parsePrivateKey(pemText, alg string) (crypto.Signer, jwt.SigningMethod, string, error) {
	rest := []byte(pemText)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, nil, "", fmt.Errorf("%w: no PEM private key block found", ErrBadKey)
		}
		var key any
		var err error
		switch b.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(b.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, nil, "", fmt.Errorf("%w: encrypted private keys are not supported; store the key unencrypted in the secret store", ErrBadKey)
		default:
			continue
		}
		if err == nil && strings.Contains(b.Headers["Proc-Type"], "ENCRYPTED") {
			err = fmt.Errorf("legacy PEM encryption")
		}
		if err != nil {
			return nil, nil, "", fmt.Errorf("%w: %s block does not parse", ErrBadKey, b.Type)
		}
		return keyFor(key, alg)
	}
}

func keyFor(key any, alg string) (crypto.Signer, jwt.SigningMethod, string, error) {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if alg != "" && alg != "RS256" {
			break
		}
		if k.N.BitLen() < 2048 {
			return nil, nil, "", fmt.Errorf("%w: RSA key has %d bits; RS256 needs at least 2048", ErrBadKey, k.N.BitLen())
		}
		return k, jwt.SigningMethodRS256, "RS256", nil
	case *ecdsa.PrivateKey:
		if alg != "" && alg != "ES256" {
			break
		}
		if k.Curve != elliptic.P256() {
			return nil, nil, "", fmt.Errorf("%w: ES256 needs a P-256 key, got %s", ErrBadKey, k.Curve.Params().Name)
		}
		return k, jwt.SigningMethodES256, "ES256", nil
	case ed25519.PrivateKey:
		if alg != "" && alg != "EdDSA" {
			break
		}
		return k, jwt.SigningMethodEdDSA, "EdDSA", nil
	default:
		return nil, nil, "", fmt.Errorf("%w: unsupported key type %T", ErrBadKey, key)
	}
	return nil, nil, "", fmt.Errorf("%w: a %s key cannot sign %s", ErrBadKey, keyKind(key), alg)
}

func keyKind(key any) string {
	switch key.(type) {
	case *rsa.PrivateKey:
		return "RSA"
	case *ecdsa.PrivateKey:
		return "ECDSA"
	case ed25519.PrivateKey:
		return "Ed25519"
	}
	return "unknown"
}

// assertionSigner signs short-lived JWTs with the key behind a secret
// reference, re-parsing the key only when its version changes (rotation).
type assertionSigner struct {
	r   *Resolver
	c   *Spec
	alg string
	kid string

	mu         sync.Mutex
	keyVersion string
	key        crypto.Signer
	method     jwt.SigningMethod
}

func newAssertionSigner(c *Spec, r *Resolver) (*assertionSigner, error) {
	switch c.Algorithm {
	case "", "RS256", "ES256", "EdDSA":
	default:
		return nil, fmt.Errorf("%w: algorithm must be RS256, ES256 or EdDSA", ErrConfig)
	}
	if c.PrivateKey.Ref() == "" {
		return nil, fmt.Errorf("%w: private_key reference is required", ErrConfig)
	}
	return &assertionSigner{r: r, c: c, alg: c.Algorithm, kid: c.KeyID}, nil
}

// load returns the current key, reading the secret through the cache.
func (s *assertionSigner) load(ctx context.Context) (crypto.Signer, jwt.SigningMethod, string, error) {
	sec, err := s.r.Resolve(ctx, s.c.PrivateKey, s.c.TTL.D, s.c.MaxStale.D)
	if err != nil {
		return nil, nil, "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.key == nil || sec.Version != s.keyVersion {
		key, method, _, err := parsePrivateKey(sec.Value.Reveal(), s.alg)
		if err != nil {
			return nil, nil, "", &RefError{Ref: sec.Ref, Err: err}
		}
		s.key, s.method, s.keyVersion = key, method, sec.Version
	}
	return s.key, s.method, s.keyVersion, nil
}

// reload re-reads the key from its store now.
func (s *assertionSigner) reload(ctx context.Context) error {
	_, err := s.r.Refresh(ctx, s.c.PrivateKey)
	return err
}

// sign adds iat, exp (iat+ttl) and a random jti to claims and signs them.
// It returns the JWT and the key version.
func (s *assertionSigner) sign(ctx context.Context, claims map[string]any, ttl time.Duration, now time.Time) (string, string, error) {
	key, method, version, err := s.load(ctx)
	if err != nil {
		return "", "", err
	}
	var jti [16]byte
	_, _ = rand.Read(jti[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	mc := jwt.MapClaims{}
	for k, v := range claims {
		mc[k] = v
	}
	mc["iat"] = now.Unix()
	mc["exp"] = now.Add(ttl).Unix()
	mc["jti"] = base64.RawURLEncoding.EncodeToString(jti[:])
	t := jwt.NewWithClaims(method, mc)
	if s.kid != "" {
		t.Header["kid"] = s.kid
	}
	signed, err := t.SignedString(key)
	if err != nil {
		return "", "", fmt.Errorf("%w: signing failed: %w", ErrBadKey, err)
	}
	return signed, version, nil
}

// selfSignedClaims are the claims of a jwt_bearer JWT: iss = issuer (or
// client_id), sub = subject (or iss), aud = audience, scope = scopes.
func selfSignedClaims(c *Spec) map[string]any {
	claims := map[string]any{}
	iss := c.Issuer
	if iss == "" {
		iss = c.ClientID
	}
	if iss != "" {
		claims["iss"] = iss
	}
	if sub := c.Subject; sub != "" {
		claims["sub"] = sub
	} else if iss != "" {
		claims["sub"] = iss
	}
	if c.Audience != "" {
		claims["aud"] = c.Audience
	}
	if len(c.Scopes) > 0 {
		claims["scope"] = strings.Join(c.Scopes, " ")
	}
	return claims
}

// jwtInjector serves jwt_bearer without a token_url: a self-signed JWT goes
// on the request as a Bearer token. One JWT is reused for 3/4 of its
// lifetime (vendors such as APNs reject a new token per request) and never
// past it; a key rotation re-signs at once.
type jwtInjector struct {
	*guard
	signer *assertionSigner
	c      *Spec
	ttl    time.Duration

	mu         sync.Mutex
	cur        string
	curRedact  *redactor // masks cur in vendor responses
	keyVersion string
	issued     time.Time
	expires    time.Time
	seq        int
}

var _ Injector = (*jwtInjector)(nil)

func newJWTInjector(g *guard, c *Spec, r *Resolver, o Options) (*jwtInjector, error) {
	s, err := newAssertionSigner(c, r)
	if err != nil {
		return nil, fmt.Errorf("integration %s: %w", g.integration, err)
	}
	return &jwtInjector{guard: g, signer: s, c: c, ttl: c.TokenTTL.D}, nil
}

// Apply's Info.Version is the key version, so a revoked key stays revoked
// until the key is rotated at its source (or an admin refresh).
func (in *jwtInjector) Apply(ctx context.Context, req *http.Request) (Info, error) {
	_, _, version, err := in.signer.load(ctx)
	if err != nil {
		return Info{}, in.fail(err)
	}
	if err := in.checkRevoked(version); err != nil {
		return Info{}, err
	}
	now := in.o.now()
	in.mu.Lock()
	if in.cur == "" || version != in.keyVersion || !now.Before(in.issued.Add(in.ttl*3/4)) {
		signed, v, err := in.signer.sign(ctx, selfSignedClaims(in.c), in.ttl, now)
		if err != nil {
			in.mu.Unlock()
			return Info{}, in.fail(err)
		}
		in.seq++
		in.cur, in.keyVersion, in.issued, in.expires = signed, v, now, now.Add(in.ttl)
		in.curRedact = newRedactor([]string{signed})
	}
	tok, version, red := in.cur, in.keyVersion, in.curRedact
	in.mu.Unlock()
	if err := setHeader(req, "Authorization", "Bearer "+tok); err != nil {
		return Info{}, in.fail(err)
	}
	return Info{Version: version, Scopes: in.c.Scopes, redact: red}, nil
}

func (in *jwtInjector) Refresh(ctx context.Context) error { return in.refreshFrom(ctx, 0, true) }

func (in *jwtInjector) refreshFrom(ctx context.Context, seen uint64, force bool) error {
	err := in.refresh(ctx, seen, force, func(ctx context.Context) error {
		if err := in.signer.reload(ctx); err != nil {
			return err
		}
		in.mu.Lock()
		in.cur = "" // re-sign on the next Apply
		in.mu.Unlock()
		return nil
	})
	if err != nil {
		return in.fail(err)
	}
	return nil
}

func (in *jwtInjector) Status() Status {
	st := in.status()
	st.Ref = in.c.PrivateKey.Ref()
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.cur != "" {
		st.Version, st.SecretVersion = in.keyVersion, in.keyVersion
		st.Created, st.Expires = in.issued, in.expires
		st.Scopes = in.c.Scopes
	}
	if in.seq > 0 {
		st.LastRefresh = in.issued
	}
	return st
}
