// Package conf is the vocabulary every component's Spec is written in:
// scalar values that remember the config line they came from and any parse
// error (Duration, Size, Rate, Date, SecretRef), and the Problem a
// Validate returns, with its config path. It imports nothing of the
// project, so every component package can use it without a cycle.
package conf

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// The scalar types below decode leniently and remember their line and any
// parse error, so that validation can report every bad value with its full
// config path and line instead of stopping at the first one (yaml.v3 aborts
// decoding on the first error a custom unmarshaler returns).

type scalar struct {
	raw  string
	line int
	err  error
}

// Line is the config line the value came from (0 when not set in the file).
func (s scalar) Line() int { return s.line }

// IsSet reports whether the value was written in the file.
func (s scalar) IsSet() bool { return s.line > 0 }

// ScalarError returns the line and the parse error of a value that did not
// parse (nil error when it did), so that validation can report it.
func (s scalar) ScalarError() (int, error) { return s.line, s.err }

func (s *scalar) take(n *yaml.Node) bool {
	s.line = n.Line
	if n.Kind != yaml.ScalarNode {
		s.err = fmt.Errorf("must be a scalar, got a %s", kindName(n.Kind))
		return false
	}
	s.raw = n.Value
	return true
}

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	default:
		return "scalar"
	}
}

// Duration is a Go duration ("250ms", "2s", "1h30m") or a whole number of
// days ("90d"), which Go's time.ParseDuration does not accept.
type Duration struct {
	scalar
	D time.Duration
}

// Dur returns a Duration set to d, for defaults and tests.
func Dur(d time.Duration) Duration { return Duration{D: d} }

func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if d.take(n) {
		d.D, d.err = ParseDuration(n.Value)
	}
	return nil
}

// ParseDuration parses a Duration's text form.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if days, ok := strings.CutSuffix(s, "d"); ok && days != "" && !strings.ContainsAny(days, "hmsuµn.") {
		n, err := strconv.ParseUint(days, 10, 32)
		if err != nil || n > 100000 {
			return 0, fmt.Errorf("bad duration %q: want e.g. 90d, 2s, 250ms", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("bad duration %q: want e.g. 2s, 250ms, 90d", s)
	}
	if v < 0 {
		return 0, fmt.Errorf("bad duration %q: must not be negative", s)
	}
	return v, nil
}

// Size is a byte count: a plain integer or one with a unit (KB, MB, GB are
// powers of 1000; KiB, MiB, GiB powers of 1024).
type Size struct {
	scalar
	N int64
}

// Bytes returns a Size of n bytes, for defaults and tests.
func Bytes(n int64) Size { return Size{N: n} }

func (z *Size) UnmarshalYAML(n *yaml.Node) error {
	if z.take(n) {
		z.N, z.err = ParseSize(n.Value)
	}
	return nil
}

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000},
	{"B", 1},
}

// ParseSize parses a Size's text form.
func ParseSize(s string) (int64, error) {
	num := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range sizeUnits {
		if n, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mult = strings.TrimSpace(n), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("bad size %q: want e.g. 1MiB, 512KiB, 1000", s)
	}
	return n * mult, nil
}

// Rate is events per unit of time: "100/s", "20/m", "5000/h".
type Rate struct {
	scalar
	PerSecond float64
}

func (r *Rate) UnmarshalYAML(n *yaml.Node) error {
	if r.take(n) {
		r.PerSecond, r.err = ParseRate(n.Value)
	}
	return nil
}

// ParseRate parses a Rate's text form.
func ParseRate(s string) (float64, error) {
	num, unit, ok := strings.Cut(strings.TrimSpace(s), "/")
	bad := fmt.Errorf("bad rate %q: want N/s, N/m or N/h, e.g. 100/s", s)
	if !ok {
		return 0, bad
	}
	n, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || n <= 0 || math.IsInf(n, 0) || math.IsNaN(n) {
		return 0, bad
	}
	switch strings.TrimSpace(unit) {
	case "s":
		return n, nil
	case "m":
		return n / 60, nil
	case "h":
		return n / 3600, nil
	}
	return 0, bad
}

// Date is a calendar date, "2026-01-10".
type Date struct {
	scalar
	T time.Time
}

func (d *Date) UnmarshalYAML(n *yaml.Node) error {
	if d.take(n) {
		var err error
		d.T, err = time.Parse(time.DateOnly, strings.TrimSpace(n.Value))
		if err != nil {
			d.err = fmt.Errorf("bad date %q: want YYYY-MM-DD", n.Value)
		}
	}
	return nil
}

// SecretRef names where a secret lives: env:NAME, file:PATH or
// vault:MOUNT/data/PATH#KEY. The value itself never appears in the config.
type SecretRef struct {
	scalar
	Scheme string // env | file | vault
	Target string // NAME, PATH, or MOUNT/data/PATH#KEY
}

// Ref returns the reference text (safe to print: it names, not holds, a secret).
func (s SecretRef) Ref() string {
	if s.Scheme == "" {
		return ""
	}
	return s.Scheme + ":" + s.Target
}

// MustRef builds a SecretRef from text, for tests and defaults.
func MustRef(s string) SecretRef {
	var r SecretRef
	r.raw, r.line = s, 0
	r.Scheme, r.Target, r.err = ParseSecretRef(s)
	if r.err != nil {
		panic(r.err)
	}
	return r
}

func (s *SecretRef) UnmarshalYAML(n *yaml.Node) error {
	if s.take(n) {
		s.Scheme, s.Target, s.err = ParseSecretRef(n.Value)
	}
	return nil
}

// ErrPlainSecret marks a secret written into the config file itself.
var ErrPlainSecret = fmt.Errorf("looks like a plain secret written into the config: use env:NAME, file:PATH or vault:MOUNT/data/PATH#KEY")

// ParseSecretRef splits a reference. Its errors never contain the text they
// were given, since a mistyped reference may be the secret itself.
func ParseSecretRef(s string) (scheme, target string, err error) {
	scheme, target, ok := strings.Cut(s, ":")
	if !ok {
		return "", "", ErrPlainSecret
	}
	switch scheme {
	case "env":
		if !validEnvName(target) {
			return "", "", fmt.Errorf("env: reference needs a variable name of A-Z, a-z, 0-9 and _")
		}
	case "file":
		if target == "" {
			return "", "", fmt.Errorf("file: reference needs a path")
		}
	case "vault":
		path, key, ok := strings.Cut(target, "#")
		if !ok || key == "" || path == "" || strings.HasPrefix(path, "/") {
			return "", "", fmt.Errorf("vault: reference must be MOUNT/data/PATH#KEY")
		}
		if m, _, ok := strings.Cut(path, "/data/"); !ok || m == "" {
			return "", "", fmt.Errorf("vault: reference must be MOUNT/data/PATH#KEY (KV v2)")
		}
	default:
		// A secret such as "sk_live:..." or "user:pass" would land here:
		// say which schemes exist without echoing the text.
		return "", "", ErrPlainSecret
	}
	return scheme, target, nil
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// String forms of the scalars are their parsed values, never the line they
// came from nor their raw text: fmt prints a Spec holding them ("%+v") the
// same wherever in the file it was written, which makes that print the
// reload key of the component built from it.

func (d Duration) String() string { return d.D.String() }

func (z Size) String() string { return strconv.FormatInt(z.N, 10) }

func (r Rate) String() string { return strconv.FormatFloat(r.PerSecond, 'g', -1, 64) + "/s" }

func (d Date) String() string { return d.T.Format(time.DateOnly) }

// String is Ref: a reference names a secret, never holds it.
func (s SecretRef) String() string { return s.Ref() }

// Default sets d to v when the file left d out: what a Spec's Provision
// calls for a duration with a default. An explicit 0 is kept.
func (d *Duration) Default(v time.Duration) {
	if !d.IsSet() && d.D == 0 {
		d.D = v
	}
}

// Default sets z to n when the file left z out, as Duration.Default.
func (z *Size) Default(n int64) {
	if !z.IsSet() && z.N == 0 {
		z.N = n
	}
}
