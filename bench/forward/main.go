// Command forward-bench measures the forward proxy (internal/forward):
// tunnel set-up rate (CONNECT, one plain GET through the tunnel, close) and
// bulk throughput through one tunnel, against a direct connection and
// against Stripe's Smokescreen. run.sh starts each server pinned to its own
// core and prints the table; this program is its parts:
//
//	forward-bench vendor -listen ADDR -bulk ADDR   HTTP vendor + raw byte source
//	forward-bench proxy  -config FILE -listen ADDR forward.Proxy as the binary serves it
//	forward-bench load   -mode setup|bulk ...      load generator, prints one JSON line
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/internal/forward"
	"github.com/portcullis-dev/portcullis/internal/identity"
	"github.com/portcullis-dev/portcullis/internal/observe"
	"github.com/portcullis-dev/portcullis/internal/secret"
	"github.com/prometheus/client_golang/prometheus"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: forward-bench vendor|proxy|load [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "vendor":
		err = runVendor(os.Args[2:])
	case "proxy":
		err = runProxy(os.Args[2:])
	case "load":
		err = runLoad(os.Args[2:])
	case "inspect":
		err = runInspect(os.Args[2:]) // inspect.go, inspect.sh
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "forward-bench:", err)
		os.Exit(1)
	}
}

// runVendor serves a tiny HTTP answer (the set-up benchmark's GET) and, on
// a second port, a raw TCP source that writes zeros until the reader
// closes (the bulk benchmark).
func runVendor(args []string) error {
	fs := flag.NewFlagSet("vendor", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:18081", "HTTP address")
	bulk := fs.String("bulk", "127.0.0.1:18082", "raw byte source address")
	_ = fs.Parse(args)

	src, err := net.Listen("tcp", *bulk)
	if err != nil {
		return err
	}
	go func() {
		buf := make([]byte, 256<<10)
		for {
			c, err := src.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				for {
					if _, err := c.Write(buf); err != nil {
						return
					}
				}
			}()
		}
	}()
	body := []byte(`{"ok":true}`)
	srv := &http.Server{
		Addr:              *listen,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(body)
		}),
	}
	return srv.ListenAndServe()
}

// runProxy serves forward.Proxy on a listener configured like the
// binary's caller listener, with authentication, the allowlist decision and
// one JSON log line per tunnel (through the gateway's scrubbing logger) all
// on. It exists so the benchmark does not depend on how cmd/portcullis
// wires the proxy; run.sh also measures the binary when it can.
func runProxy(args []string) error {
	fs := flag.NewFlagSet("proxy", flag.ExitOnError)
	cfgPath := fs.String("config", "", "portcullis config file")
	listen := fs.String("listen", "127.0.0.1:18080", "caller listener")
	logPath := fs.String("log", "", "tunnel log file (default stderr)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile here until SIGINT/SIGTERM")
	_ = fs.Parse(args)
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		go func() {
			<-sig
			pprof.StopCPUProfile()
			f.Close()
			os.Exit(0)
		}()
	}

	cfg, _, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	out := io.Writer(os.Stderr)
	if *logPath != "" {
		f, err := os.Create(*logPath)
		if err != nil {
			return err
		}
		defer f.Close()
		out = f
	}
	// Buffered as cmd/portcullis serve buffers its log (internal/server).
	logOut := observe.NewBufferedWriter(out, 100*time.Millisecond)
	defer logOut.Close()
	logger := observe.NewLogger(logOut, "info", "json", secret.NewScrubber())
	auth, err := identity.New(cfg.Callers)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	p, err := forward.New(cfg.ForwardIntegrations(), auth, forward.Options{
		Logger:    logger,
		Metrics:   forward.NewMetrics(prometheus.NewRegistry()),
		SelfAddrs: func() []string { return []string{ln.Addr().String()} },
	})
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !forward.IsProxyRequest(r) {
				http.NotFound(w, r)
				return
			}
			p.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
	defer func() { _ = p.Shutdown(context.Background()) }()
	return srv.Serve(ln)
}
