package webhook

import (
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/internal/secret"
)

// HeaderStripeSignature carries "t=<unix>,v1=<hex>[,v1=<hex>…]".
const HeaderStripeSignature = "Stripe-Signature"

// stripe is Stripe's scheme (docs "Check the webhook signatures"):
// HMAC-SHA256 over "{t}.{body}" keyed with the whole "whsec_…" string as raw
// bytes, hex-encoded, one v1 entry per active secret.
//
// Hand-written rather than importing stripe-go: its webhook package reads
// time.Now, checks only "too old", and would pull the whole API client in.
type stripe struct{}

func (stripe) SignsTimestamp() bool { return true }

type stripeHeader struct {
	tsRaw string
	ts    time.Time
	sigs  [][]byte
}

// parseStripe reads the Stripe-Signature value as stripe-go does: comma-
// separated key=value pairs, unknown keys (v0, future schemes) ignored, v1
// values that are not 32 hex-encoded bytes ignored. Unlike stripe-go it
// requires exactly one t.
func parseStripe(v string) (stripeHeader, error) {
	var p stripeHeader
	pairs := strings.Split(v, ",")
	if len(pairs) > maxSignatures+2 {
		return p, fmt.Errorf("%w: %s has too many entries", ErrMalformed, HeaderStripeSignature)
	}
	for _, pair := range pairs {
		k, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok || strings.Contains(val, "=") {
			return p, fmt.Errorf("%w: %s entries must be key=value", ErrMalformed, HeaderStripeSignature)
		}
		switch k {
		case "t":
			if p.tsRaw != "" {
				return p, fmt.Errorf("%w: %s has two timestamps", ErrMalformed, HeaderStripeSignature)
			}
			ts, err := parseUnix(val)
			if err != nil {
				return p, err
			}
			p.tsRaw, p.ts = val, ts
		case "v1":
			if b, err := hex.DecodeString(val); err == nil && len(b) == 32 {
				p.sigs = append(p.sigs, b)
			}
		}
	}
	if p.tsRaw == "" {
		return p, fmt.Errorf("%w: %s has no t=", ErrMalformed, HeaderStripeSignature)
	}
	if len(p.sigs) == 0 {
		return p, fmt.Errorf("%w: %s has no well-formed v1", ErrSignature, HeaderStripeSignature)
	}
	return p, nil
}

func (stripe) Verify(h http.Header, body []byte, secrets []secret.Value, now time.Time, tol time.Duration) (string, error) {
	if err := needSecrets(secrets); err != nil {
		return "", err
	}
	raw, err := single(h, HeaderStripeSignature)
	if err != nil {
		return "", err
	}
	p, err := parseStripe(raw)
	if err != nil {
		return "", err
	}
	ok := false
	for _, s := range secrets {
		if matchAny(stripeMAC(s, p.tsRaw, body), p.sigs) {
			ok = true
		}
	}
	if !ok {
		return "", fmt.Errorf("%w: %s matches no configured secret", ErrSignature, HeaderStripeSignature)
	}
	if err := checkTolerance(p.ts, now, tol); err != nil {
		return "", err
	}
	return contentID([]byte(p.tsRaw), []byte("."), body), nil
}

func stripeMAC(s secret.Value, ts string, body []byte) []byte {
	return mac([]byte(s.Reveal()), []byte(ts), []byte("."), body)
}

func (stripe) Sign(body []byte, secrets []secret.Value, p SignParams) (http.Header, error) {
	if err := needSecrets(secrets); err != nil {
		return nil, err
	}
	ts := strconv.FormatInt(p.Timestamp.Unix(), 10)
	v := "t=" + ts
	for _, s := range secrets {
		v += ",v1=" + hex.EncodeToString(stripeMAC(s, ts, body))
	}
	h := http.Header{}
	h.Set(HeaderStripeSignature, v)
	return h, nil
}
