package webhook

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/internal/secret"
)

// Standard Webhooks header names (https://www.standardwebhooks.com, spec
// "Webhook headers").
const (
	HeaderWebhookID        = "Webhook-Id"
	HeaderWebhookTimestamp = "Webhook-Timestamp"
	HeaderWebhookSignature = "Webhook-Signature"
)

// standard is the Standard Webhooks symmetric scheme: HMAC-SHA256 over
// "{id}.{timestamp}.{body}", keyed with the base64 part of a "whsec_" secret,
// sent as space-separated "v1,<base64>" entries.
//
// Hand-written rather than imported: the reference Go library reads time.Now
// and a package-level tolerance (no injected clock), and the whole scheme is
// a dozen lines over crypto/hmac.
type standard struct{}

func (standard) SignsTimestamp() bool { return true }

// standardKey decodes a Standard Webhooks secret: "whsec_" (optional, as in
// the reference libraries) followed by standard base64.
func standardKey(s secret.Value) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s.Reveal(), "whsec_"))
	if err != nil || len(key) == 0 {
		return nil, fmt.Errorf("%w: a standard webhooks secret must be whsec_ followed by base64", ErrSecret)
	}
	return key, nil
}

type standardHeaders struct {
	id    string
	tsRaw string
	ts    time.Time
	sigs  [][]byte // decoded v1 signatures
}

func parseStandard(h http.Header) (standardHeaders, error) {
	var p standardHeaders
	var err error
	if p.id, err = single(h, HeaderWebhookID); err != nil {
		return p, err
	}
	if !validID(p.id) {
		return p, fmt.Errorf("%w: %s must be 1-256 visible ASCII characters without '.'", ErrMalformed, HeaderWebhookID)
	}
	if p.tsRaw, err = single(h, HeaderWebhookTimestamp); err != nil {
		return p, err
	}
	if p.ts, err = parseUnix(p.tsRaw); err != nil {
		return p, err
	}
	p.sigs, err = parseStandardSignatures(strings.Join(h.Values(HeaderWebhookSignature), " "))
	return p, err
}

// parseStandardSignatures reads "v1,<b64> v1,<b64> v1a,<b64>": entries are
// space-separated "version,signature"; only v1 entries that decode to 32
// bytes are kept (others, such as the asymmetric v1a, are ignored).
func parseStandardSignatures(v string) ([][]byte, error) {
	fields := strings.Fields(v)
	if len(fields) == 0 {
		return nil, fmt.Errorf("%w: header %s missing", ErrMalformed, HeaderWebhookSignature)
	}
	if len(fields) > maxSignatures {
		return nil, fmt.Errorf("%w: more than %d signatures", ErrMalformed, maxSignatures)
	}
	var sigs [][]byte
	for _, f := range fields {
		ver, sig, ok := strings.Cut(f, ",")
		if !ok {
			return nil, fmt.Errorf("%w: %s entries must be version,signature", ErrMalformed, HeaderWebhookSignature)
		}
		if ver != "v1" {
			continue
		}
		if b, err := base64.StdEncoding.DecodeString(sig); err == nil && len(b) == 32 {
			sigs = append(sigs, b)
		}
	}
	if len(sigs) == 0 {
		return nil, fmt.Errorf("%w: no well-formed v1 signature", ErrSignature)
	}
	return sigs, nil
}

func (standard) Verify(h http.Header, body []byte, secrets []secret.Value, now time.Time, tol time.Duration) (string, error) {
	if err := needSecrets(secrets); err != nil {
		return "", err
	}
	p, err := parseStandard(h)
	if err != nil {
		return "", err
	}
	ok := false
	for _, s := range secrets {
		key, err := standardKey(s)
		if err != nil {
			return "", err
		}
		if matchAny(standardMAC(key, p.id, p.tsRaw, body), p.sigs) {
			ok = true
		}
	}
	if !ok {
		return "", fmt.Errorf("%w: %s matches no configured secret", ErrSignature, HeaderWebhookSignature)
	}
	if err := checkTolerance(p.ts, now, tol); err != nil {
		return "", err
	}
	return p.id, nil
}

func standardMAC(key []byte, id, ts string, body []byte) []byte {
	return mac(key, []byte(id), []byte("."), []byte(ts), []byte("."), body)
}

// standardSignature is the webhook-signature value for key.
func standardSignature(key []byte, id string, ts time.Time, body []byte) string {
	return "v1," + base64.StdEncoding.EncodeToString(standardMAC(key, id, strconv.FormatInt(ts.Unix(), 10), body))
}

func (standard) Sign(body []byte, secrets []secret.Value, p SignParams) (http.Header, error) {
	if err := needSecrets(secrets); err != nil {
		return nil, err
	}
	if !validID(p.ID) {
		return nil, fmt.Errorf("%w: message id must be 1-256 visible ASCII characters without '.'", ErrMalformed)
	}
	sigs := make([]string, 0, len(secrets))
	for _, s := range secrets {
		key, err := standardKey(s)
		if err != nil {
			return nil, err
		}
		sigs = append(sigs, standardSignature(key, p.ID, p.Timestamp, body))
	}
	h := http.Header{}
	h.Set(HeaderWebhookID, p.ID)
	h.Set(HeaderWebhookTimestamp, strconv.FormatInt(p.Timestamp.Unix(), 10))
	h.Set(HeaderWebhookSignature, strings.Join(sigs, " "))
	return h, nil
}
