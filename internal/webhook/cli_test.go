package webhook

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// writeFiles writes name → content into a temp dir and returns its path.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func runSign(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := SignCommand(args, &out, &errb)
	return code, out.String(), errb.String()
}

func runVerify(stdin string, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := VerifyCommand(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestSignCommand(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"std.secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n", // trailing newline as editors write it
		"gh.secret":  "It's a Secret to Everybody",
		"std.json":   `{"test": 2432232314}`,
		"hello.txt":  "Hello, World!",
	})
	p := func(n string) string { return filepath.Join(dir, n) }
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"standard-reference-vector", []string{"--scheme", "standard", "--secret", "file:" + p("std.secret"),
			"--body", p("std.json"), "--id", "msg_p5jXN8AQM9LWM0D4loKWxJek", "--timestamp", "1614265330"},
			"Content-Type: application/json\nwebhook-id: msg_p5jXN8AQM9LWM0D4loKWxJek\n" +
				"webhook-signature: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=\nwebhook-timestamp: 1614265330\n"},
		{"github-docs-example-as-curl", []string{"-scheme", "github", "-secret", "file:" + p("gh.secret"),
			"-body", p("hello.txt"), "-id", "abc-123", "-content-type", "text/plain", "-url", "http://127.0.0.1:8443/hooks/gh"},
			"curl -sS -X POST 'http://127.0.0.1:8443/hooks/gh' \\\n  -H 'Content-Type: text/plain' \\\n" +
				"  -H 'X-GitHub-Delivery: abc-123' \\\n" +
				"  -H 'X-Hub-Signature-256: sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17' \\\n" +
				"  --data-binary @'" + p("hello.txt") + "'\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runSign(tt.args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if diff := cmp.Diff(tt.want, out); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSignThenVerifyRoundTrip(t *testing.T) {
	for _, scheme := range []string{"standard", "stripe", "github", "slack", "hmac_sha256"} {
		t.Run(scheme, func(t *testing.T) {
			secretText := "whsec_cG9ydGN1bGxpcy10ZXN0LXNlY3JldC0yNGJ5dGVz"
			dir := writeFiles(t, map[string]string{"s": secretText, "body.json": `{"a":1}`})
			extra := []string{}
			if scheme == "hmac_sha256" {
				extra = []string{"--header", "X-Sig", "--encoding", "base64", "--timestamp-header", "X-Ts", "--signed", "timestamp.body"}
			}
			args := append([]string{"--scheme", scheme, "--secret", "file:" + filepath.Join(dir, "s"),
				"--body", filepath.Join(dir, "body.json"), "--timestamp", "1700000000"}, extra...)
			code, headers, errOut := runSign(args...)
			if code != 0 {
				t.Fatalf("sign: exit %d: %s", code, errOut)
			}
			vargs := append([]string{"--scheme", scheme, "--secret", "file:" + filepath.Join(dir, "s"),
				"--headers", "-", "--body", filepath.Join(dir, "body.json"), "--now", "1700000060"}, extra...)
			code, out, errOut := runVerify(headers, vargs...)
			if code != 0 || !strings.HasPrefix(out, "OK: valid "+scheme) {
				t.Fatalf("verify: exit %d, %q %q", code, out, errOut)
			}
			if strings.Contains(out+errOut, secretText) {
				t.Errorf("the secret was printed")
			}
		})
	}
}

const stripeCaptureBody = `{"id":"evt_test_webhook","object":"event"}`

func TestVerifyCommand(t *testing.T) {
	slackHeaders := "X-Slack-Signature: v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503\n" +
		"X-Slack-Request-Timestamp: 1531420618\n"
	capture := "POST /hooks/stripe HTTP/1.1\r\nHost: gw.example\r\nContent-Type: application/json\r\n" +
		"Content-Length: 42\r\nStripe-Signature: t=1492774577,v1=88a022085c6bdb887b02cb26ff76dd681234d9675c0f22844059f55552a8883a\r\n\r\n" +
		stripeCaptureBody
	dir := writeFiles(t, map[string]string{
		"slack.secret":      "8f742231b10e8888abcd99yyyzzz85a5",
		"slack.headers":     "POST /hooks/slack HTTP/1.1\n" + slackHeaders,
		"slack.curl":        "> POST /hooks/slack HTTP/1.1\n> " + strings.ReplaceAll(strings.TrimSpace(slackHeaders), "\n", "\n> ") + "\n",
		"slack.body":        slackDocBody,
		"stripe.secret":     "whsec_test_secret",
		"stripe.http":       capture,
		"stripe-lf.http":    strings.ReplaceAll(strings.Replace(capture, "Content-Length: 42\r\n", "", 1), "\r\n", "\n"),
		"stripe-tampered":   strings.Replace(capture, `"event"}`, `"evenT"}`, 1),
		"stripe-no-v1.http": strings.Replace(capture, ",v1=", ",v0=", 1),
	})
	p := func(n string) string { return filepath.Join(dir, n) }
	slack := []string{"--scheme", "slack", "--secret", "file:" + p("slack.secret")}
	stripe := []string{"--scheme", "stripe", "--secret", "file:" + p("stripe.secret")}
	tests := []struct {
		name     string
		args     []string
		stdin    string
		wantCode int
		wantOut  string
	}{
		{"slack-docs-example-at-capture-time", append(slack, "--headers", p("slack.headers"), "--body", p("slack.body"), "--now", "1531420618"), "", 0, "OK: valid slack signature"},
		{"slack-curl-v-headers", append(slack, "--headers", p("slack.curl"), "--body", p("slack.body"), "--tolerance", "0"), "", 0, "OK"},
		{"slack-capture-too-old-today", append(slack, "--headers", p("slack.headers"), "--body", p("slack.body")), "", 1, "REFUSED: the signature is valid but the timestamp is not"},
		{"stripe-raw-request", append(stripe, "--request", p("stripe.http"), "--now", "1492774600"), "", 0, "OK: valid stripe signature"},
		{"stripe-raw-request-stdin-lf-no-length", append(stripe, "--request", "-", "--now", "1492774600"), strings.ReplaceAll(strings.Replace(capture, "Content-Length: 42\r\n", "", 1), "\r\n", "\n"), 0, "OK"},
		{"stripe-tampered-body", append(stripe, "--request", p("stripe-tampered"), "--now", "1492774600"), "", 1, "REFUSED: webhook: no valid signature"},
		{"stripe-no-v1", append(stripe, "--request", p("stripe-no-v1.http"), "--tolerance", "0"), "", 1, "REFUSED"},
		{"stripe-wrong-secret", []string{"--scheme", "stripe", "--secret", "file:" + p("slack.secret"), "--request", p("stripe.http"), "--tolerance", "0"}, "", 1, "REFUSED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runVerify(tt.stdin, tt.args...)
			if code != tt.wantCode || !strings.HasPrefix(out, tt.wantOut) {
				t.Errorf("exit %d %q (stderr %q), want exit %d and output starting %q", code, out, errOut, tt.wantCode, tt.wantOut)
			}
		})
	}
}

func TestCLIUsage(t *testing.T) {
	dir := writeFiles(t, map[string]string{"b": "{}"})
	tests := []struct {
		name     string
		run      func() (int, string, string)
		wantCode int
		wantOut  string // prefix of stdout
		wantErr  string // substring of stderr
	}{
		{"sign-help", func() (int, string, string) { return runSign("-h") }, 0, "Usage: portcullis webhook sign", ""},
		{"verify-help", func() (int, string, string) { return runVerify("", "--help") }, 0, "Usage: portcullis webhook verify", ""},
		{"unknown-flag", func() (int, string, string) { return runSign("--sheme", "github") }, 2, "", "flag provided but not defined"},
		{"no-scheme", func() (int, string, string) { return runSign("--body", filepath.Join(dir, "b")) }, 2, "", "--scheme is required"},
		{"plain-secret-not-echoed", func() (int, string, string) {
			return runSign("--scheme", "github", "--secret", "hunter2-plain-secret", "--body", filepath.Join(dir, "b"))
		}, 2, "", "looks like a plain secret"},
		{"vault-not-resolved-locally", func() (int, string, string) {
			return runSign("--scheme", "github", "--secret", "vault:secret/data/gh#key", "--body", filepath.Join(dir, "b"))
		}, 2, "", "use env:NAME or file:PATH"},
		{"unset-env", func() (int, string, string) {
			return runSign("--scheme", "github", "--secret", "env:PORTCULLIS_TEST_UNSET_SECRET", "--body", filepath.Join(dir, "b"))
		}, 2, "", "PORTCULLIS_TEST_UNSET_SECRET is unset"},
		{"verify-needs-input", func() (int, string, string) {
			return runVerify("", "--scheme", "github", "--secret", "env:HOME")
		}, 2, "", "need --request FILE"},
		{"verify-both-stdin", func() (int, string, string) {
			return runVerify("", "--scheme", "github", "--secret", "env:HOME", "--headers", "-", "--body", "-")
		}, 2, "", "only one of --headers and --body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := tt.run()
			if code != tt.wantCode || !strings.HasPrefix(out, tt.wantOut) || !strings.Contains(errOut, tt.wantErr) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d, stdout %q…, stderr containing %q",
					code, out, errOut, tt.wantCode, tt.wantOut, tt.wantErr)
			}
			if strings.Contains(out+errOut, "hunter2") {
				t.Errorf("a plain secret given by mistake was echoed")
			}
		})
	}
}

func TestSignWithEnvSecret(t *testing.T) {
	t.Setenv("PORTCULLIS_TEST_GH_SECRET", "It's a Secret to Everybody")
	dir := writeFiles(t, map[string]string{"hello.txt": "Hello, World!"})
	code, out, errOut := runSign("--scheme", "github", "--secret", "env:PORTCULLIS_TEST_GH_SECRET", "--body", filepath.Join(dir, "hello.txt"))
	if code != 0 || !strings.Contains(out, "X-Hub-Signature-256: sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17\n") {
		t.Fatalf("exit %d %q %q", code, out, errOut)
	}
	if !strings.Contains(out, "X-GitHub-Delivery: ") {
		t.Errorf("no default delivery id printed")
	}
}
