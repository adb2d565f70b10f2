package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/portcullis-dev/portcullis/internal/secret"
)

// Sentinel errors of verification. Verify wraps them with a reason meant for
// logs and the CLI; the HTTP answer never says more than the sentinel's class.
var (
	// ErrMalformed: a required header is missing or cannot be parsed.
	ErrMalformed = errors.New("webhook: missing or malformed signature headers")
	// ErrSignature: no signature in the request matches any configured secret.
	ErrSignature = errors.New("webhook: no valid signature")
	// ErrTimestamp: the signature is valid but its timestamp is too old or too
	// far in the future.
	ErrTimestamp = errors.New("webhook: timestamp outside tolerance")
	// ErrReplay: the message id (or signed content) was already accepted inside
	// the replay window.
	ErrReplay = errors.New("webhook: replayed message")
	// ErrSecret: a configured secret cannot be used as a key for the scheme
	// (e.g. a Standard Webhooks secret that is not base64). An operator error,
	// never the sender's; its text never contains the secret.
	ErrSecret = errors.New("webhook: unusable secret")
)

// Verifier is one signature scheme.
type Verifier interface {
	// Verify checks the request's signature headers against body, the raw
	// bytes as received, with every secret in turn (rotation), then the signed
	// timestamp against now ± tolerance (a tolerance <= 0 means the default,
	// 5m). It returns the message id that replay protection keys on: the
	// vendor's own id where the scheme has one (webhook-id, X-GitHub-Delivery),
	// otherwise a digest of the signed content. Errors wrap the sentinels above.
	Verify(h http.Header, body []byte, secrets []secret.Value, now time.Time, tolerance time.Duration) (msgID string, err error)
	// Sign returns the headers a vendor would send for body. Schemes that
	// carry several signatures (standard, stripe, hmac_sha256) sign with every
	// secret; github and slack sign with the first.
	Sign(body []byte, secrets []secret.Value, p SignParams) (http.Header, error)
	// SignsTimestamp reports whether the scheme signs a timestamp; without one
	// (github, hmac_sha256 with signed: body) replay ids are all that stops a
	// captured request from being played again later.
	SignsTimestamp() bool
}

var (
	_ Verifier = standard{}
	_ Verifier = stripe{}
	_ Verifier = github{}
	_ Verifier = slack{}
	_ Verifier = (*generic)(nil)
)

// SignParams are the per-message inputs of Sign.
type SignParams struct {
	// ID is the message id (webhook-id, X-GitHub-Delivery); ignored by schemes
	// that have none.
	ID string
	// Timestamp is the signing time (Unix seconds are used).
	Timestamp time.Time
}

// NewVerifier returns the Verifier for w.Scheme.
func NewVerifier(w *Spec) (Verifier, error) {
	switch w.Scheme {
	case "standard":
		return standard{}, nil
	case "stripe":
		return stripe{}, nil
	case "github":
		return github{}, nil
	case "slack":
		return slack{}, nil
	case "hmac_sha256":
		return newGeneric(w)
	}
	return nil, fmt.Errorf("webhook: unknown scheme %q (want standard, stripe, github, slack or hmac_sha256)", w.Scheme)
}

// maxSignatures bounds how many signatures one header may carry, so a header
// stuffed with thousands of entries costs nothing.
const maxSignatures = 16

// parseUnix parses a Unix-seconds timestamp written canonically: digits only,
// no sign, no leading zero, so the string signed is the string parsed.
func parseUnix(s string) (time.Time, error) {
	if s == "" || len(s) > 12 {
		return time.Time{}, fmt.Errorf("%w: timestamp %s", ErrMalformed, describeLen(s))
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || strconv.FormatInt(n, 10) != s {
		return time.Time{}, fmt.Errorf("%w: timestamp is not canonical Unix seconds", ErrMalformed)
	}
	return time.Unix(n, 0), nil
}

func describeLen(s string) string {
	if s == "" {
		return "is empty"
	}
	return "is too long"
}

// checkTolerance refuses timestamps too old and, unlike Stripe's own library,
// too far in the future as well.
func checkTolerance(ts, now time.Time, tol time.Duration) error {
	if tol <= 0 {
		tol = DefaultTolerance
	}
	switch d := now.Sub(ts); {
	case d > tol:
		return fmt.Errorf("%w: %s old, tolerance %s", ErrTimestamp, d.Truncate(time.Second), tol)
	case -d > tol:
		return fmt.Errorf("%w: %s in the future, tolerance %s", ErrTimestamp, (-d).Truncate(time.Second), tol)
	}
	return nil
}

// mac is HMAC-SHA256 of the concatenated parts.
func mac(key []byte, parts ...[]byte) []byte {
	m := hmac.New(sha256.New, key)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

// matchAny reports whether any received signature equals want, comparing in
// constant time.
func matchAny(want []byte, got [][]byte) bool {
	ok := false
	for _, g := range got {
		if hmac.Equal(want, g) {
			ok = true
		}
	}
	return ok
}

// contentID is the replay id of schemes without a message id: a digest of the
// signed content (never of a secret).
func contentID(parts ...[]byte) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write(p)
	}
	return "sig_" + hex.EncodeToString(h.Sum(nil))
}

// single returns the one value of header name: none is ErrMalformed, and so
// are several (two copies of a signed header are ambiguous).
func single(h http.Header, name string) (string, error) {
	vs := h.Values(name)
	switch len(vs) {
	case 0:
		return "", fmt.Errorf("%w: header %s missing", ErrMalformed, name)
	case 1:
		if vs[0] == "" {
			return "", fmt.Errorf("%w: header %s empty", ErrMalformed, name)
		}
		return vs[0], nil
	}
	return "", fmt.Errorf("%w: header %s repeated", ErrMalformed, name)
}

func needSecrets(secrets []secret.Value) error {
	if len(secrets) == 0 {
		return fmt.Errorf("%w: no secret configured", ErrSecret)
	}
	for i, s := range secrets {
		if s.IsZero() {
			return fmt.Errorf("%w: secret #%d is empty", ErrSecret, i+1)
		}
	}
	return nil
}

// validID accepts vendor message ids of 1–256 visible ASCII characters other
// than '.', which Standard Webhooks forbids because it delimits the signed
// content.
func validID(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '.' {
			return false
		}
	}
	return true
}
