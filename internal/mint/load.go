package mint

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"
)

// ErrBadCA is wrapped by every error of New about the CA certificate or
// key, so a caller can tell a bad file from a refused host.
var ErrBadCA = errors.New("inspect CA")

// loadCerts returns the certificates of certPEM, in file order: the first
// is the CA that signs leaves, any further ones are sent after it in every
// chain (for an intermediate CA).
func loadCerts(certPEM []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := certPEM
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			if isKeyBlock(b.Type) {
				return nil, fmt.Errorf("%w: the cert file holds a private key (%s block); give the key as inspect_ca.key and only the certificate as inspect_ca.cert", ErrBadCA, b.Type)
			}
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: certificate %d: %w", ErrBadCA, len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%w: the cert file holds no PEM CERTIFICATE block (make one with `portcullis ca new`)", ErrBadCA)
	}
	return certs, nil
}

func isKeyBlock(t string) bool {
	switch t {
	case "PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY", "ENCRYPTED PRIVATE KEY":
		return true
	}
	return false
}

// loadKey parses the first private key block of keyPEM: PKCS#8 ("PRIVATE
// KEY"), SEC1 ("EC PRIVATE KEY") or PKCS#1 ("RSA PRIVATE KEY"). Other
// blocks (OpenSSL's "EC PARAMETERS") are skipped. No error it returns
// contains key material.
func loadKey(keyPEM []byte) (crypto.Signer, error) {
	rest := keyPEM
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type == "ENCRYPTED PRIVATE KEY" || b.Headers["Proc-Type"] != "" {
			return nil, fmt.Errorf("%w: the key is encrypted; the gateway needs it unencrypted (keep it in Vault or a 0600 file instead), e.g. `openssl pkey -in KEY -out KEY.plain`", ErrBadCA)
		}
		switch b.Type {
		case "PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY":
		case "CERTIFICATE":
			return nil, fmt.Errorf("%w: the key holds a certificate, not a private key; inspect_ca.key must reference the CA's private key", ErrBadCA)
		default:
			continue
		}
		// Whatever the label says, try each format: hand-relabelled
		// blocks are common. The parsers' own errors are not passed on:
		// the message needs no ASN.1 detail of key bytes.
		k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
		if err != nil {
			if ec, e := x509.ParseECPrivateKey(b.Bytes); e == nil {
				k, err = ec, nil
			} else if r, e := x509.ParsePKCS1PrivateKey(b.Bytes); e == nil {
				k, err = r, nil
			}
		}
		if err != nil {
			return nil, fmt.Errorf("%w: the key's %s block is not a PKCS#8, SEC1 or PKCS#1 private key (check it with `openssl pkey -in KEY -noout`)", ErrBadCA, b.Type)
		}
		return signerOf(k)
	}
	if bytes.Contains(keyPEM, []byte("-----BEGIN")) {
		return nil, fmt.Errorf("%w: the key holds no PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY block", ErrBadCA)
	}
	return nil, fmt.Errorf("%w: the key is not PEM (want a PKCS#8, SEC1 or PKCS#1 PEM block; convert DER with `openssl pkey -inform DER -in KEY`)", ErrBadCA)
}

func signerOf(k any) (crypto.Signer, error) {
	switch k := k.(type) {
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
			return k, nil
		}
		return nil, fmt.Errorf("%w: unsupported ECDSA curve (use P-256 or P-384)", ErrBadCA)
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("%w: RSA key of %d bits is too short (want at least 2048)", ErrBadCA, k.N.BitLen())
		}
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	}
	return nil, fmt.Errorf("%w: unsupported key type %T (use ECDSA P-256/P-384, RSA or Ed25519)", ErrBadCA, k)
}

// checkCA says what is wrong with ca as a signer of leaves at now, with key.
func checkCA(ca *x509.Certificate, key crypto.Signer, now time.Time) error {
	if err := checkCACert(ca, now); err != nil {
		return err
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(ca.PublicKey) {
		return fmt.Errorf("%w: the key does not match certificate %q (inspect_ca.key and inspect_ca.cert are from different pairs)", ErrBadCA, ca.Subject.String())
	}
	return nil
}

// checkCACert says what is wrong with ca as a signer of leaves at now.
func checkCACert(ca *x509.Certificate, now time.Time) error {
	subj := ca.Subject.String()
	if !ca.BasicConstraintsValid || !ca.IsCA {
		return fmt.Errorf("%w: certificate %q is not a CA (basicConstraints CA:TRUE missing); make one with `portcullis ca new`", ErrBadCA, subj)
	}
	if ca.KeyUsage&x509.KeyUsageCertSign == 0 {
		return fmt.Errorf("%w: certificate %q may not sign certificates (keyUsage lacks keyCertSign); make one with `portcullis ca new`", ErrBadCA, subj)
	}
	if now.After(ca.NotAfter) {
		return fmt.Errorf("%w: certificate %q expired at %s; make a new one with `portcullis ca new` and distribute it", ErrBadCA, subj, ca.NotAfter.UTC().Format(time.RFC3339))
	}
	if now.Before(ca.NotBefore) {
		return fmt.Errorf("%w: certificate %q is not valid before %s (check the clock)", ErrBadCA, subj, ca.NotBefore.UTC().Format(time.RFC3339))
	}
	return nil
}
