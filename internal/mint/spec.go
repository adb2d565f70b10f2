package mint

import (
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/portcullis-dev/portcullis/internal/conf"
	"github.com/portcullis-dev/portcullis/internal/secret"
)

// maxCertFile bounds the cert file read; a CA bundle is never this big.
const maxCertFile = 1 << 20

// CASpec is `server.inspect_ca`: the CA whose leaves the gateway presents
// inside the tunnels of integrations with proxy.inspect. Plain data; Load
// turns it into an Authority.
type CASpec struct {
	// Cert is the PEM file of the CA certificate (then any intermediates
	// to send after it), relative to the working directory. Required.
	// Clients must trust it: see `portcullis ca new`.
	Cert string `yaml:"cert"`
	// Key is the CA's private key (PEM: PKCS#8, SEC1 or PKCS#1; ECDSA,
	// RSA or Ed25519), as a secret reference: env:NAME, file:PATH or
	// vault:MOUNT/data/PATH#KEY. Required. Read once at start-up and on
	// reload.
	Key conf.SecretRef `yaml:"key"`
}

// Provision fills defaults; CASpec has none. It exists so that every Spec
// has the same life cycle.
func (s *CASpec) Provision() {}

// Validate records what is wrong with s, with paths relative to the
// inspect_ca block. It opens no file: CheckCert and Load do.
func (s *CASpec) Validate(r *conf.Report) {
	if s == nil {
		return
	}
	if s.Cert == "" {
		r.Errorf("cert", "required: the CA certificate file (make one with `portcullis ca new`)")
	}
	if !s.Key.Given() {
		r.Errorf("key", "required: a reference to the CA key, e.g. vault:secret/data/portcullis/inspect-ca#key or file:/etc/portcullis/inspect-ca.key")
	}
}

// CheckCert reads the Cert file and checks it is a CA valid at now that
// may sign certificates, without the key: what `portcullis check` can say
// before secrets are resolved.
func (s *CASpec) CheckCert(now time.Time) (*x509.Certificate, error) {
	data, err := readCert(s.Cert)
	if err != nil {
		return nil, err
	}
	certs, err := loadCerts(data)
	if err != nil {
		return nil, err
	}
	ca := certs[0]
	if err := checkCACert(ca, now); err != nil {
		return nil, err
	}
	return ca, nil
}

// Load reads the Cert file and builds the Authority with key, the value
// Key resolved to.
func (s *CASpec) Load(key secret.Value, o Options) (*Authority, error) {
	data, err := readCert(s.Cert)
	if err != nil {
		return nil, err
	}
	return New(data, []byte(key.Reveal()), o)
}

func readCert(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadCA, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCertFile+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read %s: %w", ErrBadCA, path, err)
	}
	if len(data) > maxCertFile {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes: is it a certificate?", ErrBadCA, path, maxCertFile)
	}
	return data, nil
}
