package egress

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"
)

// Transport pool sizes and timeouts not set by Config. MaxIdleConnsPerHost is
// high because a gateway funnels many callers to few vendor hosts; the
// default of 2 would make it open and close connections under load.
const (
	maxIdleConns          = 1024
	maxIdleConnsPerHost   = 256
	expectContinueTimeout = 1 * time.Second
)

// TLSConfig returns a new tls.Config for connections to the vendor: TLS 1.2
// at least, the CA bundle from Config.CAFile (system roots otherwise), and,
// when pins are configured, a VerifyConnection that requires a pinned SPKI
// in the verified chain. ServerName is left empty for http.Transport to fill
// from the request host. Each call returns a fresh value the caller may
// modify.
func (p *Policy) TLSConfig() *tls.Config {
	c := &tls.Config{
		MinVersion: tls.VersionTLS12,
		RootCAs:    p.roots,
	}
	if len(p.pins) > 0 {
		c.VerifyConnection = p.verifyPins
	}
	return c
}

// Transport returns a new http.Transport that dials through DialContext and
// uses TLSConfig, with the Config's handshake, response-header and
// idle-connection timeouts. It ignores proxy environment variables (Proxy
// is nil), attempts HTTP/2, and has pool sizes fit for a gateway. It is
// built from scratch rather than cloned from http.DefaultTransport, whose
// settings any code in the process can change. Callers should build one per
// Policy and reuse it; the whole-call timeout belongs to the caller (request
// contexts).
func (p *Policy) Transport() *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           p.DialContext,
		TLSClientConfig:       p.TLSConfig(),
		TLSHandshakeTimeout:   p.tlsHandshakeTimeout,
		ResponseHeaderTimeout: p.headerTimeout,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          maxIdleConns,
		MaxIdleConnsPerHost:   maxIdleConnsPerHost,
		IdleConnTimeout:       p.idleConnTimeout,
		ExpectContinueTimeout: expectContinueTimeout,
	}
}

// verifyPins runs after the standard chain verification has succeeded (also
// on resumed sessions). It accepts the connection when any certificate of any
// verified chain, leaf to root, has a pinned SPKI, as HPKP did (RFC 7469
// §2.6).
func (p *Policy) verifyPins(cs tls.ConnectionState) error {
	for _, chain := range cs.VerifiedChains {
		for _, cert := range chain {
			if _, ok := p.pins[sha256.Sum256(cert.RawSubjectPublicKeyInfo)]; ok {
				return nil
			}
		}
	}
	return ErrPinMismatch
}

// SPKIPin returns the pin of a certificate in the form PinSPKI expects:
// base64 of the SHA-256 digest of its SubjectPublicKeyInfo.
func SPKIPin(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// parsePins decodes every PinSPKI entry, reporting each bad one.
func parsePins(pins []string) (map[[32]byte]struct{}, error) {
	if len(pins) == 0 {
		return nil, nil
	}
	set := make(map[[32]byte]struct{}, len(pins))
	var errs []error
	for i, s := range pins {
		b, err := base64.StdEncoding.Strict().DecodeString(s)
		if err != nil || len(b) != sha256.Size {
			errs = append(errs, fmt.Errorf("pin_spki[%d] %q: want the base64 of a SHA-256 digest (44 characters ending in '=')", i, s))
			continue
		}
		set[[32]byte(b)] = struct{}{}
	}
	return set, errors.Join(errs...)
}

// loadCAFile reads a PEM bundle and returns a pool holding only its
// certificates, and the hex SHA-256 of the bytes it read. Unlike x509.CertPool.AppendCertsFromPEM, which skips blocks
// it cannot parse, every block must be a valid certificate, so a damaged
// bundle fails at load time instead of at the vendor's next handshake.
func loadCAFile(path string) (*x509.CertPool, string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("read: %w", err)
	}
	pool := x509.NewCertPool()
	n := 0
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		if block.Type != "CERTIFICATE" {
			return nil, "", fmt.Errorf("PEM block %d is %q, want CERTIFICATE", n+1, block.Type)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, "", fmt.Errorf("certificate %d: %w", n+1, err)
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		return nil, "", errors.New("no PEM certificates found")
	}
	sum := sha256.Sum256(data)
	return pool, hex.EncodeToString(sum[:]), nil
}

// CADigest is the hex SHA-256 of the CA file the policy was built from
// ("" when it trusts the system roots). A CA bundle rotated in place has a
// new digest under the same path, so callers that reuse transports across
// reloads key them by it.
func (p *Policy) CADigest() string { return p.caDigest }
