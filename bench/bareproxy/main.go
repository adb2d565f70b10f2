// Command bareproxy is the floor for a Go proxy in the benchmark: an
// httputil.ReverseProxy (Rewrite, not Director) that only sets
// "Authorization: Bearer $BENCH_VENDOR_KEY" on the way to one upstream. No
// policy, no logging, no limits: whatever Portcullis costs above this is the
// price of its checks.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:19082", "address to serve on (loopback)")
	upstream := flag.String("upstream", "http://127.0.0.1:19081", "upstream base URL")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	key := os.Getenv("BENCH_VENDOR_KEY")
	if key == "" {
		log.Error("BENCH_VENDOR_KEY is not set")
		os.Exit(2)
	}
	if err := run(*listen, *upstream, key, log); err != nil {
		log.Error("bareproxy failed", "error", err)
		os.Exit(1)
	}
}

func newProxy(upstream *url.URL, key string) *httputil.ReverseProxy {
	auth := []string{"Bearer " + key}
	// The same connection pool shape as Portcullis's egress transport, so
	// the two differ only in what runs per request.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 1024
	tr.MaxIdleConnsPerHost = 256
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(upstream)
			pr.Out.Header["Authorization"] = auth
		},
		Transport: tr,
	}
}

func run(listen, upstream, key string, log *slog.Logger) error {
	up, err := url.Parse(upstream)
	if err != nil {
		return fmt.Errorf("upstream: %w", err)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: newProxy(up, key), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 5 * time.Minute}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	log.Info("bareproxy serving", "listen", ln.Addr().String(), "upstream", up.Redacted())
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
