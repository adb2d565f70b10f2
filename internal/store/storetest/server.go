package storetest

import (
	"context"
	"net"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is a redis-server of a test's own, which the test may pause (a
// black hole: connections are accepted by the kernel, nothing answers),
// kill and start again on the same port. Tests that break Redis use one so
// that the shared test Redis (RedisURL) is never disturbed.
type Server struct {
	t    testing.TB
	addr string
	cmd  *exec.Cmd
}

// StartServer starts a redis-server on a free loopback port, without
// persistence, and stops it when t ends. It follows RedisURL's convention:
// without PORTCULLIS_REDIS_URL the test is skipped (or fails under
// PORTCULLIS_REQUIRE_SERVERS=1); scripts/start-redis.sh installs
// redis-server.
func StartServer(t testing.TB) *Server {
	t.Helper()
	RedisURL(t)
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server is not installed (scripts/start-redis.sh installs it): %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{t: t, addr: l.Addr().String()}
	_ = l.Close()
	s.Start()
	t.Cleanup(s.Kill)
	return s
}

// Addr is host:port; URL is redis://Addr/0.
func (s *Server) Addr() string { return s.addr }
func (s *Server) URL() string  { return "redis://" + s.addr + "/0" }

// Start (re)starts the server and waits until it answers PING.
func (s *Server) Start() {
	s.t.Helper()
	_, port, _ := net.SplitHostPort(s.addr)
	s.cmd = exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no")
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("redis-server: %v", err)
	}
	c := redis.NewClient(&redis.Options{Addr: s.addr, MaxRetries: -1})
	defer c.Close()
	for deadline := time.Now().Add(10 * time.Second); c.Ping(context.Background()).Err() != nil; {
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server on %s did not answer PING within 10s", s.addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Pause stops the server process (SIGSTOP): it keeps its port and its
// connections but answers nothing, like a host that went silent.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume lets a paused server run again (SIGCONT).
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

// Kill ends the server at once (SIGKILL, no goodbye to its clients); it may
// be started again with Start.
func (s *Server) Kill() {
	if s.cmd == nil || s.cmd.ProcessState != nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGCONT)
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
}

func (s *Server) signal(sig syscall.Signal) {
	s.t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("redis-server %s: %v", sig, err)
	}
}
