package main

// Inspect mode (issue 17): the cost of an inspected tunnel against a plain
// one. inspect.sh runs the binary with two integrations on one TLS vendor —
// one plain, one with proxy.inspect — and measures, for each, the set-up
// rate (CONNECT, TLS handshake, one GET, close) and the request rate inside
// open tunnels (keep-alive GETs over -conns tunnels):
//
//	forward-bench inspect vendor -listen ADDR -ca-out FILE     HTTPS vendor, its CA written to FILE
//	forward-bench inspect load -mode setup|requests -ca FILE ...  load generator, one JSON line

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

func runInspect(args []string) error {
	if len(args) < 1 {
		return errors.New("usage: forward-bench inspect vendor|load [flags]")
	}
	switch args[0] {
	case "vendor":
		return runTLSVendor(args[1:])
	case "load":
		return runInspectLoad(args[1:])
	}
	return fmt.Errorf("unknown inspect command %q", args[0])
}

// runTLSVendor serves the set-up benchmark's tiny JSON answer over TLS
// with a certificate for localhost and 127.0.0.1 from a CA made at start,
// whose certificate it writes to -ca-out (the gateway's egress.ca_file,
// and what plain-tunnel clients trust).
func runTLSVendor(args []string) error {
	fs := flag.NewFlagSet("inspect vendor", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:18083", "HTTPS address")
	caOut := fs.String("ca-out", "", "write the vendor's CA certificate here")
	_ = fs.Parse(args)
	cert, caPEM, err := vendorCert()
	if err != nil {
		return err
	}
	if *caOut != "" {
		if err := os.WriteFile(*caOut, caPEM, 0o644); err != nil {
			return err
		}
	}
	body := []byte(`{"ok":true}`)
	srv := &http.Server{
		Addr:              *listen,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(body)
		}),
	}
	return srv.ListenAndServeTLS("", "")
}

// vendorCert makes a throwaway CA and a leaf for localhost and 127.0.0.1.
func vendorCert() (tls.Certificate, []byte, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bench vendor CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caTmpl, &key.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), nil
}

type inspectLoad struct {
	loadConfig
	path string
	tls  *tls.Config
}

func runInspectLoad(args []string) error {
	fs := flag.NewFlagSet("inspect load", flag.ExitOnError)
	mode := fs.String("mode", "setup", "setup: CONNECT + TLS + one GET + close per cycle; requests: keep-alive GETs inside -conns tunnels")
	label := fs.String("label", "", "the via field of the result (default: the proxy address)")
	caFile := fs.String("ca", "", "the CA file the client trusts (the vendor's for a plain tunnel, the inspect CA's for an inspected one)")
	var c inspectLoad
	fs.StringVar(&c.proxy, "proxy", "", "proxy host:port")
	fs.StringVar(&c.target, "target", "localhost:18083", "vendor host:port (the CONNECT target and TLS server name)")
	fs.StringVar(&c.auth, "auth", "", "caller:token for Proxy-Authorization")
	fs.StringVar(&c.path, "path", "/v1/things", "path of each GET")
	fs.IntVar(&c.conns, "conns", 32, "concurrent connections")
	fs.DurationVar(&c.duration, "duration", 5*time.Second, "measured time")
	fs.DurationVar(&c.warmup, "warmup", time.Second, "unmeasured time before")
	_ = fs.Parse(args)
	pemData, err := os.ReadFile(*caFile)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemData) {
		return fmt.Errorf("no certificate in %s", *caFile)
	}
	host, _, err := net.SplitHostPort(c.target)
	if err != nil {
		return err
	}
	// No session cache: every set-up is a full handshake, as for a client
	// process that opens one tunnel. HTTP/1.1 both ways, so the plain
	// tunnel (to a vendor that speaks h2) and the inspected one compare
	// like with like.
	c.tls = &tls.Config{RootCAs: pool, ServerName: host, NextProtos: []string{"http/1.1"}}
	var res loadResult
	switch *mode {
	case "setup":
		if err := c.cycle(); err != nil {
			return fmt.Errorf("first cycle: %w", err)
		}
		res, err = measure(c.loadConfig, "setup", func(int) func() error { return c.cycle }, false)
	case "requests":
		res, err = c.requests()
	default:
		err = fmt.Errorf("unknown mode %q", *mode)
	}
	if err != nil {
		return err
	}
	res.Via = *label
	if res.Via == "" {
		res.Via = c.proxy
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// openTLS opens a tunnel and runs the TLS handshake inside it.
func (c inspectLoad) openTLS() (*tls.Conn, *bufio.Reader, error) {
	conn, br, err := c.open()
	if err != nil {
		return nil, nil, err
	}
	if br.Buffered() > 0 {
		conn.Close()
		return nil, nil, errors.New("bytes after the CONNECT answer")
	}
	tc := tls.Client(conn, c.tls)
	_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tc.Handshake(); err != nil {
		conn.Close()
		return nil, nil, err
	}
	_ = tc.SetDeadline(time.Time{})
	return tc, bufio.NewReaderSize(tc, 4096), nil
}

// get sends one GET on an open TLS connection and reads the answer.
func (c inspectLoad) get(tc *tls.Conn, br *bufio.Reader, last bool) error {
	// A stuck answer is an error, not a load generator that never ends.
	_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
	req := "GET " + c.path + " HTTP/1.1\r\nHost: " + c.target + "\r\nAuthorization: Bearer sk_dummy\r\n"
	if last {
		req += "Connection: close\r\n"
	}
	if _, err := io.WriteString(tc, req+"\r\n"); err != nil {
		return err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New(resp.Status)
	}
	return err
}

func (c inspectLoad) cycle() error {
	tc, br, err := c.openTLS()
	if err != nil {
		return err
	}
	defer tc.Close()
	return c.get(tc, br, true)
}

// requests measures keep-alive GETs inside -conns open tunnels, one
// goroutine per tunnel.
func (c inspectLoad) requests() (loadResult, error) {
	ops := make([]func() error, c.conns)
	for i := range ops {
		tc, br, err := c.openTLS()
		if err != nil {
			return loadResult{}, err
		}
		defer tc.Close()
		ops[i] = func() error { return c.get(tc, br, false) }
	}
	if err := ops[0](); err != nil {
		return loadResult{}, fmt.Errorf("first request: %w", err)
	}
	return measure(c.loadConfig, "requests", func(i int) func() error { return ops[i] }, true)
}

// measure runs opFor(i) from -conns goroutines for warmup+duration and
// reports the rate and latency of the measured part. With stopOnError a
// goroutine stops at its first error (its tunnel is gone).
func measure(c loadConfig, mode string, opFor func(int) func() error, stopOnError bool) (loadResult, error) {
	start := time.Now()
	measureFrom := start.Add(c.warmup)
	end := measureFrom.Add(c.duration)
	var errs, total atomic.Int64
	lat := make([][]time.Duration, c.conns)
	var wg sync.WaitGroup
	for i := range c.conns {
		op := opFor(i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				t0 := time.Now()
				if t0.After(end) {
					return
				}
				err := op()
				if err == nil {
					total.Add(1)
				}
				if t0.Before(measureFrom) {
					continue
				}
				if err != nil {
					errs.Add(1)
					if stopOnError {
						return
					}
					continue
				}
				lat[i] = append(lat[i], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	return summarize(mode, mode, lat, total.Load(), errs.Load(), c.duration)
}
