package egress

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// vendorTLS starts an httptest TLS server (self-signed, IP SAN 127.0.0.1)
// and returns it with a PEM file holding its certificate.
func vendorTLS(t *testing.T, serverTLS *tls.Config, http2 bool) (*httptest.Server, string) {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "HTTP/%d", r.ProtoMajor)
	}))
	srv.TLS = serverTLS
	// Handshake failures are the point of several tests; keep them out of the output.
	srv.Config.ErrorLog = slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)
	srv.EnableHTTP2 = http2
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caFile := filepath.Join(t.TempDir(), "vendor-ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return srv, caFile
}

func loopbackConfig(srv *httptest.Server) Config {
	return Config{Allow: []string{srv.Listener.Addr().String()}, AllowPrivate: true}
}

func get(t *testing.T, p *Policy, url string) (string, error) {
	t.Helper()
	tr := p.Transport()
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestTLSVerification(t *testing.T) {
	srv, caFile := vendorTLS(t, nil, false)
	goodPin := SPKIPin(srv.Certificate())
	otherPin := "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=" // sha256 of nothing

	tests := []struct {
		name    string
		caFile  string
		pins    []string
		wantErr func(error) bool // nil: success
	}{
		{"ca-file-trusts-private-vendor", caFile, nil, nil},
		{"system-roots-refuse-private-vendor", "", nil, func(err error) bool {
			var ua x509.UnknownAuthorityError
			return errors.As(err, &ua)
		}},
		{"pin-matches", caFile, []string{goodPin}, nil},
		{"one-of-several-pins-matches", caFile, []string{otherPin, goodPin}, nil},
		{"pin-mismatch", caFile, []string{otherPin}, func(err error) bool { return errors.Is(err, ErrPinMismatch) }},
		{"pin-does-not-replace-chain-verification", "", []string{goodPin}, func(err error) bool {
			var ua x509.UnknownAuthorityError
			return errors.As(err, &ua)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := loopbackConfig(srv)
			cfg.CAFile, cfg.PinSPKI = tc.caFile, tc.pins
			body, err := get(t, mustPolicy(t, cfg), srv.URL)
			if tc.wantErr == nil {
				if err != nil || body != "HTTP/1" {
					t.Fatalf("got %q, %v; want HTTP/1, nil", body, err)
				}
				return
			}
			if err == nil {
				t.Fatal("request succeeded, want a TLS error")
			}
			if !tc.wantErr(err) {
				t.Fatalf("err = %v: wrong kind", err)
			}
			if errors.Is(err, ErrDenied) {
				t.Errorf("err = %v matches ErrDenied; TLS failures are not address denials", err)
			}
		})
	}
}

func TestTLSRefusesTLS11Server(t *testing.T) {
	srv, caFile := vendorTLS(t, &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}, false)

	// Control: the server really does speak TLS 1.1 to a client that accepts it.
	conn, err := tls.Dial("tcp", srv.Listener.Addr().String(), &tls.Config{
		MinVersion: tls.VersionTLS10,
		RootCAs:    mustPolicy(t, Config{CAFile: caFile}).roots,
	})
	if err != nil {
		t.Fatalf("control TLS 1.1 dial: %v", err)
	}
	if v := conn.ConnectionState().Version; v != tls.VersionTLS11 {
		t.Fatalf("control negotiated %s, want TLS 1.1", tls.VersionName(v))
	}
	conn.Close()

	cfg := loopbackConfig(srv)
	cfg.CAFile = caFile
	body, err := get(t, mustPolicy(t, cfg), srv.URL)
	if err == nil {
		t.Fatalf("request to a TLS 1.1 server succeeded (%q), want a protocol version error", body)
	}
	if !strings.Contains(err.Error(), "protocol version") {
		t.Errorf("err = %v, want a protocol version error", err)
	}
}

func TestTransportSpeaksHTTP2AndIgnoresProxyEnv(t *testing.T) {
	srv, caFile := vendorTLS(t, nil, true)
	// A proxy that does not exist: a transport honouring it would fail.
	t.Setenv("HTTPS_PROXY", "http://127.0.0.1:1")
	t.Setenv("HTTP_PROXY", "http://127.0.0.1:1")
	cfg := loopbackConfig(srv)
	cfg.CAFile = caFile
	body, err := get(t, mustPolicy(t, cfg), srv.URL)
	if err != nil || body != "HTTP/2" {
		t.Fatalf("got %q, %v; want HTTP/2, nil", body, err)
	}
}

func TestTransportIsFreshAndSized(t *testing.T) {
	p := mustPolicy(t, Config{Allow: []string{"api.example.com:443"}, PinSPKI: []string{"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="}})
	a, b := p.Transport(), p.Transport()
	if a == b || a == http.DefaultTransport || a.TLSClientConfig == b.TLSClientConfig {
		t.Fatal("Transport must return a new transport with its own TLS config each call")
	}
	if a.Proxy != nil {
		t.Error("Proxy must be nil")
	}
	if a.MaxIdleConnsPerHost != 256 {
		t.Errorf("MaxIdleConnsPerHost = %d, want 256", a.MaxIdleConnsPerHost)
	}
	if a.TLSHandshakeTimeout != DefaultTLSHandshakeTimeout {
		t.Errorf("TLSHandshakeTimeout = %v, want %v", a.TLSHandshakeTimeout, DefaultTLSHandshakeTimeout)
	}
	c := a.TLSClientConfig
	if c.MinVersion != tls.VersionTLS12 || c.InsecureSkipVerify || c.VerifyConnection == nil {
		t.Errorf("TLS config: MinVersion=%x InsecureSkipVerify=%v VerifyConnection set=%v; want TLS 1.2, false, true",
			c.MinVersion, c.InsecureSkipVerify, c.VerifyConnection != nil)
	}
	// Changing a returned config must not leak into the policy.
	p.TLSConfig().MinVersion = tls.VersionTLS10
	if got := p.TLSConfig().MinVersion; got != tls.VersionTLS12 {
		t.Errorf("TLSConfig().MinVersion = %x after a caller changed a copy, want TLS 1.2", got)
	}
}

// TestSPKIPinMatchesOpenSSLRecipe checks SPKIPin against the documented
// recipe (openssl x509 -pubkey | openssl pkey -pubin -outform der |
// openssl dgst -sha256 -binary | base64), done here with the standard
// library on the re-marshalled public key.
func TestSPKIPinMatchesOpenSSLRecipe(t *testing.T) {
	srv, _ := vendorTLS(t, nil, false)
	cert := srv.Certificate()
	der, err := x509.MarshalPKIXPublicKey(cert.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	want := base64.StdEncoding.EncodeToString(sum[:])
	if got := SPKIPin(cert); got != want {
		t.Errorf("SPKIPin = %q, want %q", got, want)
	}
}
