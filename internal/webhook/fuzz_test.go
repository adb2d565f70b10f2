package webhook

import (
	"bytes"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/secret"
)

// Seeds come from the table cases and vendor vectors above.

func FuzzParseUnix(f *testing.F) {
	for _, s := range []string{"1614265330", "1531420618", "0", "+1", "01", "17e8", "", "9999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ts, err := parseUnix(s)
		if err == nil && strconv.FormatInt(ts.Unix(), 10) != s {
			t.Errorf("accepted non-canonical %q", s)
		}
	})
}

func FuzzParseStandardSignatures(f *testing.F) {
	for _, s := range []string{
		"v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
		"v1,bm9wZQ== v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg==",
		"v1", ",", "", "v2,abc",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sigs, err := parseStandardSignatures(s)
		for _, sig := range sigs {
			if len(sig) != 32 {
				t.Errorf("kept a %d-byte signature", len(sig))
			}
		}
		if err == nil && len(sigs) == 0 {
			t.Error("no error and no signature")
		}
	})
}

func FuzzParseStripe(f *testing.F) {
	for _, s := range []string{
		"t=1492774577,v1=88a022085c6bdb887b02cb26ff76dd681234d9675c0f22844059f55552a8883a",
		"t=1492774577,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd,v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39",
		"v1,t=1", "t=", "t=1,t=2,v1=00", "t=1,v1=bad_signature",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parseStripe(s)
		if err != nil {
			return
		}
		if _, perr := parseUnix(p.tsRaw); perr != nil || !strings.Contains(s, "t="+p.tsRaw) {
			t.Errorf("accepted timestamp %q not from the header", p.tsRaw)
		}
		for _, sig := range p.sigs {
			if len(sig) != 32 || !strings.Contains(strings.ToLower(s), "v1="+hex.EncodeToString(sig)) {
				t.Errorf("signature %x is not a v1 entry of the header", sig)
			}
		}
	})
}

func FuzzParseVendorSignatures(f *testing.F) {
	for _, s := range []string{
		"sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
		"v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
		"sha1=abc", "v0=", "", "sha256=zz",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if b, err := parseGitHubSignature(s); err == nil && "sha256="+hex.EncodeToString(b) != strings.ToLower(s) {
			t.Errorf("github: %q parsed to %x", s, b)
		}
		if b, err := parseSlackSignature(s); err == nil && "v0="+hex.EncodeToString(b) != strings.ToLower(s) {
			t.Errorf("slack: %q parsed to %x", s, b)
		}
	})
}

func FuzzParseGenericSignatures(f *testing.F) {
	for _, s := range []string{
		"sha256=62dc18328be97be34bbafc33c5bbfe58f042ba0691ae0899cc4bda6050f2818a",
		"sha256=00, sha256=62dc18328be97be34bbafc33c5bbfe58f042ba0691ae0899cc4bda6050f2818a",
		"YtwYMovpe+NLuvwzxbv+WPBCugaRrgiZzEvaYFDygYo=", "", ",,,",
	} {
		f.Add(s)
	}
	hexG, _ := newGeneric(&genericHex)
	b64G, _ := newGeneric(&genericB64)
	f.Fuzz(func(t *testing.T, s string) {
		for _, g := range []*generic{hexG, b64G} {
			sigs, err := g.parseGenericSignatures(s)
			for _, sig := range sigs {
				if len(sig) != 32 {
					t.Errorf("kept a %d-byte signature", len(sig))
				}
			}
			if err == nil && len(sigs) == 0 {
				t.Error("no error and no signature")
			}
		}
	})
}

// FuzzVerifyStandard: whatever the headers, Verify accepts only when the
// signature header holds the MAC of exactly (id, timestamp, body).
func FuzzVerifyStandard(f *testing.F) {
	f.Add("msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", []byte(`{"test": 2432232314}`))
	f.Add("msg_1", "1614265330", "v1,AAAA", []byte("{}"))
	f.Add("msg.1", "01614265330", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", []byte(""))
	secrets := []secret.Value{secret.New("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")}
	key, _ := standardKey(secrets[0])
	now := time.Unix(1614265330, 0)
	f.Fuzz(func(t *testing.T, id, ts, sig string, body []byte) {
		h := http.Header{}
		h.Set(HeaderWebhookID, id)
		h.Set(HeaderWebhookTimestamp, ts)
		h.Set(HeaderWebhookSignature, sig)
		got, err := standard{}.Verify(h, body, secrets, now, time.Hour)
		if err != nil {
			return
		}
		tsv, _ := strconv.ParseInt(ts, 10, 64)
		if want := standardSignature(key, id, time.Unix(tsv, 0), body); !strings.Contains(sig, want) || got != id {
			t.Errorf("accepted id %q ts %q sig %q without its MAC", id, ts, sig)
		}
	})
}

func FuzzParseHeaderLines(f *testing.F) {
	f.Add([]byte("POST /hooks/slack HTTP/1.1\nX-Slack-Signature: v0=a2\nX-Slack-Request-Timestamp: 1531420618\n"))
	f.Add([]byte("> X-A: b\r\n> X-C: d\r\n"))
	f.Add([]byte("no colon here"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		h, err := parseHeaderLines(raw)
		if err != nil {
			return
		}
		for k := range h {
			if k == "" || strings.ContainsAny(k, " \t") {
				t.Errorf("header name %q accepted", k)
			}
		}
	})
}

func FuzzParseRawRequest(f *testing.F) {
	f.Add([]byte("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}"))
	f.Add([]byte("POST /x HTTP/1.1\nHost: a\n\n{}"))
	f.Add([]byte("POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		_, body, err := parseRawRequest(raw)
		if err == nil && len(body) > len(raw) {
			t.Errorf("body longer than the capture")
		}
	})
}

// The generic scheme config is itself parsed from user input.
func FuzzNewGeneric(f *testing.F) {
	f.Add("X-Signature", "hex", "sha256=", "", "body")
	f.Add("X-Signature", "base64", "", "X-Timestamp", "timestamp.body")
	f.Add("", "b32", ", ", "X-T", "")
	f.Fuzz(func(t *testing.T, header, enc, prefix, tsHeader, signed string) {
		w := &Spec{Scheme: "hmac_sha256", Header: header, Encoding: enc, Prefix: prefix, TimestampHeader: tsHeader, Signed: signed}
		g, err := newGeneric(w)
		if err != nil {
			return
		}
		body := []byte(`{"a":1}`)
		s := []secret.Value{secret.New("k")}
		h, err := g.Sign(body, s, SignParams{Timestamp: time.Unix(1700000000, 0)})
		if err != nil || http.CanonicalHeaderKey(header) != g.header {
			return
		}
		if !validHeaderValue(h.Get(g.header)) || (g.signedTS && !validHeaderValue(h.Get(g.tsHeader))) {
			return // a prefix no HTTP header could carry
		}
		if g.signedTS && http.CanonicalHeaderKey(tsHeader) == g.header {
			return // one header cannot hold both
		}
		if _, err := g.Verify(h, body, s, time.Unix(1700000000, 0), time.Minute); err != nil {
			t.Errorf("config %+v: own signature refused: %v", *w, err)
		}
		if _, err := g.Verify(h, append(bytes.Clone(body), ' '), s, time.Unix(1700000000, 0), time.Minute); err == nil {
			t.Errorf("config %+v: tampered body accepted", *w)
		}
	})
}

func validHeaderValue(v string) bool {
	return v == strings.TrimSpace(v) && !strings.ContainsAny(v, "\r\n\x00")
}
