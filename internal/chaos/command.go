package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/internal/secret"
)

const commandUsage = `Usage:
  portcullis chaos start --integration NAME --kind KIND [--route TEMPLATE] [--probability P]
                         [--latency D] [--status N] [--size BYTES] [--for D] [admin flags]
  portcullis chaos stop  (--id ID | --integration NAME | --all) [admin flags]
  portcullis chaos list  [--format table|json] [admin flags]

Starts, stops and lists fault injection on a running gateway through its
admin API. The gateway refuses faults unless its config has chaos.enabled:
true (test environments only). Kinds: ` + "latency, error, reset, hang, truncate, corrupt, oversize, schema, revoked" + `.
A fault lasts --for (default 10m, at most 24h).

Admin flags:
  --admin URL        admin listener (default http://127.0.0.1:9090)
  --token-env NAME   environment variable holding the admin token
                     (default PORTCULLIS_ADMIN_TOKEN)

Exit status: 0 done; 1 the gateway refused or could not be reached; 2 bad usage.
`

// Command runs `portcullis chaos start|stop|list` and returns the exit status.
func Command(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, commandUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	sub, rest := args[0], args[1:]
	fs := flag.NewFlagSet("chaos "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, commandUsage) }
	admin := fs.String("admin", "http://127.0.0.1:9090", "admin listener base URL")
	tokenEnv := fs.String("token-env", "PORTCULLIS_ADMIN_TOKEN", "environment variable holding the admin token")
	var run func(ctx context.Context, c *Client) error
	switch sub {
	case "start":
		var f Fault
		var kind, latency, ttl string
		fs.StringVar(&f.Integration, "integration", "", "integration name (required)")
		fs.StringVar(&f.Route, "route", "", "route template; empty: every route")
		fs.StringVar(&kind, "kind", "", "fault kind (required)")
		fs.Float64Var(&f.Probability, "probability", 1, "share of matching calls hit, 0..1")
		fs.StringVar(&latency, "latency", "", "added latency for kind latency, e.g. 2s")
		fs.IntVar(&f.Status, "status", 0, "status for kind error (default 503)")
		fs.Int64Var(&f.Size, "size", 0, "padding bytes for kind oversize (default 64 MiB)")
		fs.StringVar(&ttl, "for", "", "how long the fault lasts (default 10m)")
		run = func(ctx context.Context, c *Client) error {
			f.Kind = Kind(kind)
			var d time.Duration
			var err error
			if latency != "" {
				if f.Latency, err = config.ParseDuration(latency); err != nil {
					return usageError{fmt.Errorf("--latency: %w", err)}
				}
			}
			if ttl != "" {
				if d, err = config.ParseDuration(ttl); err != nil {
					return usageError{fmt.Errorf("--for: %w", err)}
				}
			}
			if err := f.Validate(); err != nil {
				return usageError{err}
			}
			got, err := c.Start(ctx, f, d)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "started fault %s: %s on %s%s, probability %g, until %s\n",
				got.ID, got.Kind, got.Integration, routeText(got.Route), got.Probability, got.Expires.UTC().Format(time.RFC3339))
			return nil
		}
	case "stop":
		var id, integration string
		var all bool
		fs.StringVar(&id, "id", "", "fault id to stop")
		fs.StringVar(&integration, "integration", "", "stop every fault of this integration")
		fs.BoolVar(&all, "all", false, "stop every fault")
		run = func(ctx context.Context, c *Client) error {
			n := 0
			for _, set := range []bool{id != "", integration != "", all} {
				if set {
					n++
				}
			}
			if n != 1 {
				return usageError{errors.New("give exactly one of --id, --integration, --all")}
			}
			if id != "" {
				if err := c.Stop(ctx, id); err != nil {
					return err
				}
				fmt.Fprintf(stdout, "stopped fault %s\n", id)
				return nil
			}
			removed, err := c.StopAll(ctx, integration)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "stopped %d fault(s)\n", removed)
			return nil
		}
	case "list":
		format := fs.String("format", "table", "output: table or json")
		run = func(ctx context.Context, c *Client) error {
			if *format != "table" && *format != "json" {
				return usageError{fmt.Errorf("--format must be table or json")}
			}
			l, err := c.List(ctx)
			if err != nil {
				return err
			}
			if *format == "json" {
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(l)
			}
			writeTable(stdout, l)
			return nil
		}
	default:
		fmt.Fprintf(stderr, "portcullis chaos: unknown subcommand %q\n\n%s", sub, commandUsage)
		return 2
	}
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "portcullis chaos %s: unexpected argument %q\n", sub, fs.Arg(0))
		return 2
	}
	c := &Client{Admin: *admin, Token: secret.New(os.Getenv(*tokenEnv))}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx, c); err != nil {
		fmt.Fprintf(stderr, "portcullis chaos %s: %v\n", sub, err)
		var ue usageError
		if errors.As(err, &ue) {
			return 2
		}
		return 1
	}
	return 0
}

type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

func routeText(r string) string {
	if r == "" {
		return " (every route)"
	}
	return " " + r
}

func writeTable(w io.Writer, l List) {
	state := "enabled"
	if !l.Enabled {
		state = "disabled"
	}
	fmt.Fprintf(w, "chaos %s, %d active fault(s)\n", state, len(l.Faults))
	if len(l.Faults) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tINTEGRATION\tROUTE\tKIND\tPROB\tDETAIL\tEXPIRES\tSOURCE\tINJECTIONS")
	for _, f := range l.Faults {
		route := f.Route
		if route == "" {
			route = "*"
		}
		var detail []string
		if f.Latency > 0 {
			detail = append(detail, "latency="+f.Latency.String())
		}
		if f.Status > 0 {
			detail = append(detail, fmt.Sprintf("status=%d", f.Status))
		}
		if f.Size > 0 {
			detail = append(detail, fmt.Sprintf("size=%d", f.Size))
		}
		if len(detail) == 0 {
			detail = []string{"-"}
		}
		exp := "never"
		if !f.Expires.IsZero() {
			exp = f.Expires.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%g\t%s\t%s\t%s\t%d\n", f.ID, f.Integration, route, f.Kind,
			f.Probability, strings.Join(detail, ","), exp, f.Source, f.Injections)
	}
	_ = tw.Flush()
}
