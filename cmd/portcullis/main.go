// Command portcullis is the gateway for an organisation's outbound calls to
// third-party APIs. This file only parses flags and dispatches; the work is
// in internal/.
package main

import (
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/portcullis-dev/portcullis/internal/audit"
	"github.com/portcullis-dev/portcullis/internal/chaos"
	"github.com/portcullis-dev/portcullis/internal/drill"
	"github.com/portcullis-dev/portcullis/internal/gateway"
	"github.com/portcullis-dev/portcullis/internal/lint"
	"github.com/portcullis-dev/portcullis/internal/server"
)

// version is set with -ldflags "-X main.version=…".
var version = "dev"

type command struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

func commands() map[string]command {
	return map[string]command{
		"serve":   {"run the gateway (SIGHUP or a config file change: hot reload)", runServe},
		"check":   {"validate a config and lint it for security problems (text, json, sarif)", lint.NewResolvingCommand(gateway.Validate, server.ResolveSecrets)},
		"audit":   {"audit credentials, access, vendor reviews and SLAs; audit sdks PATH...", audit.Command},
		"chaos":   {"chaos start|stop|list: fault injection through the admin API", chaos.Command},
		"drill":   {"run a drill scenario against a running gateway and report what engaged", drill.Command},
		"token":   {"token new --caller NAME: print a new caller token and its config hash", runToken},
		"ca":      {"ca new --out-cert FILE --out-key FILE: make a CA for proxy inspect mode", runCA},
		"demo":    {"a self-contained tour on loopback: fake vendor + gateway", runDemo},
		"webhook": {"webhook sign|verify: helpers for testing webhook senders and receivers", runWebhook},
		"version": {"print the version", func(_ []string, out, _ io.Writer) int { fmt.Fprintln(out, "portcullis", version); return 0 }},
	}
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout, cmds)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "portcullis: unknown command %q\n\n", args[0])
		usage(stderr, cmds)
		return 2
	}
	return c.run(args[1:], stdout, stderr)
}

func usage(w io.Writer, cmds map[string]command) {
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(w, "Portcullis — a gateway for outbound calls to third-party APIs.")
	fmt.Fprintln(w, "\nUsage: portcullis COMMAND [flags]   (portcullis COMMAND --help for its flags)")
	fmt.Fprintln(w, "\nCommands:")
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nStart with: portcullis demo")
}
