package sdk

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

const commandUsage = `Usage: portcullis audit sdks PATH... [--osv DIR] [--format table|json|markdown]
                             [--sdk NAME]... [--all] [--strict]

Reads the dependency manifests and lock files under each PATH (go.mod and
go.sum; package.json with package-lock.json or npm-shrinkwrap.json;
requirements*.txt; pyproject.toml with poetry.lock) and reports the vendor
SDKs that are unpinned (ranges, latest, no lock file), that have no
integrity hashes, and — with --osv, a directory of OSV JSON records such as
osv.dev's per-ecosystem all.zip unzipped; no network is used — those with
known advisories.

Exit status: 0 no errors (warnings allowed unless --strict); 1 a known
advisory, or warnings with --strict; 2 bad usage or an unreadable file.

Flags:
`

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// Command runs `portcullis audit sdks` and returns the exit status.
func Command(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("audit sdks", flag.ContinueOnError)
	fs.SetOutput(stderr)
	osvDir := fs.String("osv", "", "directory of OSV advisories (JSON) to check versions against")
	format := fs.String("format", "table", "output: table, json or markdown")
	strict := fs.Bool("strict", false, "warnings fail too (exit 1)")
	all := fs.Bool("all", false, "report every dependency, not only vendor SDKs")
	var extra listFlag
	fs.Var(&extra, "sdk", "another package to treat as a vendor SDK (repeatable; a trailing * or / matches a prefix)")
	fs.Usage = func() {
		fmt.Fprint(stderr, commandUsage)
		fs.PrintDefaults()
	}
	// Flags may follow the paths: parse, take the paths, parse the rest.
	var paths []string
	rest := args
	for {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		paths = append(paths, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(paths) == 0 {
		fmt.Fprintln(stderr, "portcullis audit sdks: give at least one PATH")
		return 2
	}
	write := map[string]func(io.Writer, Report) error{"table": WriteTable, "json": WriteJSON, "markdown": WriteMarkdown}[*format]
	if write == nil {
		fmt.Fprintf(stderr, "portcullis audit sdks: --format must be table, json or markdown (got %q)\n", *format)
		return 2
	}
	var osv *OSV
	if *osvDir != "" {
		var err error
		if osv, err = LoadOSV(*osvDir); err != nil {
			fmt.Fprintln(stderr, "portcullis audit sdks:", err)
			return 2
		}
	}
	r, err := Scan(paths, Matcher{All: *all, Extra: extra}, osv)
	if err != nil {
		fmt.Fprintln(stderr, "portcullis audit sdks:", err)
		return 2
	}
	if err := write(stdout, r); err != nil {
		fmt.Fprintln(stderr, "portcullis audit sdks:", err)
		return 2
	}
	errs, warns, _ := r.Counts()
	if errs > 0 || *strict && warns > 0 {
		return 1
	}
	return 0
}
