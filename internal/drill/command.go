package drill

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/portcullis-dev/portcullis/internal/secret"
)

const commandUsage = `Usage: portcullis drill --scenario NAME --integration NAME --path /VENDOR/PATH [flags]

Runs a failure drill against a running gateway: injects a vendor fault
through the chaos admin API (the gateway's config needs chaos.enabled:
true), calls the gateway as a caller, and prints whether each protection
engaged. Scenarios:
  vendor-outage  vendor answers 503: breaker opens and closes, fallback, latency
  bad-payload    vendor answers a schema-breaking body: invalid body blocked
  revoked-key    vendor answers 401: credential refresh (one caller does not revoke)

Exit status: 0 every required protection engaged; 1 one did not; 2 bad
usage or the drill could not run (gateway unreachable, chaos refused).

Flags:
`

// Command runs `portcullis drill` and returns the exit status.
func Command(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("drill", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c Config
	scenario := fs.String("scenario", "", "scenario: "+strings.Join(Scenarios, ", "))
	fs.StringVar(&c.Gateway, "gateway", "http://127.0.0.1:8080", "gateway (caller listener) base URL")
	fs.StringVar(&c.Admin, "admin", "http://127.0.0.1:9090", "admin listener base URL")
	tokenEnv := fs.String("token-env", "PORTCULLIS_ADMIN_TOKEN", "environment variable holding the admin token")
	callerEnv := fs.String("caller-token-env", "PORTCULLIS_CALLER_TOKEN", "environment variable holding a caller token allowed on the route")
	fs.StringVar(&c.Integration, "integration", "", "integration to drill (required)")
	fs.StringVar(&c.Method, "method", "GET", "method of the call")
	fs.StringVar(&c.Path, "path", "", "vendor path of the call, e.g. /v1/charges/ch_1 (required)")
	fs.StringVar(&c.Route, "route", "", "route template to limit the fault to (default: every route)")
	fs.IntVar(&c.Calls, "calls", 30, "calls made while the fault is on")
	fs.DurationVar(&c.LatencyBound, "latency-bound", 2*time.Second, "slowest acceptable caller latency")
	fs.DurationVar(&c.Recover, "recover", time.Minute, "how long to wait for the breaker to close after the fault")
	require := fs.String("require", "", "also require these optional protections: fallback, alert (comma-separated)")
	format := fs.String("format", "table", "output: table or json")
	fs.Usage = func() {
		fmt.Fprint(stderr, commandUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "portcullis drill: "+format+"\n", a...)
		return 2
	}
	switch {
	case fs.NArg() > 0:
		return fail("unexpected argument %q", fs.Arg(0))
	case *scenario == "":
		return fail("--scenario is required (%s)", strings.Join(Scenarios, ", "))
	case c.Integration == "" || !strings.HasPrefix(c.Path, "/"):
		return fail("--integration and --path (starting with /) are required")
	case *format != "table" && *format != "json":
		return fail("--format must be table or json")
	}
	for _, p := range strings.Split(*require, ",") {
		switch strings.TrimSpace(p) {
		case "":
		case "fallback":
			c.Require = append(c.Require, FallbackServed)
		case "alert":
			c.Require = append(c.Require, AlertEmitted)
		default:
			return fail("--require takes fallback and alert, not %q", p)
		}
	}
	c.AdminToken = secret.New(os.Getenv(*tokenEnv))
	c.CallerToken = secret.New(os.Getenv(*callerEnv))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := Run(ctx, *scenario, c)
	if err != nil {
		return fail("%v", err)
	}
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return fail("%v", err)
		}
	} else if err := WriteTable(stdout, res); err != nil {
		return fail("%v", err)
	}
	if !res.Pass {
		return 1
	}
	return 0
}

// WriteTable prints a drill result as a pass/fail table.
func WriteTable(w io.Writer, r Result) error {
	fmt.Fprintf(w, "drill %s: %s, integration %s, %d calls of %s\n", r.Scenario, r.Gateway, r.Integration, r.Calls, r.Call)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PROTECTION\tREQUIRED\tENGAGED\tRESULT\tEVIDENCE")
	required, engaged := 0, 0
	for _, c := range r.Checks {
		eng, result := "no", "FAIL"
		switch {
		case !c.Observable && !c.Engaged:
			eng = "n/a"
		case c.Engaged:
			eng = "yes"
		}
		switch {
		case c.Engaged:
			result = "PASS"
		case !c.Required:
			result = "-"
		}
		if c.Required {
			required++
			if c.Engaged {
				engaged++
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Protection, yesNo(c.Required), eng, result, c.Evidence)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	verdict := "PASS"
	if !r.Pass {
		verdict = "FAIL"
	}
	_, err := fmt.Fprintf(w, "drill %s: %s (%d/%d required protections engaged)\n", r.Scenario, verdict, engaged, required)
	return err
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
