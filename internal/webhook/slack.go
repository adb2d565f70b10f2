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

// Slack header names (docs "Verifying requests from Slack").
const (
	HeaderSlackSignature = "X-Slack-Signature"
	HeaderSlackTimestamp = "X-Slack-Request-Timestamp"
)

// slack is Slack's v0 scheme: "v0=" + hex HMAC-SHA256 of
// "v0:{timestamp}:{body}" keyed with the plain signing secret.
type slack struct{}

func (slack) SignsTimestamp() bool { return true }

// parseSlackSignature reads "v0=<64 hex>".
func parseSlackSignature(v string) ([]byte, error) {
	hexSig, ok := strings.CutPrefix(v, "v0=")
	if !ok {
		return nil, fmt.Errorf("%w: %s must start with v0=", ErrMalformed, HeaderSlackSignature)
	}
	b, err := hex.DecodeString(hexSig)
	if err != nil || len(b) != 32 {
		return nil, fmt.Errorf("%w: %s is not 32 hex-encoded bytes", ErrMalformed, HeaderSlackSignature)
	}
	return b, nil
}

func slackBase(ts string, body []byte) [][]byte {
	return [][]byte{[]byte("v0:"), []byte(ts), []byte(":"), body}
}

func (slack) Verify(h http.Header, body []byte, secrets []secret.Value, now time.Time, tol time.Duration) (string, error) {
	if err := needSecrets(secrets); err != nil {
		return "", err
	}
	raw, err := single(h, HeaderSlackSignature)
	if err != nil {
		return "", err
	}
	sig, err := parseSlackSignature(raw)
	if err != nil {
		return "", err
	}
	tsRaw, err := single(h, HeaderSlackTimestamp)
	if err != nil {
		return "", err
	}
	ts, err := parseUnix(tsRaw)
	if err != nil {
		return "", err
	}
	ok := false
	for _, s := range secrets {
		if matchAny(mac([]byte(s.Reveal()), slackBase(tsRaw, body)...), [][]byte{sig}) {
			ok = true
		}
	}
	if !ok {
		return "", fmt.Errorf("%w: %s matches no configured secret", ErrSignature, HeaderSlackSignature)
	}
	if err := checkTolerance(ts, now, tol); err != nil {
		return "", err
	}
	return contentID(slackBase(tsRaw, body)...), nil
}

func (slack) Sign(body []byte, secrets []secret.Value, p SignParams) (http.Header, error) {
	if err := needSecrets(secrets); err != nil {
		return nil, err
	}
	ts := strconv.FormatInt(p.Timestamp.Unix(), 10)
	h := http.Header{}
	h.Set(HeaderSlackSignature, "v0="+hex.EncodeToString(mac([]byte(secrets[0].Reveal()), slackBase(ts, body)...)))
	h.Set(HeaderSlackTimestamp, ts)
	return h, nil
}
