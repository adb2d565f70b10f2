package forward

import (
	"bytes"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/identity"
	"github.com/portcullis-dev/portcullis/internal/observe"
	"github.com/portcullis-dev/portcullis/internal/secret"
	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkConnectTunnel is one cycle of bench/forward's set-up benchmark
// in process: CONNECT to an IP literal with Basic authentication, one GET
// through the tunnel, close; through the whole chain (authentication,
// decision, limits, the egress dial guard, the gateway-listener check,
// metrics and one JSON log line through the scrubbing logger). The client
// and the vendor are raw sockets that allocate little, so allocs/op is
// mostly the proxy's (and net/http's server side). For a CPU profile:
//
//	go test -run '^$' -bench ConnectTunnel -cpuprofile cpu.out ./internal/forward/
func BenchmarkConnectTunnel(b *testing.B) {
	vendor := startRawVendor(b)
	tok, hash, err := identity.NewToken()
	if err != nil {
		b.Fatal(err)
	}
	callers, ins, err := parseTestConfig(`
callers:
  bench: {tokens: ["` + hash + `"]}
integrations:
  vendor:
    egress: {allow: ["` + vendor + `"], allow_cidrs: ["127.0.0.1/32"]}
    proxy: {mode: enforce, connect_callers: [bench], max_tunnels: 100000, idle_timeout: 30s}
`)
	if err != nil {
		b.Fatal(err)
	}
	auth, err := identity.New(callers)
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	p, err := New(ins, auth, Options{
		Logger:    observe.NewLogger(io.Discard, "info", "json", secret.NewScrubber()),
		Metrics:   NewMetrics(prometheus.NewRegistry()),
		SelfAddrs: func() []string { return []string{ln.Addr().String()} },
	})
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { _ = srv.Close(); p.Close() })

	connect := []byte("CONNECT " + vendor + " HTTP/1.1\r\nHost: " + vendor + "\r\nProxy-Authorization: Basic " +
		base64.StdEncoding.EncodeToString([]byte("bench:"+tok)) + "\r\n\r\n")
	get := []byte("GET / HTTP/1.1\r\nHost: " + vendor + "\r\nConnection: close\r\n\r\n")
	buf := make([]byte, 4096)
	proxy := ln.Addr().String()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := rawCycle(proxy, connect, get, buf); err != nil {
			b.Fatal(err)
		}
	}
}

// rawCycle is one CONNECT + GET + close with a raw socket.
func rawCycle(proxy string, connect, get, buf []byte) error {
	c, err := net.Dial("tcp", proxy)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Write(connect); err != nil {
		return err
	}
	n, err := readHead(c, buf)
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(buf[:n], []byte("HTTP/1.1 200 ")) {
		return &net.AddrError{Err: "CONNECT: " + strings.SplitN(string(buf[:n]), "\r\n", 2)[0]}
	}
	if _, err := c.Write(get); err != nil {
		return err
	}
	// The vendor answers and closes: read to EOF.
	total := 0
	for {
		m, err := c.Read(buf[total:])
		total += m
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	if !bytes.HasPrefix(buf[:total], []byte("HTTP/1.1 200 ")) {
		return &net.AddrError{Err: "GET: " + string(buf[:total])}
	}
	return nil
}

// readHead reads until the end of a response head (the proxy sends no
// body with 200 to CONNECT, and nothing before the client's next bytes).
func readHead(c net.Conn, buf []byte) (int, error) {
	n := 0
	for !bytes.Contains(buf[:n], []byte("\r\n\r\n")) {
		m, err := c.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// startRawVendor answers every connection's first request head with a
// fixed small response and closes: the vendor of BenchmarkConnectTunnel.
func startRawVendor(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\nConnection: close\r\n\r\n{\"ok\":true}")
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 1024)
				if _, err := readHead(c, buf); err == nil {
					_, _ = c.Write(resp)
				}
			}()
		}
	}()
	return ln.Addr().String()
}
