// Command upstream is the benchmark's vendor: a loopback HTTP server that
// answers every request with the same ~200-byte JSON body. With -delay it
// holds each call that long first (the 10,000-concurrent-calls test).
//
// When BENCH_VENDOR_KEY is set, a request without exactly
// "Authorization: Bearer $BENCH_VENDOR_KEY" gets 401, so a proxy that failed
// to inject the credential shows up as errors in the load generator, not as
// a fast benchmark.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

// body is the vendor's answer: a small JSON object like a payments API's.
var body = []byte(`{"id":"ch_3PZx9bench00042","object":"charge","amount":1999,"currency":"eur",` +
	`"status":"succeeded","created":1767225600,"description":"benchmark fixture",` +
	`"metadata":{"order":"bench-0001"},"livemode":false}` + "\n")

func main() {
	listen := flag.String("listen", "127.0.0.1:19081", "address to serve on (loopback)")
	delay := flag.Duration("delay", 0, "hold every call this long before answering")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(*listen, *delay, os.Getenv("BENCH_VENDOR_KEY"), log); err != nil {
		log.Error("upstream failed", "error", err)
		os.Exit(1)
	}
}

func run(listen string, delay time.Duration, key string, log *slog.Logger) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		Handler:           handler(delay, key),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       5 * time.Minute,
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	log.Info("upstream serving", "listen", ln.Addr().String(), "delay", delay.String(), "checks_key", key != "")
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func handler(delay time.Duration, key string) http.Handler {
	want := "Bearer " + key
	length := strconv.Itoa(len(body))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if key != "" && r.Header.Get("Authorization") != want {
			http.Error(w, `{"error":"invalid api key"}`, http.StatusUnauthorized)
			return
		}
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		h := w.Header()
		h["Content-Type"] = []string{"application/json"}
		h["Content-Length"] = []string{length}
		_, _ = w.Write(body)
	})
}
