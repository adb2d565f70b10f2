// Package identity owns caller authentication: who is calling the gateway.
// A caller proves itself with a bearer token (only its SHA-256 hash is in
// the config) or with an mTLS client certificate whose subject or SPIFFE URI
// SAN is listed for it.
package identity

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"sort"
	"strings"
)

// TokenPrefix starts every caller token, so secret scanners can find leaked ones.
const TokenPrefix = "pcs_"

// Method says how a caller authenticated.
type Method string

const (
	MethodToken Method = "token"
	MethodMTLS  Method = "mtls"
)

type tokenEntry struct {
	hash   [sha256.Size]byte
	caller string
}

// Authenticator maps credentials to caller names. Read-only after New.
type Authenticator struct {
	tokens   []tokenEntry
	subjects map[string]string
}

// Caller is one calling service (`callers.NAME`). Its schema lives here,
// with the package that authenticates it, so that packages below config
// (the forward proxy) can take callers without importing config; config
// checks the callers section (names, token shape, shared hashes).
type Caller struct {
	// Tokens are "sha256:<hex>" hashes of the caller's bearer tokens, printed by
	// `portcullis token new`. Several allow rotation.
	Tokens []string `yaml:"tokens"`
	// MTLSSubjects are certificate subjects ("CN=billing,O=corp") or SPIFFE
	// URI SANs ("spiffe://corp.example/billing") accepted under mTLS.
	MTLSSubjects []string `yaml:"mtls_subjects"`
	// Description is free text for audits.
	Description string `yaml:"description"`
}

// New compiles the callers section.
func New(callers map[string]*Caller) (*Authenticator, error) {
	a := &Authenticator{subjects: map[string]string{}}
	names := make([]string, 0, len(callers))
	for n := range callers {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		c := callers[name]
		if c == nil {
			continue
		}
		for i, t := range c.Tokens {
			h, ok := strings.CutPrefix(t, "sha256:")
			b, err := hex.DecodeString(h)
			if !ok || err != nil || len(b) != sha256.Size {
				return nil, fmt.Errorf("callers.%s.tokens[%d]: not a sha256:<hex> hash", name, i)
			}
			var e tokenEntry
			copy(e.hash[:], b)
			e.caller = name
			a.tokens = append(a.tokens, e)
		}
		for _, s := range c.MTLSSubjects {
			a.subjects[s] = name
		}
	}
	return a, nil
}

// Token returns the caller owning a presented token. Every configured hash
// is compared in constant time, with no early exit, so timing reveals
// neither which hash matched nor how many bytes did.
func (a *Authenticator) Token(token string) (string, bool) {
	if token == "" {
		return "", false
	}
	// Copied to the stack first: []byte(token) of a token this long would
	// be a heap allocation per request.
	var buf [128]byte
	sum := sha256.Sum256(append(buf[:0], token...))
	found := ""
	for i := range a.tokens {
		if subtle.ConstantTimeCompare(sum[:], a.tokens[i].hash[:]) == 1 {
			found = a.tokens[i].caller
		}
	}
	return found, found != ""
}

// Certificate returns the caller of a verified client certificate: a URI
// SAN (SPIFFE ID) or the full subject DN must be listed for it.
func (a *Authenticator) Certificate(cert *x509.Certificate) (string, bool) {
	if cert == nil {
		return "", false
	}
	for _, u := range cert.URIs {
		if n, ok := a.subjects[u.String()]; ok {
			return n, true
		}
	}
	n, ok := a.subjects[cert.Subject.String()]
	return n, ok
}

// Request authenticates a reverse-proxy call: a verified client certificate
// first, else "Authorization: Bearer pcs_…".
func (a *Authenticator) Request(r *http.Request) (string, Method, bool) {
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.PeerCertificates) > 0 {
		if n, ok := a.Certificate(r.TLS.PeerCertificates[0]); ok {
			return n, MethodMTLS, true
		}
	}
	tok, ok := bearer(r.Header.Get("Authorization"))
	if !ok {
		return "", "", false
	}
	n, ok := a.Token(tok)
	return n, MethodToken, ok
}

// Proxy authenticates a forward-proxy request: a client certificate, or
// "Proxy-Authorization: Basic base64(caller:token)" (what
// HTTPS_PROXY=http://caller:token@host produces) or "Bearer token". With
// Basic, the user name must be the token's own caller.
func (a *Authenticator) Proxy(r *http.Request) (string, Method, bool) {
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.PeerCertificates) > 0 {
		if n, ok := a.Certificate(r.TLS.PeerCertificates[0]); ok {
			return n, MethodMTLS, true
		}
	}
	h := r.Header.Get("Proxy-Authorization")
	if tok, ok := bearer(h); ok {
		n, ok := a.Token(tok)
		return n, MethodToken, ok
	}
	scheme, rest, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Basic") {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rest))
	if err != nil {
		return "", "", false
	}
	user, tok, ok := strings.Cut(string(raw), ":")
	if !ok {
		return "", "", false
	}
	n, ok := a.Token(tok)
	if !ok || n != user {
		return "", "", false
	}
	return n, MethodToken, true
}

func bearer(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// Hash is the config form of a token: "sha256:<hex>".
func Hash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// NewToken returns a fresh random caller token (256 bits) and its hash.
func NewToken() (token, hash string, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("identity: random: %w", err)
	}
	token = TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return token, Hash(token), nil
}
