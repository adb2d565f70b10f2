package webhook

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/internal/secret"
)

// generic is scheme hmac_sha256, for vendors with a home-grown HMAC: the
// signature travels in Header, hex or base64, after an optional Prefix
// ("sha256="); Signed says whether the body alone or "{timestamp}.{body}" is
// signed, the timestamp (Unix seconds) coming from TimestampHeader. The key
// is the plain secret. Several signatures may be sent separated by commas or
// spaces (rotation).
type generic struct {
	header   string
	base64   bool
	prefix   string
	tsHeader string
	signedTS bool
}

func newGeneric(w *Spec) (*generic, error) {
	g := &generic{header: http.CanonicalHeaderKey(w.Header), prefix: w.Prefix, tsHeader: w.TimestampHeader}
	var errs []error
	if w.Header == "" {
		errs = append(errs, errors.New("header is required"))
	}
	switch w.Encoding {
	case "hex":
	case "base64":
		g.base64 = true
	default:
		errs = append(errs, errors.New("encoding must be hex or base64"))
	}
	switch w.Signed {
	case "", "body":
		if w.TimestampHeader != "" {
			errs = append(errs, errors.New("timestamp_header is set but signed is body: an unsigned timestamp protects nothing; set signed: timestamp.body"))
		}
	case "timestamp.body":
		g.signedTS = true
		if w.TimestampHeader == "" {
			errs = append(errs, errors.New("signed: timestamp.body needs timestamp_header"))
		}
	default:
		errs = append(errs, errors.New("signed must be body or timestamp.body"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("webhook: scheme hmac_sha256: %w", err)
	}
	return g, nil
}

func (g *generic) SignsTimestamp() bool { return g.signedTS }

// parseGenericSignatures splits the header into signatures, strips the
// prefix from each and decodes them; entries that do not decode to 32 bytes
// are ignored.
func (g *generic) parseGenericSignatures(v string) ([][]byte, error) {
	entries := []string{strings.TrimSpace(v)}
	if !strings.ContainsAny(g.prefix, ", ") {
		entries = strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' })
	}
	if len(entries) == 0 || entries[0] == "" {
		return nil, fmt.Errorf("%w: header %s empty", ErrMalformed, g.header)
	}
	if len(entries) > maxSignatures {
		return nil, fmt.Errorf("%w: more than %d signatures", ErrMalformed, maxSignatures)
	}
	var sigs [][]byte
	for _, e := range entries {
		e, ok := strings.CutPrefix(e, g.prefix)
		if !ok {
			continue
		}
		var b []byte
		var err error
		if g.base64 {
			b, err = base64.StdEncoding.DecodeString(e)
		} else {
			b, err = hex.DecodeString(e)
		}
		if err == nil && len(b) == 32 {
			sigs = append(sigs, b)
		}
	}
	if len(sigs) == 0 {
		return nil, fmt.Errorf("%w: header %s holds no well-formed signature", ErrSignature, g.header)
	}
	return sigs, nil
}

func (g *generic) signed(ts string, body []byte) [][]byte {
	if g.signedTS {
		return [][]byte{[]byte(ts), []byte("."), body}
	}
	return [][]byte{body}
}

func (g *generic) encode(b []byte) string {
	if g.base64 {
		return g.prefix + base64.StdEncoding.EncodeToString(b)
	}
	return g.prefix + hex.EncodeToString(b)
}

func (g *generic) Verify(h http.Header, body []byte, secrets []secret.Value, now time.Time, tol time.Duration) (string, error) {
	if err := needSecrets(secrets); err != nil {
		return "", err
	}
	raw, err := single(h, g.header)
	if err != nil {
		return "", err
	}
	sigs, err := g.parseGenericSignatures(raw)
	if err != nil {
		return "", err
	}
	var tsRaw string
	var ts time.Time
	if g.signedTS {
		if tsRaw, err = single(h, g.tsHeader); err != nil {
			return "", err
		}
		if ts, err = parseUnix(tsRaw); err != nil {
			return "", err
		}
	}
	ok := false
	for _, s := range secrets {
		if matchAny(mac([]byte(s.Reveal()), g.signed(tsRaw, body)...), sigs) {
			ok = true
		}
	}
	if !ok {
		return "", fmt.Errorf("%w: header %s matches no configured secret", ErrSignature, g.header)
	}
	if g.signedTS {
		if err := checkTolerance(ts, now, tol); err != nil {
			return "", err
		}
	}
	return contentID(g.signed(tsRaw, body)...), nil
}

func (g *generic) Sign(body []byte, secrets []secret.Value, p SignParams) (http.Header, error) {
	if err := needSecrets(secrets); err != nil {
		return nil, err
	}
	ts := strconv.FormatInt(p.Timestamp.Unix(), 10)
	sigs := make([]string, 0, len(secrets))
	for _, s := range secrets {
		sigs = append(sigs, g.encode(mac([]byte(s.Reveal()), g.signed(ts, body)...)))
	}
	h := http.Header{}
	h.Set(g.header, strings.Join(sigs, ","))
	if g.signedTS {
		h.Set(g.tsHeader, ts)
	}
	return h, nil
}
