package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/internal/gateway"
)

func runCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "portcullis.yaml", "config file (YAML)")
	strict := fs.Bool("strict", false, "warnings fail too (exit 1)")
	format := fs.String("format", "text", "output format: text or json")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: portcullis check --config FILE [--strict] [--format text|json]\n\nValidates the config and lints it for risky settings. Prints every\nproblem with its line. Exit 0: no errors (warnings allowed unless\n--strict); 1: errors; 2: bad usage.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	cfg, list, err := config.Load(*path)
	if err != nil {
		var ps *config.Problems
		if !errors.As(err, &ps) {
			fmt.Fprintln(stderr, "portcullis:", err)
			return 1
		}
		list = ps.List
	} else if cerr := gateway.Validate(cfg); cerr != nil {
		list = append(list, config.Problem{Severity: config.Error, Msg: cerr.Error()})
	}
	errs, warns := 0, 0
	for _, p := range list {
		if p.Severity == config.Error {
			errs++
		} else {
			warns++
		}
	}
	if *format == "json" {
		type item struct {
			Severity string `json:"severity"`
			Path     string `json:"path,omitempty"`
			Line     int    `json:"line,omitempty"`
			Message  string `json:"message"`
		}
		items := make([]item, 0, len(list))
		for _, p := range list {
			items = append(items, item{p.Severity.String(), p.Path, p.Line, p.Msg})
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(map[string]any{"file": *path, "errors": errs, "warnings": warns, "problems": items})
	} else {
		printProblems(stdout, *path, list)
		fmt.Fprintf(stdout, "%s: %d error(s), %d warning(s)\n", *path, errs, warns)
	}
	if errs > 0 || (*strict && warns > 0) {
		return 1
	}
	return 0
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
