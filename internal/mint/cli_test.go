package mint

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCommandPermit(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key")
	var out, errb bytes.Buffer
	if code := Command([]string{"new", "--out-cert", cert, "--out-key", key, "--permit", "vendor.test", "--permit", "10.0.0.0/8"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	data, _ := os.ReadFile(cert)
	b, _ := pem.Decode(data)
	ca, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	var ips []string
	for _, n := range ca.PermittedIPRanges {
		ips = append(ips, n.String())
	}
	if d := cmp.Diff([]any{[]string{"vendor.test"}, []string{"10.0.0.0/8"}, true}, []any{ca.PermittedDNSDomains, ips, ca.PermittedDNSDomainsCritical}); d != "" {
		t.Errorf("constraints (-want +got):\n%s", d)
	}
	errb.Reset()
	if code := Command([]string{"new", "--out-cert", filepath.Join(dir, "b.pem"), "--out-key", filepath.Join(dir, "b.key"), "--permit", "*"}, &out, &errb); code != 2 {
		t.Errorf("bad --permit: exit %d, want 2", code)
	}
	if _, err := os.Stat(filepath.Join(dir, "b.key")); err == nil {
		t.Error("a key was written despite the bad --permit")
	}
	if code := Command([]string{"new", "--days", "0", "--out-cert", "x", "--out-key", "y"}, &out, &errb); code != 2 {
		t.Errorf("--days 0: exit %d, want 2", code)
	}
	out.Reset()
	if code := Command([]string{"new", "--help"}, &out, &errb); code != 0 || !bytes.Contains(out.Bytes(), []byte("--permit")) {
		t.Errorf("--help: exit %d\n%s", code, out.String())
	}
}
