package webhook

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/internal/conf"
	"github.com/portcullis-dev/portcullis/internal/secret"
)

// Exit codes of the CLI helpers.
const (
	exitOK      = 0
	exitInvalid = 1 // verify: the request would be refused
	exitUsage   = 2
)

// secretList is a repeatable --secret flag.
type secretList []string

func (s *secretList) String() string     { return strings.Join(*s, ",") }
func (s *secretList) Set(v string) error { *s = append(*s, v); return nil }

// schemeFlags registers the flags that describe a scheme, shared by sign and verify.
func schemeFlags(fs *flag.FlagSet, w *Spec, secrets *secretList) {
	fs.StringVar(&w.Scheme, "scheme", "", "signature scheme: standard, stripe, github, slack or hmac_sha256 (required)")
	fs.Var(secrets, "secret", "secret reference env:NAME or file:PATH (required; repeat for rotation)")
	fs.StringVar(&w.Header, "header", "", "hmac_sha256: header carrying the signature")
	fs.StringVar(&w.Encoding, "encoding", "hex", "hmac_sha256: signature encoding, hex or base64")
	fs.StringVar(&w.Prefix, "prefix", "", "hmac_sha256: text before the signature, e.g. sha256=")
	fs.StringVar(&w.TimestampHeader, "timestamp-header", "", "hmac_sha256: header carrying the Unix timestamp")
	fs.StringVar(&w.Signed, "signed", "body", "hmac_sha256: what is signed, body or timestamp.body")
}

// parseFlags parses args; help goes to stdout (exit 0), mistakes to stderr (exit 2).
func parseFlags(fs *flag.FlagSet, usage string, args []string, stdout, stderr io.Writer) (int, bool) {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(stdout)
		fmt.Fprint(stdout, usage)
		fs.PrintDefaults()
		return exitOK, false
	case err != nil:
		fmt.Fprintf(stderr, "%s: %v\nRun with -h for help.\n", fs.Name(), err)
		return exitUsage, false
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "%s: unexpected argument %q\nRun with -h for help.\n", fs.Name(), fs.Arg(0))
		return exitUsage, false
	}
	return 0, true
}

const signUsage = `Usage: portcullis webhook sign --scheme S --secret REF --body FILE [flags]

Prints the headers a vendor would send with the body in FILE, signed the way
that vendor signs, so you can test a receiver (or Portcullis itself) by hand:

  portcullis webhook sign --scheme standard --secret env:WHSEC --body event.json
  portcullis webhook sign --scheme github --secret file:gh.secret --body event.json \
      --url http://127.0.0.1:8443/webhooks/github     # prints a curl command

The body is signed byte for byte: an editor's trailing newline is part of it.
Secrets are references (env:NAME or file:PATH), never the secret itself.

Flags:
`

// SignCommand implements `portcullis webhook sign`.
func SignCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("webhook sign", flag.ContinueOnError)
	var w Spec
	var refs secretList
	schemeFlags(fs, &w, &refs)
	bodyFile := fs.String("body", "", "file holding the exact body bytes (required)")
	id := fs.String("id", "", "message id (standard: webhook-id, github: X-GitHub-Delivery); default random")
	ts := fs.Int64("timestamp", 0, "Unix timestamp to sign; default now")
	ctype := fs.String("content-type", "application/json", "Content-Type to print")
	target := fs.String("url", "", "print a curl command that POSTs the signed body to this URL")
	if code, ok := parseFlags(fs, signUsage, args, stdout, stderr); !ok {
		return code
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "webhook sign: "+format+"\n", a...)
		return exitUsage
	}
	if *bodyFile == "" {
		return fail("--body is required")
	}
	v, secrets, err := cliScheme(&w, refs)
	if err != nil {
		return fail("%v", err)
	}
	body, err := os.ReadFile(*bodyFile)
	if err != nil {
		return fail("reading the body: %v", err)
	}
	p := SignParams{ID: *id, Timestamp: time.Now()}
	if *ts > 0 {
		p.Timestamp = time.Unix(*ts, 0)
	}
	if p.ID == "" {
		p.ID = defaultID(w.Scheme)
	}
	h, err := v.Sign(body, secrets, p)
	if err != nil {
		return fail("%v", err)
	}
	h.Set("Content-Type", *ctype)
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	slices.Sort(names)
	if *target != "" {
		fmt.Fprintf(stdout, "curl -sS -X POST %s \\\n", shellQuote(*target))
		for _, k := range names {
			fmt.Fprintf(stdout, "  -H %s \\\n", shellQuote(displayName(k)+": "+h.Get(k)))
		}
		fmt.Fprintf(stdout, "  --data-binary @%s\n", shellQuote(*bodyFile))
		return exitOK
	}
	for _, k := range names {
		fmt.Fprintf(stdout, "%s: %s\n", displayName(k), h.Get(k))
	}
	return exitOK
}

// displayName spells a header the way its vendor documents it (HTTP header
// names are case-insensitive; this is for people reading the output).
func displayName(canonical string) string {
	switch canonical {
	case "Webhook-Id", "Webhook-Timestamp", "Webhook-Signature":
		return strings.ToLower(canonical)
	case "X-Github-Delivery":
		return HeaderGitHubDelivery
	}
	return canonical
}

const verifyUsage = `Usage: portcullis webhook verify --scheme S --secret REF (--request FILE | --headers FILE --body FILE) [flags]

Checks a captured webhook the way the gateway would: the signature with every
--secret (rotation), then the timestamp against --tolerance. Exit status 0
means the request would be accepted, 1 that it would be refused, 2 a usage
error. The replay check needs the gateway's state and is not done here.

  portcullis webhook verify --scheme stripe --secret env:STRIPE_WHSEC --request captured.http
  portcullis webhook verify --scheme slack --secret file:slack.secret \
      --headers headers.txt --body body.txt --tolerance 0   # skip the time check

--request takes a raw HTTP request as captured (request line, headers, blank
line, body); --headers takes "Name: value" lines. Either file may be - for
standard input. Captures are usually older than the tolerance: use --now
(the capture's time) or --tolerance 0 to check the signature alone.

Flags:
`

// VerifyCommand implements `portcullis webhook verify`.
func VerifyCommand(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("webhook verify", flag.ContinueOnError)
	var w Spec
	var refs secretList
	schemeFlags(fs, &w, &refs)
	reqFile := fs.String("request", "", "raw captured HTTP request (- for stdin)")
	hdrFile := fs.String("headers", "", "file of \"Name: value\" header lines (- for stdin)")
	bodyFile := fs.String("body", "", "file holding the exact body bytes (- for stdin)")
	tol := fs.Duration("tolerance", DefaultTolerance, "accepted clock difference; 0 skips the timestamp check")
	nowUnix := fs.Int64("now", 0, "check as of this Unix time instead of now")
	if code, ok := parseFlags(fs, verifyUsage, args, stdout, stderr); !ok {
		return code
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "webhook verify: "+format+"\n", a...)
		return exitUsage
	}
	v, secrets, err := cliScheme(&w, refs)
	if err != nil {
		return fail("%v", err)
	}
	var h http.Header
	var body []byte
	switch {
	case *reqFile != "" && (*hdrFile != "" || *bodyFile != ""):
		return fail("use --request, or --headers with --body, not both")
	case *reqFile != "":
		raw, err := readInput(*reqFile, stdin)
		if err != nil {
			return fail("reading the request: %v", err)
		}
		if h, body, err = parseRawRequest(raw); err != nil {
			return fail("%v", err)
		}
	case *hdrFile != "" && *bodyFile != "":
		if *hdrFile == "-" && *bodyFile == "-" {
			return fail("only one of --headers and --body can be standard input")
		}
		raw, err := readInput(*hdrFile, stdin)
		if err != nil {
			return fail("reading the headers: %v", err)
		}
		if h, err = parseHeaderLines(raw); err != nil {
			return fail("%v", err)
		}
		if body, err = readInput(*bodyFile, stdin); err != nil {
			return fail("reading the body: %v", err)
		}
	default:
		return fail("need --request FILE, or --headers FILE and --body FILE")
	}
	now := time.Now()
	if *nowUnix > 0 {
		now = time.Unix(*nowUnix, 0)
	}
	tolerance := *tol
	if tolerance == 0 {
		tolerance = time.Duration(1<<63 - 1) // no time check: every timestamp is within it
	} else if tolerance < 0 {
		return fail("--tolerance must not be negative")
	}
	msgID, err := v.Verify(h, body, secrets, now, tolerance)
	switch {
	case err == nil:
		fmt.Fprintf(stdout, "OK: valid %s signature, message id %s\n", w.Scheme, msgID)
		return exitOK
	case errors.Is(err, ErrTimestamp):
		fmt.Fprintf(stdout, "REFUSED: the signature is valid but the timestamp is not: %v\n(--now or --tolerance 0 check a capture's signature alone)\n", err)
		return exitInvalid
	case errors.Is(err, ErrSecret):
		return fail("%v", err)
	}
	fmt.Fprintf(stdout, "REFUSED: %v\n", err)
	return exitInvalid
}

// cliScheme builds the verifier and reads the secrets locally.
func cliScheme(w *Spec, refs secretList) (Verifier, []secret.Value, error) {
	if w.Scheme == "" {
		return nil, nil, errors.New("--scheme is required")
	}
	if w.Scheme != "hmac_sha256" {
		w.Header, w.Encoding, w.Prefix, w.TimestampHeader, w.Signed = "", "", "", "", ""
	}
	v, err := NewVerifier(w)
	if err != nil {
		return nil, nil, err
	}
	if len(refs) == 0 {
		return nil, nil, errors.New("at least one --secret is required")
	}
	secrets := make([]secret.Value, 0, len(refs))
	for i, ref := range refs {
		s, err := resolveLocal(ref)
		if err != nil {
			return nil, nil, fmt.Errorf("--secret #%d: %w", i+1, err)
		}
		secrets = append(secrets, s)
	}
	return v, secrets, nil
}

// resolveLocal reads env: and file: references. Its errors never quote the
// text given, which might be a secret typed by mistake.
func resolveLocal(ref string) (secret.Value, error) {
	scheme, target, err := conf.ParseSecretRef(ref)
	if err != nil {
		return secret.Value{}, err
	}
	var v string
	switch scheme {
	case "env":
		if v = os.Getenv(target); v == "" {
			return secret.Value{}, fmt.Errorf("environment variable %s is unset or empty", target)
		}
	case "file":
		b, err := os.ReadFile(target)
		if err != nil {
			return secret.Value{}, fmt.Errorf("reading secret file: %w", err)
		}
		if v = strings.TrimRight(string(b), "\r\n"); v == "" {
			return secret.Value{}, fmt.Errorf("secret file %s is empty", target)
		}
	default:
		return secret.Value{}, fmt.Errorf("%s: references are resolved by the gateway only; export the secret and use env:NAME or file:PATH", scheme)
	}
	return secret.New(v), nil
}

func readInput(name string, stdin io.Reader) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(io.LimitReader(stdin, 64<<20))
	}
	return os.ReadFile(name)
}

// parseHeaderLines reads "Name: value" lines. A leading request line (as in a
// capture) and curl -v's "> " markers are skipped; blank lines end nothing.
func parseHeaderLines(raw []byte) (http.Header, error) {
	h := http.Header{}
	for i, ln := range strings.Split(string(raw), "\n") {
		ln = strings.TrimRight(strings.TrimPrefix(strings.TrimRight(ln, "\r"), "> "), " \t")
		if ln == "" || (i == 0 && strings.Contains(ln, " HTTP/")) {
			continue
		}
		name, val, ok := strings.Cut(ln, ":")
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			return nil, fmt.Errorf("headers line %d: want \"Name: value\"", i+1)
		}
		h.Add(name, strings.TrimSpace(val))
	}
	return h, nil
}

// parseRawRequest reads a captured HTTP/1 request. A capture without
// Content-Length keeps whatever follows the blank line as the body, since
// tools often drop that header when saving.
func parseRawRequest(raw []byte) (http.Header, []byte, error) {
	br := bufio.NewReader(bytes.NewReader(raw))
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the request: %w", err)
	}
	defer req.Body.Close()
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the request body: %w", err)
	}
	if req.Header.Get("Content-Length") == "" && len(req.TransferEncoding) == 0 {
		if body, err = io.ReadAll(br); err != nil {
			return nil, nil, fmt.Errorf("reading the request body: %w", err)
		}
	}
	return req.Header, body, nil
}

// defaultID is a fresh message id in the vendor's style.
func defaultID(scheme string) string {
	if scheme == "github" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		b[6] = b[6]&0x0f | 0x40 // version 4
		b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
		return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
	}
	return newID("msg_")
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
