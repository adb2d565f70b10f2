package forward

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// limitsConfig tunnels billing to a TCP echo server ($EPORT) under limits.
const limitsConfig = `
version: 1
callers:
  billing: {tokens: ["$HASH_billing"]}
  support: {tokens: ["$HASH_support"]}
integrations:
  echo:
    upstream: https://vendor.test:$EPORT
    egress: {allow: ["vendor.test:$EPORT"], allow_cidrs: ["127.0.0.1/32"]}
    proxy:
      mode: enforce
      connect_callers: [billing, support]
      max_tunnels: 2
      new_per_second: 3/s
      idle_timeout: $IDLE
      max_lifetime: $LIFE
`

func newEchoEnv(t *testing.T, idle, life string) (*fixture, string) {
	t.Helper()
	port := startEcho(t)
	f := newFixture(t, newPKI(t), startDNS(t, testRecords), limitsConfig,
		map[string]string{"$EPORT": port, "$IDLE": idle, "$LIFE": life})
	return f, "vendor.test:" + port
}

// echoOnce writes msg through the tunnel and reads it back.
func echoOnce(t *testing.T, res connectResult, msg string) {
	t.Helper()
	if _, err := io.WriteString(res.conn, msg); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(msg))
	_ = res.conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.ReadFull(res.br, buf); err != nil || string(buf) != msg {
		t.Fatalf("echo: %q, %v", buf, err)
	}
	_ = res.conn.SetReadDeadline(time.Time{})
}

func TestConcurrentTunnelLimit(t *testing.T) {
	f, target := newEchoEnv(t, "10s", "1m")
	auth := basic("billing", f.tokens["billing"])
	a := f.connect(t, target, auth)
	b := f.connect(t, target, auth)
	if a.resp.StatusCode != 200 || b.resp.StatusCode != 200 {
		t.Fatalf("first two tunnels: %d %d", a.resp.StatusCode, b.resp.StatusCode)
	}
	c := f.connect(t, target, auth)
	if c.resp.StatusCode != 503 || c.code() != "overloaded" {
		t.Fatalf("third tunnel: status %d code %q", c.resp.StatusCode, c.code())
	}
	// The limit is per caller: support still gets in.
	if d := f.connect(t, target, basic("support", f.tokens["support"])); d.resp.StatusCode != 200 {
		t.Fatalf("another caller: status %d", d.resp.StatusCode)
	}
	// Closing a tunnel frees its slot.
	a.conn.Close()
	f.clock.Advance(time.Second) // refill the new-tunnel rate
	deadline := time.Now().Add(3 * time.Second)
	for {
		d := f.connect(t, target, auth)
		if d.resp.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot not released: status %d code %q", d.resp.StatusCode, d.code())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestNewTunnelRateLimit(t *testing.T) {
	f, target := newEchoEnv(t, "10s", "1m")
	auth := basic("billing", f.tokens["billing"])
	for i := 0; i < 3; i++ { // burst: one second's worth
		res := f.connect(t, target, auth)
		if res.resp.StatusCode != 200 {
			t.Fatalf("tunnel %d: status %d code %q", i, res.resp.StatusCode, res.code())
		}
		res.conn.Close()
		waitActive(t, f, "echo", "billing", 0)
	}
	res := f.connect(t, target, auth)
	if res.resp.StatusCode != 429 || res.code() != "rate_limited" || res.resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("fourth tunnel in the same second: status %d code %q Retry-After %q",
			res.resp.StatusCode, res.code(), res.resp.Header.Get("Retry-After"))
	}
	f.clock.Advance(400 * time.Millisecond) // 1.2 tokens back
	if res := f.connect(t, target, auth); res.resp.StatusCode != 200 {
		t.Fatalf("after the refill: status %d code %q", res.resp.StatusCode, res.code())
	}
}

func waitActive(t *testing.T, f *fixture, integration, caller string, want float64) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for metricValue(f.metrics.Active.WithLabelValues(integration, caller)) != want {
		if time.Now().After(deadline) {
			t.Fatalf("active tunnels never reached %v", want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestIdleTimeoutClosesQuietTunnels(t *testing.T) {
	f, target := newEchoEnv(t, "200ms", "1m")
	res := f.connect(t, target, basic("billing", f.tokens["billing"]))
	if res.resp.StatusCode != 200 {
		t.Fatalf("status %d", res.resp.StatusCode)
	}
	// Traffic every 80 ms keeps it open well past the idle timeout.
	for i := 0; i < 6; i++ {
		echoOnce(t, res, "ping")
		time.Sleep(80 * time.Millisecond)
	}
	start := time.Now()
	_ = res.conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, err := res.br.ReadByte()
	quiet := time.Since(start)
	if !errors.Is(err, io.EOF) {
		t.Fatalf("read after going quiet: %v, want EOF from the proxy", err)
	}
	// Between idle_timeout and 1.25×idle_timeout, minus the 80 ms already
	// spent quiet, plus scheduling slack.
	if quiet < 100*time.Millisecond || quiet > time.Second {
		t.Errorf("closed %v after going quiet, want about 200ms", quiet)
	}
	line := f.waitLog(t, target)
	if line[KeyCloseReason] != CloseIdle || line["bytes_in"] != float64(24) || line["bytes_out"] != float64(24) {
		t.Errorf("close_reason %v bytes_in %v bytes_out %v, want idle_timeout 24 24",
			line[KeyCloseReason], line["bytes_in"], line["bytes_out"])
	}
}

func TestMaxLifetimeClosesBusyTunnels(t *testing.T) {
	f, target := newEchoEnv(t, "10s", "300ms")
	res := f.connect(t, target, basic("billing", f.tokens["billing"]))
	if res.resp.StatusCode != 200 {
		t.Fatalf("status %d", res.resp.StatusCode)
	}
	start := time.Now()
	var err error
	for time.Since(start) < 3*time.Second {
		if _, err = io.WriteString(res.conn, "x"); err != nil {
			break
		}
		_ = res.conn.SetReadDeadline(time.Now().Add(time.Second))
		if _, err = res.br.ReadByte(); err != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(start)
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("tunnel still open or stalled after %v: %v", took, err)
	}
	if took < 250*time.Millisecond || took > 1500*time.Millisecond {
		t.Errorf("busy tunnel closed after %v, want about 300ms", took)
	}
	if line := f.waitLog(t, target); line[KeyCloseReason] != CloseLifetime {
		t.Errorf("close_reason %v, want max_lifetime", line[KeyCloseReason])
	}
}

func TestBytesCountedAndHalfClose(t *testing.T) {
	f, target := newEchoEnv(t, "10s", "1m")
	res := f.connect(t, target, basic("billing", f.tokens["billing"]))
	if res.resp.StatusCode != 200 {
		t.Fatalf("status %d", res.resp.StatusCode)
	}
	payload := strings.Repeat("0123456789", 100_000) // 1 MB
	go func() {
		_, _ = io.WriteString(res.conn, payload)
		_ = res.conn.(*net.TCPConn).CloseWrite() // the caller is done sending
	}()
	got, err := io.ReadAll(res.br)
	if err != nil || len(got) != len(payload) {
		t.Fatalf("read back %d bytes, %v; want %d", len(got), err, len(payload))
	}
	line := f.waitLog(t, target)
	if line["bytes_in"] != float64(len(payload)) || line["bytes_out"] != float64(len(payload)) || line[KeyCloseReason] != CloseEOF {
		t.Errorf("bytes_in %v bytes_out %v close_reason %v", line["bytes_in"], line["bytes_out"], line[KeyCloseReason])
	}
	if got := metricValue(f.metrics.Bytes.WithLabelValues("echo", "billing", "in")); got != float64(len(payload)) {
		t.Errorf("portcullis_proxy_tunnel_bytes_total{in} = %v", got)
	}
}

func TestShutdownEndsTunnels(t *testing.T) {
	f, target := newEchoEnv(t, "10s", "1m")
	res := f.connect(t, target, basic("billing", f.tokens["billing"]))
	if res.resp.StatusCode != 200 {
		t.Fatalf("status %d", res.resp.StatusCode)
	}
	echoOnce(t, res, "hello")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := f.proxy.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want the deadline (a tunnel was open)", err)
	}
	_ = res.conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := res.br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Errorf("tunnel after Shutdown: %v, want EOF", err)
	}
	if line := f.waitLog(t, target); line[KeyCloseReason] != CloseShutdown {
		t.Errorf("close_reason %v, want shutdown", line[KeyCloseReason])
	}
}
