// Package secret owns the Value type that carries credential material
// through the gateway, and the Scrubber that removes known secret values
// from any string before it is logged.
//
// A Value can only be read with Reveal; every other way of turning it into
// text (fmt verbs, slog, JSON, errors) prints REDACTED. This makes leaking a
// vendor secret into a log line, a metric label or a problem detail a type
// error rather than a code-review catch.
package secret

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
)

// Redacted is what a Value prints as.
const Redacted = "REDACTED"

// Value holds secret bytes. The zero Value is empty.
type Value struct{ s string }

// New wraps s.
func New(s string) Value { return Value{s: s} }

// Reveal returns the secret itself. Call it only where the secret leaves the
// gateway on purpose (an outbound header, an HMAC key).
func (v Value) Reveal() string { return v.s }

// IsZero reports whether the value is empty.
func (v Value) IsZero() bool { return v.s == "" }

// Equal compares two values (not in constant time; use crypto/subtle for that).
func (v Value) Equal(o Value) bool { return v.s == o.s }

func (Value) String() string                { return Redacted }
func (Value) GoString() string              { return Redacted }
func (Value) LogValue() slog.Value          { return slog.StringValue(Redacted) }
func (Value) MarshalJSON() ([]byte, error)  { return []byte(`"` + Redacted + `"`), nil }
func (Value) MarshalText() ([]byte, error)  { return []byte(Redacted), nil }
func (Value) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(Redacted)) }
func (Value) MarshalYAML() (any, error)     { return Redacted, nil }

// minScrubLen is the shortest secret the Scrubber will look for: replacing
// every "a" in a log line because some test secret is "a" would make logs
// useless, and a secret that short is no secret.
const minScrubLen = 6

// Scrubber replaces every known secret value in a string with REDACTED. It is
// the last line of defence behind structural redaction (headers, query values
// and bodies are never logged unless allow-listed). Safe for concurrent use;
// secrets are added as providers resolve them, including rotated ones.
type Scrubber struct {
	mu      sync.Mutex // serialises Add
	secrets map[string]struct{}
	// set is swapped whole by Add and read without a lock: Scrub runs on
	// every string of every log line.
	set atomic.Pointer[scrubSet]
}

// scrubSet is the registered secrets and their replacer. Scrub looks for
// the secrets first: a strings.Replacer over two or more of them copies
// every string it is given, which most log strings do not need.
type scrubSet struct {
	secrets  []string
	replacer *strings.Replacer
}

// maxScan is how many secrets Scrub looks for one by one before it hands
// the string to the replacer; with more, the replacer is the cheaper scan.
const maxScan = 32

// NewScrubber returns an empty Scrubber.
func NewScrubber() *Scrubber { return &Scrubber{secrets: map[string]struct{}{}} }

// Add registers secret values to scrub.
func (s *Scrubber) Add(vals ...Value) {
	s.mu.Lock()
	defer s.mu.Unlock()
	changed := false
	for _, v := range vals {
		if len(v.s) < minScrubLen {
			continue
		}
		if _, ok := s.secrets[v.s]; !ok {
			s.secrets[v.s] = struct{}{}
			changed = true
		}
	}
	if !changed {
		return
	}
	pairs := make([]string, 0, 2*len(s.secrets))
	set := &scrubSet{secrets: make([]string, 0, len(s.secrets))}
	for k := range s.secrets {
		pairs = append(pairs, k, Redacted)
		set.secrets = append(set.secrets, k)
	}
	set.replacer = strings.NewReplacer(pairs...)
	s.set.Store(set)
}

// Scrub returns in with every registered secret replaced.
func (s *Scrubber) Scrub(in string) string {
	if s == nil {
		return in
	}
	set := s.set.Load()
	if set == nil {
		return in
	}
	if len(set.secrets) <= maxScan {
		found := false
		for _, k := range set.secrets {
			if strings.Contains(in, k) {
				found = true
				break
			}
		}
		if !found {
			return in
		}
	}
	return set.replacer.Replace(in)
}
