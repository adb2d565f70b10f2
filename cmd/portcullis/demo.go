package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/portcullis-dev/portcullis/internal/demo"
)

func runDemo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	exit := fs.Bool("exit", false, "exit after the tour (for scripts and tests)")
	listen := fs.String("listen", "127.0.0.1:8080", "gateway address for callers (127.0.0.1:0 picks a free port)")
	admin := fs.String("admin-listen", "127.0.0.1:9090", "admin address (127.0.0.1:0 picks a free port)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: portcullis demo [--exit] [--listen ADDR] [--admin-listen ADDR]\n\nStarts a fake vendor and the gateway on loopback, runs a guided tour\n(an allowed call with the credential injected, a refused route, an\nunauthenticated call, a path trick and an SSRF attempt), then keeps\nserving so you can try the printed curl commands. Needs no network.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := demo.Run(ctx, demo.Options{Stdout: stdout, Stderr: stderr, Exit: *exit, Listen: *listen, AdminListen: *admin}); err != nil {
		fmt.Fprintln(stderr, "portcullis demo:", err)
		if *listen == "127.0.0.1:8080" {
			fmt.Fprintln(stderr, "If a port is in use, try: portcullis demo --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0")
		}
		return 1
	}
	return 0
}
