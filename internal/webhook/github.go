package webhook

import (
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/internal/secret"
)

// GitHub header names (docs "Validating webhook deliveries", "Webhook events
// and payloads").
const (
	HeaderGitHubSignature = "X-Hub-Signature-256"
	HeaderGitHubDelivery  = "X-GitHub-Delivery"
)

// github is GitHub's scheme: "sha256=" + hex HMAC-SHA256 of the body keyed
// with the plain secret. GitHub signs no timestamp, so replay protection
// rests on the X-GitHub-Delivery id alone.
type github struct{}

func (github) SignsTimestamp() bool { return false }

// parseGitHubSignature reads "sha256=<64 hex>".
func parseGitHubSignature(v string) ([]byte, error) {
	hexSig, ok := strings.CutPrefix(v, "sha256=")
	if !ok {
		return nil, fmt.Errorf("%w: %s must start with sha256=", ErrMalformed, HeaderGitHubSignature)
	}
	b, err := hex.DecodeString(hexSig)
	if err != nil || len(b) != 32 {
		return nil, fmt.Errorf("%w: %s is not 32 hex-encoded bytes", ErrMalformed, HeaderGitHubSignature)
	}
	return b, nil
}

func (github) Verify(h http.Header, body []byte, secrets []secret.Value, _ time.Time, _ time.Duration) (string, error) {
	if err := needSecrets(secrets); err != nil {
		return "", err
	}
	raw, err := single(h, HeaderGitHubSignature)
	if err != nil {
		return "", err
	}
	sig, err := parseGitHubSignature(raw)
	if err != nil {
		return "", err
	}
	id, err := single(h, HeaderGitHubDelivery)
	if err != nil {
		return "", err
	}
	if !validID(id) {
		return "", fmt.Errorf("%w: %s must be 1-256 visible ASCII characters without '.'", ErrMalformed, HeaderGitHubDelivery)
	}
	ok := false
	for _, s := range secrets {
		if matchAny(mac([]byte(s.Reveal()), body), [][]byte{sig}) {
			ok = true
		}
	}
	if !ok {
		return "", fmt.Errorf("%w: %s matches no configured secret", ErrSignature, HeaderGitHubSignature)
	}
	return id, nil
}

func (github) Sign(body []byte, secrets []secret.Value, p SignParams) (http.Header, error) {
	if err := needSecrets(secrets); err != nil {
		return nil, err
	}
	if !validID(p.ID) {
		return nil, fmt.Errorf("%w: delivery id must be 1-256 visible ASCII characters without '.'", ErrMalformed)
	}
	h := http.Header{}
	h.Set(HeaderGitHubSignature, "sha256="+hex.EncodeToString(mac([]byte(secrets[0].Reveal()), body)))
	h.Set(HeaderGitHubDelivery, p.ID)
	return h, nil
}
