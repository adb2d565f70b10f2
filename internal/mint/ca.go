package mint

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Defaults of CAOptions.
const (
	DefaultCAName     = "Portcullis inspect CA"
	DefaultCAValidity = 365 * 24 * time.Hour
)

// CAOptions describe a CA for NewCA.
type CAOptions struct {
	// Name is the CA's common name. Default "Portcullis inspect CA".
	Name string
	// Validity is how long the CA is valid from Now. Default 365 days.
	Validity time.Duration
	// Now is the issue time. Default the process clock.
	Now time.Time
	// Permit, when not empty, limits the CA with X.509 name constraints
	// to these DNS domains (a domain covers its subdomains) and IP
	// addresses or CIDR ranges: clients refuse any certificate it signs
	// for another name, so a stolen key cannot impersonate the rest of
	// the internet. With no IP entry, every IP address is excluded.
	// Default empty: unconstrained.
	Permit []string
}

// NewCA makes a CA for inspect mode: an ECDSA P-256 key and a self-signed
// certificate that may sign only end-entity certificates (path length 0),
// valid from an hour before Now (for clients whose clock is behind). It
// returns the certificate and the PKCS#8 key, both PEM.
func NewCA(o CAOptions) (certPEM, keyPEM []byte, err error) {
	if o.Name == "" {
		o.Name = DefaultCAName
	}
	if o.Validity == 0 {
		o.Validity = DefaultCAValidity
	}
	if o.Validity < 0 {
		return nil, nil, errors.New("mint: CA validity must be positive")
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("mint: CA key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, serialLimit)
	if err != nil {
		return nil, nil, fmt.Errorf("mint: serial: %w", err)
	}
	serial.Add(serial, bigOne)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: o.Name, Organization: []string{"Portcullis"}},
		NotBefore:             o.Now.Add(-time.Hour),
		NotAfter:              o.Now.Add(o.Validity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	if err := constrain(tmpl, o.Permit); err != nil {
		return nil, nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("mint: CA certificate: %w", err)
	}
	p8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("mint: CA key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}), nil
}

// ErrExists: WriteCA found a file at a path and force was not set.
var ErrExists = errors.New("file exists (pass --force to overwrite)")

// WriteCA writes certPEM to certPath (mode 0644) and keyPEM to keyPath
// (mode 0600). Without force it refuses, before writing anything, if
// either path exists; with force it replaces them, atomically each.
func WriteCA(certPath, keyPath string, certPEM, keyPEM []byte, force bool) error {
	if certPath == "" || keyPath == "" {
		return errors.New("mint: both the certificate and the key path are needed")
	}
	if a, b := filepath.Clean(certPath), filepath.Clean(keyPath); a == b {
		return fmt.Errorf("mint: the certificate and the key must go to different files (both %s)", a)
	}
	if !force {
		for _, p := range []string{certPath, keyPath} {
			if _, err := os.Lstat(p); err == nil {
				return fmt.Errorf("%s: %w", p, ErrExists)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	// The key first: a certificate without its key is useless, a key
	// without its certificate is at least not half-installed.
	if err := writeFile(keyPath, keyPEM, 0o600, force); err != nil {
		return err
	}
	return writeFile(certPath, certPEM, 0o644, force)
}

// writeFile writes data to path with exactly mode perm (not masked by the
// umask's group/other bits beyond perm). Without force it fails if path
// exists; with force it writes a temporary file next to path and renames
// it over.
func writeFile(path string, data []byte, perm fs.FileMode, force bool) (err error) {
	var f *os.File
	if force {
		f, err = os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	} else {
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	}
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s: %w", path, ErrExists)
		}
		return err
	}
	name := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(name)
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if force {
		return os.Rename(name, path)
	}
	return nil
}

// constrain adds critical name constraints for permit to tmpl.
func constrain(tmpl *x509.Certificate, permit []string) error {
	if len(permit) == 0 {
		return nil
	}
	for _, p := range permit {
		if _, n, err := net.ParseCIDR(p); err == nil {
			tmpl.PermittedIPRanges = append(tmpl.PermittedIPRanges, n)
			continue
		}
		if ip := net.ParseIP(p); ip != nil {
			bits := 128
			if v4 := ip.To4(); v4 != nil {
				ip, bits = v4, 32
			}
			tmpl.PermittedIPRanges = append(tmpl.PermittedIPRanges, &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)})
			continue
		}
		name, _, err := canonical(strings.TrimPrefix(p, "*."))
		if err != nil || strings.HasPrefix(p, ".") {
			return fmt.Errorf("mint: permit %q: want a DNS domain, an IP address or a CIDR range", p)
		}
		tmpl.PermittedDNSDomains = append(tmpl.PermittedDNSDomains, name)
	}
	if len(tmpl.PermittedIPRanges) == 0 {
		_, all4, _ := net.ParseCIDR("0.0.0.0/0")
		_, all6, _ := net.ParseCIDR("::/0")
		tmpl.ExcludedIPRanges = []*net.IPNet{all4, all6}
	}
	tmpl.PermittedDNSDomainsCritical = true
	return nil
}
