package server

import (
	"bytes"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/config"
)

// TestCapListener: past the cap, Accept waits until a connection closes;
// the connections keep *net.TCPConn's methods (CloseWrite for tunnels).
func TestCapListener(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := limitListener(raw, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 3)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	for range 3 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	first, second := <-accepted, <-accepted
	select {
	case <-accepted:
		t.Fatal("a third connection was accepted over max_conns 2")
	case <-time.After(200 * time.Millisecond):
	}
	if _, ok := first.(interface{ CloseWrite() error }); !ok {
		t.Error("capped connection lost CloseWrite")
	}
	first.Close()
	select {
	case c := <-accepted:
		c.Close()
	case <-time.After(10 * time.Second):
		t.Fatal("closing a connection did not let the waiting one in")
	}
	second.Close()
	ln.Close()
	for range accepted { // Accept returns once the listener is closed
	}
}

func TestCheckFDs(t *testing.T) {
	cfg := &config.Config{}
	cfg.Server.Limits = config.ListenerLimits{
		Caller: config.ListenerLimit{MaxConns: 100}, Admin: config.ListenerLimit{MaxConns: 10}, Webhook: config.ListenerLimit{MaxConns: 50},
	}
	tests := []struct {
		name     string
		limit    uint64
		webhook  bool
		wantErr  string
		wantWarn bool
	}{
		{"fits", 1000, true, "", false},
		{"outbound-tight", 300, true, "", true},
		{"caps-over-limit", 200, true, "caller 100 + admin 10 + webhook 50", false},
		{"no-webhook-listener-fits", 200, false, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			err := checkFDs(cfg, tt.webhook, tt.limit, slog.New(slog.NewTextHandler(&logs, nil)))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("unexpected refusal: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "ulimit -n")):
				t.Fatalf("refusal %v, want one naming %q and ulimit -n", err, tt.wantErr)
			}
			if got := strings.Contains(logs.String(), "open file limit is low"); got != tt.wantWarn {
				t.Errorf("warned %v, want %v: %s", got, tt.wantWarn, logs.String())
			}
		})
	}
}
