// Package mint owns the certificate authority of inspect mode: it loads the
// operator's CA (server.inspect_ca), mints and caches a leaf certificate per
// host for the gateway to terminate a caller's TLS inside a CONNECT tunnel,
// and makes new CAs for `portcullis ca new`.
//
// Nothing in the package prints, logs or formats a private key: an
// Authority prints as its CA subject and fingerprint, and no error carries
// key bytes.
package mint

import (
	"container/list"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/portcullis-dev/portcullis/internal/clock"
)

// Defaults of Options.
const (
	DefaultLeafTTL   = 24 * time.Hour
	DefaultCacheSize = 1000
)

// Errors of Leaf and GetCertificate, for errors.Is.
var (
	// ErrNotAllowed: Options.Allowed refused the host.
	ErrNotAllowed = errors.New("no inspect certificate for this host")
	// ErrBadHost: the host is empty, or neither a DNS name nor an IP.
	ErrBadHost = errors.New("not a host name")
	// ErrNoServerName: the ClientHello carried no SNI.
	ErrNoServerName = errors.New("client sent no server name (SNI)")
	// ErrExpired: the CA has expired since New, so no leaf can be minted.
	ErrExpired = errors.New("inspect CA expired")
)

// Options tune an Authority. The zero value is usable, but refuses every
// host: set Allowed.
type Options struct {
	// Clock is read for leaf validity and cache expiry. Default the
	// process clock.
	Clock clock.Clock
	// LeafTTL is how long a minted leaf is valid (never past the CA's
	// NotAfter). A cached leaf is re-minted once three quarters of its
	// validity have passed. Default 24h.
	LeafTTL time.Duration
	// CacheSize bounds the cached leaves; the least recently used goes
	// first. Default 1000.
	CacheSize int
	// Allowed says whether a leaf may be minted for host (lower case, no
	// trailing dot, an IPv6 literal without brackets). Nil refuses every
	// host.
	Allowed func(host string) bool
}

// Authority mints leaf certificates signed by one CA. It is safe for
// concurrent use.
type Authority struct {
	ca    *x509.Certificate
	chain [][]byte // CA DER, then any further certificates of the cert file
	key   crypto.Signer
	fp    string // hex SHA-256 of the CA DER
	// constrained: the CA carries name constraints, so each new leaf is
	// verified against it before use.
	constrained bool
	roots       *x509.CertPool // only the CA, when constrained
	clk         clock.Clock
	ttl         time.Duration
	allowed     func(string) bool
	st          *state
}

// state is the mutable part, behind a pointer so Authority's value methods
// (String, Format) copy no lock.
type state struct {
	sf    singleflight.Group
	mu    sync.Mutex
	max   int
	lru   *list.List // of *entry, most recent first
	byKey map[string]*list.Element
}

type entry struct {
	host    string
	cert    *tls.Certificate
	renewAt time.Time
}

// New loads the CA from certPEM (its certificate first, then any
// intermediates to send after it) and keyPEM (PKCS#8, SEC1 or PKCS#1; ECDSA
// P-256/P-384, RSA or Ed25519), and checks that the certificate is a CA
// that may sign certificates, is valid now and matches the key. Every
// error wraps ErrBadCA and says the fix.
func New(certPEM, keyPEM []byte, o Options) (*Authority, error) {
	if o.LeafTTL < 0 {
		return nil, fmt.Errorf("mint: LeafTTL must not be negative")
	}
	if o.CacheSize < 0 {
		return nil, fmt.Errorf("mint: CacheSize must not be negative")
	}
	clk := clock.Or(o.Clock)
	certs, err := loadCerts(certPEM)
	if err != nil {
		return nil, err
	}
	key, err := loadKey(keyPEM)
	if err != nil {
		return nil, err
	}
	if err := checkCA(certs[0], key, clk.Now()); err != nil {
		return nil, err
	}
	a := &Authority{
		ca:      certs[0],
		key:     key,
		clk:     clk,
		ttl:     o.LeafTTL,
		allowed: o.Allowed,
		st:      &state{max: o.CacheSize, lru: list.New(), byKey: map[string]*list.Element{}},
	}
	if a.ttl == 0 {
		a.ttl = DefaultLeafTTL
	}
	if a.st.max == 0 {
		a.st.max = DefaultCacheSize
	}
	for _, c := range certs {
		a.chain = append(a.chain, c.Raw)
	}
	c := a.ca
	a.constrained = len(c.PermittedDNSDomains)+len(c.ExcludedDNSDomains)+len(c.PermittedIPRanges)+len(c.ExcludedIPRanges)+
		len(c.PermittedEmailAddresses)+len(c.ExcludedEmailAddresses)+len(c.PermittedURIDomains)+len(c.ExcludedURIDomains) > 0
	if a.constrained {
		a.roots = x509.NewCertPool()
		a.roots.AddCert(c)
	}
	sum := sha256.Sum256(a.ca.Raw)
	a.fp = hex.EncodeToString(sum[:])
	return a, nil
}

// Leaf returns a certificate for exactly host (a DNS name, or an IP
// literal), chained to the CA: from the cache while it is fresh, else
// minted with a new P-256 key. Concurrent first calls for one host mint
// once. A host Options.Allowed refuses gets an error wrapping
// ErrNotAllowed that names it.
func (a *Authority) Leaf(host string) (*tls.Certificate, error) {
	name, ip, err := canonical(host)
	if err != nil {
		return nil, err
	}
	if a.allowed == nil || !a.allowed(name) {
		return nil, fmt.Errorf("%w: %q", ErrNotAllowed, name)
	}
	if c := a.st.get(name, a.clk.Now()); c != nil {
		return c, nil
	}
	v, err, _ := a.st.sf.Do(name, func() (any, error) {
		now := a.clk.Now()
		if c := a.st.get(name, now); c != nil {
			return c, nil
		}
		e, err := a.mint(name, ip, now)
		if err != nil {
			return nil, err
		}
		if a.constrained {
			// Clients would refuse the leaf; say why here instead.
			if err := a.verify(e.cert, name, now); err != nil {
				return nil, fmt.Errorf("%w: %q is outside the inspect CA's name constraints: %w", ErrNotAllowed, name, err)
			}
		}
		a.st.put(e)
		return e.cert, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*tls.Certificate), nil
}

// GetCertificate is for tls.Config.GetCertificate: Leaf for the SNI. A
// ClientHello without SNI is refused (ErrNoServerName); clients send none
// for an IP literal, so a tunnel to an IP must call Leaf with its CONNECT
// host instead. Checking the SNI against the CONNECT target is the
// caller's job.
func (a *Authority) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if hello == nil || hello.ServerName == "" {
		return nil, ErrNoServerName
	}
	return a.Leaf(hello.ServerName)
}

// CertPEM returns the CA certificate, PEM-encoded: what clients must trust.
// Never the key.
func (a *Authority) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.ca.Raw})
}

// Subject is the CA's subject, e.g. "CN=Portcullis inspect CA".
func (a *Authority) Subject() string { return a.ca.Subject.String() }

// Fingerprint is the hex SHA-256 of the CA certificate (DER).
func (a *Authority) Fingerprint() string { return a.fp }

// NotAfter is when the CA expires; no leaf is valid past it.
func (a *Authority) NotAfter() time.Time { return a.ca.NotAfter }

// String, GoString, Format and LogValue print the CA subject and
// fingerprint only, whatever the verb.
func (a Authority) String() string {
	return fmt.Sprintf("mint.Authority{subject=%q sha256=%s}", a.Subject(), a.fp)
}

func (a Authority) GoString() string { return a.String() }

func (a Authority) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(a.String())) }

func (a Authority) LogValue() slog.Value {
	return slog.GroupValue(slog.String("subject", a.Subject()), slog.String("sha256", a.fp))
}

var (
	_ fmt.Stringer   = Authority{}
	_ fmt.Formatter  = Authority{}
	_ slog.LogValuer = Authority{}
)

// serialLimit bounds serial numbers to 128 bits.
var (
	serialLimit = new(big.Int).Lsh(big.NewInt(1), 128)
	bigOne      = big.NewInt(1)
)

func (a *Authority) mint(name string, ip net.IP, now time.Time) (*entry, error) {
	notAfter := now.Add(a.ttl)
	if a.ca.NotAfter.Before(notAfter) {
		notAfter = a.ca.NotAfter
	}
	if !notAfter.After(now) {
		return nil, fmt.Errorf("%w at %s: make a new one with `portcullis ca new` and distribute it", ErrExpired, a.ca.NotAfter.UTC().Format(time.RFC3339))
	}
	serial, err := rand.Int(rand.Reader, serialLimit)
	if err != nil {
		return nil, fmt.Errorf("mint: serial: %w", err)
	}
	serial.Add(serial, bigOne) // positive, never zero
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	if len(name) <= 64 { // ub-common-name
		tmpl.Subject = pkix.Name{CommonName: name}
	}
	if ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{name}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("mint: leaf key: %w", err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.ca, &key.PublicKey, a.key)
	if err != nil {
		return nil, fmt.Errorf("mint: leaf for %q: %w", name, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("mint: leaf for %q: %w", name, err)
	}
	chain := make([][]byte, 0, 1+len(a.chain))
	chain = append(chain, der)
	chain = append(chain, a.chain...)
	return &entry{
		host:    name,
		cert:    &tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: leaf},
		renewAt: now.Add(notAfter.Sub(now) * 3 / 4),
	}, nil
}

// canonical returns host lower-cased, without a trailing dot or IPv6
// brackets, and its IP when it is an IP literal.
func canonical(host string) (string, net.IP, error) {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	if addr, err := netip.ParseAddr(h); err == nil {
		if addr.Zone() != "" {
			return "", nil, fmt.Errorf("%w: %q (an IPv6 zone)", ErrBadHost, host)
		}
		addr = addr.Unmap()
		return addr.String(), net.IP(addr.AsSlice()), nil
	}
	if !isDNSName(h) {
		return "", nil, fmt.Errorf("%w: %q", ErrBadHost, host)
	}
	return h, nil, nil
}

// isDNSName reports whether h is a plain DNS name: labels of letters,
// digits, '-' and '_', 1 to 63 bytes, not starting or ending with '-', at
// most 253 bytes in all. No wildcards.
func isDNSName(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

func (s *state) get(host string, now time.Time) *tls.Certificate {
	s.mu.Lock()
	defer s.mu.Unlock()
	el, ok := s.byKey[host]
	if !ok {
		return nil
	}
	e := el.Value.(*entry)
	if !now.Before(e.renewAt) {
		return nil
	}
	s.lru.MoveToFront(el)
	return e.cert
}

func (s *state) put(e *entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.byKey[e.host]; ok {
		el.Value = e
		s.lru.MoveToFront(el)
		return
	}
	s.byKey[e.host] = s.lru.PushFront(e)
	for s.lru.Len() > s.max {
		old := s.lru.Back()
		s.lru.Remove(old)
		delete(s.byKey, old.Value.(*entry).host)
	}
}

// verify checks leaf against the CA alone (the CA as the root even when it
// is an intermediate: its own constraints are what matter here).
func (a *Authority) verify(leaf *tls.Certificate, name string, now time.Time) error {
	_, err := leaf.Leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: a.roots, CurrentTime: now})
	return err
}
