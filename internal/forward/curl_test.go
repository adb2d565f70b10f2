package forward

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// curlPath finds curl, or fails when PORTCULLIS_REQUIRE_SERVERS=1 (CI
// installs it) and skips otherwise.
func curlPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("curl")
	if err != nil {
		if os.Getenv("PORTCULLIS_REQUIRE_SERVERS") == "1" {
			t.Fatal("curl not installed (apt-get install curl)")
		}
		t.Skip("curl not installed")
	}
	return p
}

// runCurl runs curl with HTTPS_PROXY and HTTP_PROXY set (and no proxy
// flag), as an unmodified program would be configured.
func runCurl(t *testing.T, proxyURL string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, curlPath(t), append([]string{"--silent", "--show-error", "--max-time", "5"}, args...)...)
	cmd.Env = append(os.Environ(), "HTTPS_PROXY="+proxyURL, "HTTP_PROXY="+proxyURL, "https_proxy="+proxyURL, "http_proxy="+proxyURL,
		"NO_PROXY=", "no_proxy=")
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.String(), errb.String(), err
}

func TestCurlThroughProxy(t *testing.T) {
	e := newEnv(t, baseConfig, nil)
	vp := e.tlsVendor.port
	tests := []struct {
		name     string
		caller   string
		token    string // "" uses the caller's real token
		url      string
		wantBody string // on success
		wantErr  string // in curl's stderr on failure
	}{
		{name: "allowed-host", caller: "billing", url: "https://vendor.test:" + vp + "/v1/things", wantBody: `"vendor":"ok"`},
		{name: "plain-http", caller: "billing", url: "http://plain.test:" + e.plainVendor.port + "/v1/plain", wantBody: `"path":"/v1/plain"`},
		{name: "denied-host", caller: "billing", url: "https://other.test:" + vp + "/", wantErr: "403"},
		{name: "denied-port", caller: "billing", url: "https://vendor.test:8443/", wantErr: "403"},
		{name: "private-address", caller: "ops", url: "https://127.0.0.1:" + vp + "/", wantErr: "403"},
		{name: "wrong-credentials", caller: "billing", token: "pcs_not-the-token", url: "https://vendor.test:" + vp + "/", wantErr: "407"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := tt.token
			if tok == "" {
				tok = e.tokens[tt.caller]
			}
			out, stderr, err := runCurl(t, e.proxyURL(tt.caller, tok), "--cacert", e.pki.caFile, tt.url)
			if tt.wantBody != "" {
				if err != nil || !strings.Contains(out, tt.wantBody) {
					t.Fatalf("curl %s: %v\nstdout %s\nstderr %s", tt.url, err, out, stderr)
				}
				return
			}
			if err == nil || !strings.Contains(stderr, tt.wantErr) {
				t.Fatalf("curl %s: err %v, want a %s refusal\nstdout %s\nstderr %s", tt.url, err, tt.wantErr, out, stderr)
			}
		})
	}
}
