package audit

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/portcullis-dev/portcullis/internal/audit/sdk"
	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/internal/store"
)

const commandUsage = `Usage:
  portcullis audit --config FILE [--format table|json|markdown] [--strict]
                   [--data-dir DIR | --usage FILE] [--unused-days N] [--sla-months N] [--now YYYY-MM-DD]
  portcullis audit sdks PATH... [--osv DIR] [--format table|json|markdown] [--sdk NAME]... [--all]

Audits the config and the gateway's usage records: credentials past
max_age or unused, callers and route grants unused for N days, OAuth
scopes never in effect, vendor governance (certifications, penetration
tests, policies, contract terms, reviews, owner) and monthly SLA
compliance. Usage records come from --usage (JSON Lines, - for stdin),
--data-dir (the embedded store of a stopped gateway), or else the
config's state (its Redis, or data_dir when the store file exists).

Exit status: 0 no errors (warnings allowed unless --strict); 1 errors, or
warnings with --strict; 2 bad usage, or the config or records cannot be read.

Flags:
`

// Command runs `portcullis audit` (and `portcullis audit sdks`) and
// returns the exit status.
func Command(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "sdks" {
		return sdk.Command(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("audit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "portcullis.yaml", "config file (YAML)")
	format := fs.String("format", "table", "output: table, json or markdown")
	strict := fs.Bool("strict", false, "warnings fail too (exit 1)")
	dataDir := fs.String("data-dir", "", "embedded store directory to read usage records from")
	usageFile := fs.String("usage", "", "usage records as JSON Lines (- for stdin)")
	unused := fs.Int("unused-days", DefaultUnusedDays, "window of the unused credential, caller, route and scope checks")
	months := fs.Int("sla-months", DefaultSLAMonths, "months of SLA compliance to report, this one included")
	nowFlag := fs.String("now", "", "audit as of this date (YYYY-MM-DD, UTC); default today")
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
		fmt.Fprintf(stderr, "portcullis audit: "+format+"\n", a...)
		return 2
	}
	if fs.NArg() > 0 {
		return fail("unexpected argument %q", fs.Arg(0))
	}
	write := map[string]func(io.Writer, Report) error{"table": WriteTable, "json": WriteJSON, "markdown": WriteMarkdown}[*format]
	if write == nil {
		return fail("--format must be table, json or markdown (got %q)", *format)
	}
	if *dataDir != "" && *usageFile != "" {
		return fail("give --data-dir or --usage, not both")
	}
	o := Options{UnusedDays: *unused, SLAMonths: *months}
	if *nowFlag != "" {
		t, err := time.Parse(time.DateOnly, *nowFlag)
		if err != nil {
			return fail("--now must be YYYY-MM-DD")
		}
		o.Now = t
	}
	cfg, _, err := config.Load(*path)
	if err != nil {
		var ps *config.Problems
		if errors.As(err, &ps) {
			return fail("%s does not validate (run `portcullis check --config %s`):\n%v", *path, *path, err)
		}
		return fail("%v", err)
	}
	usage, src, closeFn, err := openUsage(cfg, *dataDir, *usageFile, os.Stdin)
	if err != nil {
		return fail("%v", err)
	}
	defer closeFn()
	o.UsageSource = src
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r, err := Run(ctx, cfg, usage, o)
	if err != nil {
		return fail("%v", err)
	}
	if err := write(stdout, r); err != nil {
		return fail("%v", err)
	}
	errs, warns, _ := r.Counts()
	if errs > 0 || (*strict && warns > 0) {
		return 1
	}
	return 0
}

// openUsage picks the usage source: --usage, --data-dir, the config's
// Redis, or its data_dir when the store file exists there.
func openUsage(cfg *config.Config, dataDir, file string, stdin io.Reader) (store.Usage, string, func(), error) {
	nop := func() {}
	switch {
	case file == "-":
		recs, err := ReadUsage(stdin)
		return recs, "standard input", nop, err
	case file != "":
		f, err := os.Open(file)
		if err != nil {
			return nil, "", nop, fmt.Errorf("usage file: %w", err)
		}
		defer f.Close()
		recs, err := ReadUsage(f)
		return recs, filepath.Base(file), nop, err
	case dataDir != "":
		return openEmbedded(dataDir, true)
	case cfg.State.Backend == "redis":
		r, err := store.OpenRedis(cfg.State.RedisURL, store.RedisOptions{Timeout: cfg.State.RedisTimeout.D})
		if err != nil {
			return nil, "", nop, err
		}
		return r, "redis (state.redis_url)", func() { _ = r.Close() }, nil
	default:
		return openEmbedded(cfg.State.DataDir, false)
	}
}

func openEmbedded(dir string, required bool) (store.Usage, string, func(), error) {
	nop := func() {}
	if _, err := os.Stat(filepath.Join(dir, store.EmbeddedFile)); err != nil {
		if required {
			return nil, "", nop, fmt.Errorf("--data-dir %s: no %s there", dir, store.EmbeddedFile)
		}
		return nil, "no store file in data_dir " + dir, nop, nil
	}
	e, err := store.OpenEmbedded(dir, store.EmbeddedOptions{SweepInterval: -1})
	if errors.Is(err, store.ErrLocked) {
		return nil, "", nop, fmt.Errorf("%w\n(the gateway holds the store while it runs: stop it, or audit a copy taken while it was stopped)", err)
	}
	if err != nil {
		return nil, "", nop, err
	}
	return e, "embedded store in " + dir, func() { _ = e.Close() }, nil
}
