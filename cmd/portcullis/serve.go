package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/internal/server"
)

func runServe(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "portcullis.yaml", "config file (YAML)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: portcullis serve --config FILE\n\nRuns the gateway. SIGHUP or a change to the file reloads the config;\na bad new config is refused and the old one keeps serving.\nSIGINT/SIGTERM drain in-flight calls (server.shutdown_grace) and exit.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	reload := make(chan struct{}, 1)
	go func() {
		for range hup {
			select {
			case reload <- struct{}{}:
			default:
			}
		}
	}()
	err := server.Run(ctx, server.Options{ConfigPath: *path, LogOutput: stderr, Reload: reload})
	if err != nil {
		var ps *config.Problems
		if errors.As(err, &ps) {
			printProblems(stderr, ps.File, ps.List)
		} else {
			fmt.Fprintln(stderr, "portcullis:", err)
		}
		return 1
	}
	return 0
}

func flagExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}

func printProblems(w io.Writer, file string, list []config.Problem) {
	for _, p := range list {
		loc := file
		if p.Line > 0 {
			loc = fmt.Sprintf("%s:%d", file, p.Line)
		}
		path := ""
		if p.Path != "" {
			path = p.Path + ": "
		}
		fmt.Fprintf(w, "%s: %s: %s%s\n", loc, p.Severity, path, p.Msg)
	}
}
