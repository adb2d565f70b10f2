package mint

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

const newUsage = `Usage: portcullis ca new --out-cert FILE --out-key FILE [--name NAME] [--days N] [--permit DOMAIN]... [--force]

Makes a new CA for inspect mode (server.inspect_ca): an ECDSA P-256 key,
written with mode 0600, and a self-signed CA certificate that can sign
only server certificates (path length 0). Then prints the config lines to
paste and how to make Go, Node, Python, Java and curl clients trust it.

Existing files are never overwritten unless --force is given. The key
signs a certificate for any host the gateway inspects: keep it in Vault or
a 0600 file only the gateway can read, never next to the clients.
--permit limits the CA, with X.509 name constraints, to the vendor domains
you inspect, so that a stolen key cannot sign for any other host that Go,
OpenSSL (curl, Python) and Node clients would accept; Java ignores a
trusted CA's own constraints.

Flags:
`

// Command runs `portcullis ca ARGS` and returns its exit status.
func Command(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "new" {
		fmt.Fprintln(stderr, "Usage: portcullis ca new --out-cert FILE --out-key FILE   (portcullis ca new --help)")
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			return 0
		}
		return 2
	}
	fs := flag.NewFlagSet("ca new", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	certPath := fs.String("out-cert", "", "where to write the CA certificate, PEM (required)")
	keyPath := fs.String("out-key", "", "where to write the CA private key, PEM PKCS#8, mode 0600 (required)")
	name := fs.String("name", DefaultCAName, "the CA's common name, as clients' trust stores show it")
	days := fs.Int("days", int(DefaultCAValidity/(24*time.Hour)), "days the CA is valid")
	force := fs.Bool("force", false, "overwrite existing files")
	var permit flagList
	fs.Var(&permit, "permit", "limit the CA to this DNS domain and its subdomains, IP or CIDR (repeat; default: unconstrained)")
	usage := func(w io.Writer) {
		fmt.Fprint(w, newUsage)
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stdout)
			return 0
		}
		fmt.Fprintf(stderr, "portcullis ca new: %v\nRun with --help for help.\n", err)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "portcullis ca new: unexpected argument %q\nRun with --help for help.\n", fs.Arg(0))
		return 2
	}
	if *certPath == "" || *keyPath == "" {
		fmt.Fprintln(stderr, "portcullis ca new: --out-cert and --out-key are required")
		usage(stderr)
		return 2
	}
	if *days < 1 || *days > 3650 {
		fmt.Fprintf(stderr, "portcullis ca new: --days must be 1 to 3650 (got %d)\n", *days)
		return 2
	}
	certPEM, keyPEM, err := NewCA(CAOptions{Name: *name, Validity: time.Duration(*days) * 24 * time.Hour, Permit: permit})
	if err != nil {
		fmt.Fprintln(stderr, "portcullis ca new:", err)
		return 2
	}
	if err := WriteCA(*certPath, *keyPath, certPEM, keyPEM, *force); err != nil {
		fmt.Fprintln(stderr, "portcullis ca new:", err)
		return 1
	}
	fmt.Fprint(stdout, Instructions(*certPath, *keyPath))
	return 0
}

// flagList is a repeatable string flag.
type flagList []string

func (l *flagList) String() string     { return strings.Join(*l, ",") }
func (l *flagList) Set(v string) error { *l = append(*l, v); return nil }
