package lint

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/portcullis-dev/portcullis/internal/conf"
	"github.com/portcullis-dev/portcullis/internal/config"
)

const commandUsage = `Usage: portcullis check --config FILE [--strict] [--format text|json|sarif] [--resolve-secrets]

Validates the config and lints it for security problems. Every finding has
an id (PC001…), a severity, the config line and the fix. With
--resolve-secrets it also reads every secret reference (env, file, Vault)
the way serve would, and reports the ones that cannot be read, by config
path and reference, never by value.

Exit status:
  0  no errors (warnings and info allowed, unless --strict)
  1  at least one error, or at least one warning with --strict,
     or the file cannot be read
  2  bad usage

Flags:
`

// Command runs `portcullis check` and returns its exit status.
func Command(args []string, stdout, stderr io.Writer) int {
	return NewCommand(nil)(args, stdout, stderr)
}

// NewCommand returns `portcullis check` with an extra validation step
// (e.g. gateway.Validate) whose error, if any, is reported as a PC000
// error. It runs only when the config has no errors of its own.
func NewCommand(validate func(*config.Config) error) func(args []string, stdout, stderr io.Writer) int {
	return NewResolvingCommand(validate, nil)
}

// NewResolvingCommand is NewCommand plus what --resolve-secrets runs:
// resolve reads every secret reference of a valid config and returns an
// error naming each one that cannot be read (the binary passes it: it
// needs the credential providers, which this package does not import).
func NewResolvingCommand(validate, resolve func(*config.Config) error) func(args []string, stdout, stderr io.Writer) int {
	return func(args []string, stdout, stderr io.Writer) int {
		fs := flag.NewFlagSet("check", flag.ContinueOnError)
		fs.SetOutput(stderr)
		path := fs.String("config", "portcullis.yaml", "config file (YAML)")
		strict := fs.Bool("strict", false, "warnings fail too (exit 1)")
		format := fs.String("format", "text", "output format: text, json or sarif")
		resolveFlag := fs.Bool("resolve-secrets", false, "also read every secret reference (env, file, Vault) and report the unreadable ones")
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
		if fs.NArg() > 0 {
			fmt.Fprintf(stderr, "portcullis check: unexpected argument %q\n", fs.Arg(0))
			return 2
		}
		write := map[string]func(io.Writer, Report) error{
			"text": WriteText, "json": WriteJSON,
			"sarif": func(w io.Writer, r Report) error { return WriteSARIF(w, r, "") },
		}[*format]
		if write == nil {
			fmt.Fprintf(stderr, "portcullis check: --format must be text, json or sarif (got %q)\n", *format)
			return 2
		}
		data, err := readConfig(*path)
		if err != nil {
			fmt.Fprintln(stderr, "portcullis:", err)
			return 1
		}
		r := Check(*path, data)
		if validate != nil {
			if e, _, _ := r.Counts(); e == 0 {
				if cfg, _, err := config.Parse(*path, data); err == nil {
					if verr := validate(cfg); verr != nil {
						r.Findings = append(r.Findings, Finding{ID: conf.ConfigInvalid, Severity: conf.Error, Message: verr.Error(),
							Fix: ruleByID(conf.ConfigInvalid).Fix})
					}
					if *resolveFlag && resolve != nil {
						if rerr := resolve(cfg); rerr != nil {
							r.Findings = append(r.Findings, Finding{ID: conf.ConfigInvalid, Severity: conf.Error, Message: rerr.Error(),
								Fix: "Set the variable, create the file, or grant the gateway's Vault identity read access to the path; the reference names where."})
						}
					}
				}
			}
		}
		if err := write(stdout, r); err != nil {
			fmt.Fprintln(stderr, "portcullis check:", err)
			return 1
		}
		errs, warns, _ := r.Counts()
		if errs > 0 || (*strict && warns > 0) {
			return 1
		}
		return 0
	}
}

func readConfig(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, config.MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("config: read %s: %w", path, err)
	}
	if len(data) > config.MaxFileSize {
		return nil, fmt.Errorf("config: %s is larger than %d bytes", path, config.MaxFileSize)
	}
	return data, nil
}
