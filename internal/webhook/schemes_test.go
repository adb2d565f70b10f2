package webhook

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/portcullis-dev/portcullis/internal/secret"
)

func sec(s string) secret.Value { return secret.New(s) }

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

// The Slack documentation's example request body (see TestVendorVectors).
const slackDocBody = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"

var genericHex = Spec{Scheme: "hmac_sha256", Header: "X-Signature", Encoding: "hex", Prefix: "sha256="}
var genericB64 = Spec{Scheme: "hmac_sha256", Header: "X-Signature", Encoding: "base64"}
var genericTS = Spec{Scheme: "hmac_sha256", Header: "X-Signature", Encoding: "hex",
	TimestampHeader: "X-Timestamp", Signed: "timestamp.body"}

// TestVendorVectors checks each scheme against the vendor's own published
// example where there is one, and against vectors computed independently
// with `openssl dgst -sha256 -hmac KEY` otherwise. Sign must reproduce the
// same header, so signing and verifying cannot be wrong in the same way.
func TestVendorVectors(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Spec
		secret  string
		header  http.Header
		body    string
		now     int64
		id      string // message id passed to Sign
		wantMsg string
	}{
		{
			// Standard Webhooks reference vector, used by the test suites of the
			// reference libraries in github.com/standard-webhooks/standard-webhooks
			// (e.g. the "sign function works" tests).
			name: "standard-webhooks-reference-vector", cfg: Spec{Scheme: "standard"},
			secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
			header: hdr("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek", "webhook-timestamp", "1614265330",
				"webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
			body: `{"test": 2432232314}`, now: 1614265330, id: "msg_p5jXN8AQM9LWM0D4loKWxJek",
			wantMsg: "msg_p5jXN8AQM9LWM0D4loKWxJek",
		},
		{
			// Independent: key = base64-decoded "portcullis-test-secret-24bytes".
			name: "standard-openssl-vector", cfg: Spec{Scheme: "standard"},
			secret: "whsec_cG9ydGN1bGxpcy10ZXN0LXNlY3JldC0yNGJ5dGVz",
			header: hdr("webhook-id", "msg_portcullis_1", "webhook-timestamp", "1700000000",
				"webhook-signature", "v1,woZI6cYTYeA9XaIM+Lq+5fEL+HCBsxLnfXTPqJxjeaE="),
			body: `{"type":"invoice.paid"}`, now: 1700000000, id: "msg_portcullis_1", wantMsg: "msg_portcullis_1",
		},
		{
			// GitHub docs, "Validating webhook deliveries" → "Testing the webhook
			// payload validation": secret "It's a Secret to Everybody", payload
			// "Hello, World!". The delivery id is ours (GitHub signs none).
			name: "github-docs-example", cfg: Spec{Scheme: "github"},
			secret: "It's a Secret to Everybody",
			header: hdr("X-Hub-Signature-256", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
				"X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
			body: "Hello, World!", now: 1700000000, id: "72d3162e-cc78-11e3-81ab-4c9367dc0958",
			wantMsg: "72d3162e-cc78-11e3-81ab-4c9367dc0958",
		},
		{
			// Slack docs, "Verifying requests from Slack": the walk-through's
			// signing secret, timestamp, slash-command body and signature.
			name: "slack-docs-example", cfg: Spec{Scheme: "slack"},
			secret: "8f742231b10e8888abcd99yyyzzz85a5",
			header: hdr("X-Slack-Signature", "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
				"X-Slack-Request-Timestamp", "1531420618"),
			body: slackDocBody, now: 1531420618 + 60,
			wantMsg: contentID([]byte("v0:1531420618:" + slackDocBody)),
		},
		{
			// Stripe publishes no example with its secret; independent vector with
			// the whole "whsec_…" string as the raw HMAC key (as stripe-go does).
			name: "stripe-openssl-vector", cfg: Spec{Scheme: "stripe"},
			secret: "whsec_test_secret",
			header: hdr("Stripe-Signature", "t=1492774577,v1=88a022085c6bdb887b02cb26ff76dd681234d9675c0f22844059f55552a8883a"),
			body:   `{"id":"evt_test_webhook","object":"event"}`, now: 1492774577,
			wantMsg: contentID([]byte(`1492774577.{"id":"evt_test_webhook","object":"event"}`)),
		},
		{
			name: "hmac-sha256-hex-prefix-openssl-vector", cfg: genericHex, secret: "generic-secret-1",
			header: hdr("X-Signature", "sha256=62dc18328be97be34bbafc33c5bbfe58f042ba0691ae0899cc4bda6050f2818a"),
			body:   `{"event":"order.paid","id":42}`, now: 1700000000,
			wantMsg: contentID([]byte(`{"event":"order.paid","id":42}`)),
		},
		{
			name: "hmac-sha256-base64-openssl-vector", cfg: genericB64, secret: "generic-secret-1",
			header: hdr("X-Signature", "YtwYMovpe+NLuvwzxbv+WPBCugaRrgiZzEvaYFDygYo="),
			body:   `{"event":"order.paid","id":42}`, now: 1700000000,
			wantMsg: contentID([]byte(`{"event":"order.paid","id":42}`)),
		},
		{
			name: "hmac-sha256-timestamp-body-openssl-vector", cfg: genericTS, secret: "generic-secret-1",
			header: hdr("X-Signature", "06566bbf97e641a76d0dbc480f04305a4a6fec9a468b639166a783f0bbe96fb9", "X-Timestamp", "1700000000"),
			body:   `{"event":"order.paid","id":42}`, now: 1700000000,
			wantMsg: contentID([]byte(`1700000000.{"event":"order.paid","id":42}`)),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := NewVerifier(&tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			secrets := []secret.Value{sec(tt.secret)}
			got, err := v.Verify(tt.header, []byte(tt.body), secrets, time.Unix(tt.now, 0), 5*time.Minute)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got != tt.wantMsg {
				t.Errorf("msgID = %q, want %q", got, tt.wantMsg)
			}
			ts := tt.header.Get("webhook-timestamp") + tt.header.Get("X-Slack-Request-Timestamp") + tt.header.Get("X-Timestamp")
			if tt.cfg.Scheme == "stripe" {
				ts = "1492774577"
			}
			p := SignParams{ID: tt.id, Timestamp: time.Unix(tt.now, 0)}
			if ts != "" {
				p.Timestamp = time.Unix(mustAtoi(t, ts), 0)
			}
			signed, err := v.Sign([]byte(tt.body), secrets, p)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			if diff := cmp.Diff(tt.header, signed); diff != "" {
				t.Errorf("Sign headers differ from the vector (-vector +signed):\n%s", diff)
			}
		})
	}
}

func mustAtoi(t *testing.T, s string) int64 {
	t.Helper()
	tm, err := parseUnix(s)
	if err != nil {
		t.Fatal(err)
	}
	return tm.Unix()
}

// schemeCases are the schemes under table test, each with how to tamper with
// one of its signed headers.
var schemeCases = []struct {
	name    string
	cfg     Spec
	secrets [3]string // new, old, unknown
	tamper  func(h http.Header)
	timed   bool
}{
	{"standard", Spec{Scheme: "standard"},
		[3]string{"whsec_bmV3LXNlY3JldC1mb3Itc3RhbmRhcmQ=", "whsec_b2xkLXNlY3JldC1mb3Itc3RhbmRhcmQ=", "whsec_d3Jvbmctc2VjcmV0LWZvci1zdGFuZGFyZA=="},
		func(h http.Header) { h.Set("Webhook-Id", h.Get("Webhook-Id")+"x") }, true},
	{"stripe", Spec{Scheme: "stripe"},
		[3]string{"whsec_new", "whsec_old", "whsec_wrong"},
		func(h http.Header) {
			h.Set("Stripe-Signature", strings.Replace(h.Get("Stripe-Signature"), "t=1700000000", "t=1700000001", 1))
		}, true},
	{"github", Spec{Scheme: "github"},
		[3]string{"gh-new", "gh-old", "gh-wrong"},
		func(h http.Header) { h.Set("X-Hub-Signature-256", flipLastHex(h.Get("X-Hub-Signature-256"))) }, false},
	{"slack", Spec{Scheme: "slack"},
		[3]string{"slack-new", "slack-old", "slack-wrong"},
		func(h http.Header) { h.Set("X-Slack-Request-Timestamp", "1700000001") }, true},
	{"hmac_sha256-body", genericHex,
		[3]string{"hmac-new", "hmac-old", "hmac-wrong"},
		func(h http.Header) { h.Set("X-Signature", flipLastHex(h.Get("X-Signature"))) }, false},
	{"hmac_sha256-timestamp-body", genericTS,
		[3]string{"hmac-new", "hmac-old", "hmac-wrong"},
		func(h http.Header) { h.Set("X-Timestamp", "1700000001") }, true},
}

func flipLastHex(s string) string {
	last := s[len(s)-1]
	if last == '0' {
		return s[:len(s)-1] + "1"
	}
	return s[:len(s)-1] + "0"
}

var baseTime = time.Unix(1700000000, 0)

func TestSchemes(t *testing.T) {
	body := []byte(`{"type":"invoice.paid","data":{"amount":4200}}`)
	for _, sc := range schemeCases {
		newS, oldS, wrongS := sec(sc.secrets[0]), sec(sc.secrets[1]), sec(sc.secrets[2])
		configured := []secret.Value{newS, oldS} // rotation: both accepted
		timeErr := func() error {
			if sc.timed {
				return ErrTimestamp
			}
			return nil // no signed timestamp: only replay ids protect
		}()
		tests := []struct {
			name     string
			signWith secret.Value
			at       time.Duration // signing time relative to now
			body     []byte
			mutate   func(http.Header)
			want     error
		}{
			{name: "good", signWith: newS, body: body},
			{name: "tampered-body", signWith: newS, body: append([]byte(nil), body[:len(body)-1]...), want: ErrSignature},
			{name: "tampered-header", signWith: newS, body: body, mutate: sc.tamper, want: ErrSignature},
			{name: "wrong-secret", signWith: wrongS, body: body, want: ErrSignature},
			{name: "old-secret-during-rotation", signWith: oldS, body: body},
			{name: "new-secret-during-rotation", signWith: newS, body: body},
			{name: "expired", signWith: newS, body: body, at: -6 * time.Minute, want: timeErr},
			{name: "future", signWith: newS, body: body, at: 6 * time.Minute, want: timeErr},
			{name: "inside-tolerance", signWith: newS, body: body, at: -4 * time.Minute},
			{name: "missing-headers", signWith: newS, body: body, mutate: func(h http.Header) { clear(h) }, want: ErrMalformed},
		}
		for _, tt := range tests {
			t.Run(sc.name+"/"+tt.name, func(t *testing.T) {
				v, err := NewVerifier(&sc.cfg)
				if err != nil {
					t.Fatal(err)
				}
				h, err := v.Sign(body, []secret.Value{tt.signWith}, SignParams{ID: "msg_1", Timestamp: baseTime.Add(tt.at)})
				if err != nil {
					t.Fatal(err)
				}
				if tt.mutate != nil {
					tt.mutate(h)
				}
				_, err = v.Verify(h, tt.body, configured, baseTime, 5*time.Minute)
				if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
					t.Errorf("Verify = %v, want %v", err, tt.want)
				}
			})
		}
	}
}

// Standard Webhooks keys are base64 after "whsec_"; one that is not is an
// operator error (ErrSecret, a 503), never a signature failure blamed on the
// sender. Stripe takes the same text as raw bytes (see the Stripe vector,
// whose "whsec_test_secret" is not base64).
func TestStandardSecretMustBeBase64(t *testing.T) {
	body := []byte(`{"id":"evt_1"}`)
	std, _ := NewVerifier(&Spec{Scheme: "standard"})
	h, err := std.Sign(body, []secret.Value{sec("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")}, SignParams{ID: "msg_1", Timestamp: baseTime})
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"whsec_not base64!", "whsec_", "whsec_test_secret"} {
		if _, err := std.Verify(h, body, []secret.Value{sec(bad)}, baseTime, time.Minute); !errors.Is(err, ErrSecret) {
			t.Errorf("standard with secret %q: %v, want ErrSecret", bad, err)
		}
	}
}

func TestSeveralSignaturesInOneHeader(t *testing.T) {
	body := []byte(`{"a":1}`)
	tests := []struct {
		name string
		cfg  Spec
		sign []secret.Value
	}{
		{"standard-two-v1", Spec{Scheme: "standard"}, []secret.Value{sec("whsec_c2VuZGVyLW90aGVyLWtleQ=="), sec("whsec_b3VyLWtleS1mb3ItdGhpcw==")}},
		{"stripe-two-v1", Spec{Scheme: "stripe"}, []secret.Value{sec("whsec_other"), sec("whsec_ours")}},
		{"hmac-two-values", genericHex, []secret.Value{sec("other"), sec("ours")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, _ := NewVerifier(&tt.cfg)
			h, err := v.Sign(body, tt.sign, SignParams{ID: "msg_2", Timestamp: baseTime})
			if err != nil {
				t.Fatal(err)
			}
			// We hold only the second secret: its signature is second in the header.
			if _, err := v.Verify(h, body, tt.sign[1:], baseTime, time.Minute); err != nil {
				t.Errorf("Verify with the second secret: %v", err)
			}
		})
	}
}

func TestGenericConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Spec
		want string
	}{
		{"no-header", Spec{Scheme: "hmac_sha256", Encoding: "hex"}, "header is required"},
		{"bad-encoding", Spec{Scheme: "hmac_sha256", Header: "X-S", Encoding: "b32"}, "encoding"},
		{"unsigned-timestamp", Spec{Scheme: "hmac_sha256", Header: "X-S", Encoding: "hex", TimestampHeader: "X-T"}, "unsigned timestamp"},
		{"signed-timestamp-without-header", Spec{Scheme: "hmac_sha256", Header: "X-S", Encoding: "hex", Signed: "timestamp.body"}, "needs timestamp_header"},
		{"unknown-scheme", Spec{Scheme: "svix"}, "unknown scheme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewVerifier(&tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewVerifier = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
