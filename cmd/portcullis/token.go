package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/portcullis-dev/portcullis/internal/identity"
)

func runToken(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "new" {
		fmt.Fprintln(stderr, "Usage: portcullis token new --caller NAME")
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return 0
		}
		return 2
	}
	fs := flag.NewFlagSet("token new", flag.ContinueOnError)
	fs.SetOutput(stderr)
	caller := fs.String("caller", "", "caller name the token is for (required)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: portcullis token new --caller NAME\n\nPrints a new random caller token (once: store it in the caller's secret\nstore) and the sha256 hash to put under callers.NAME.tokens.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		return flagExit(err)
	}
	if *caller == "" {
		fs.Usage()
		return 2
	}
	tok, hash, err := identity.NewToken()
	if err != nil {
		fmt.Fprintln(stderr, "portcullis:", err)
		return 1
	}
	fmt.Fprintf(stdout, "token:  %s\n", tok)
	fmt.Fprintf(stdout, "config: callers.%s.tokens: [\"%s\"]\n", *caller, hash)
	fmt.Fprintln(stdout, "\nThe token is shown once. Give it to the caller as a secret; only the hash goes in the config.")
	return 0
}
