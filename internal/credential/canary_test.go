package credential

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/conf"
	"github.com/portcullis-dev/portcullis/internal/secret"
)

// A canary secret from each provider must not appear in logs, errors or
// admin output (Status as JSON), through a read, a use, a rotation and a
// failure; and every resolved value is registered with the Scrubber. (This
// package exports no metrics; the gateway's metrics carry names only.)
func TestCanaryNeverLeaks(t *testing.T) {
	// prepare returns the reference, how to write a value under it and how
	// to break it; it may point the options at a store.
	tests := []struct {
		name    string
		prepare func(t *testing.T, o *Options) (ref string, setup func(string), fail func())
	}{
		{
			name: "env",
			prepare: func(t *testing.T, _ *Options) (string, func(string), func()) {
				return "env:PCS_CANARY_KEY",
					func(v string) { t.Setenv("PCS_CANARY_KEY", v) },
					func() { os.Unsetenv("PCS_CANARY_KEY") }
			},
		},
		{
			name: "file",
			prepare: func(t *testing.T, _ *Options) (string, func(string), func()) {
				file := filepath.Join(t.TempDir(), "key")
				return "file:" + file,
					func(v string) { _ = os.WriteFile(file, []byte(v+"\n"), 0o600) },
					func() { _ = os.WriteFile(file, []byte("bad\nvalue-with-newline-in-it"), 0o600) }
			},
		},
		{
			name: "vault",
			prepare: func(t *testing.T, o *Options) (string, func(string), func()) {
				kv := vaultServer(t)
				o.Vault = VaultOptions{Addr: kv.addr, Token: secret.New(kv.token)}
				return kv.ref("canary", "api_key").Ref(),
					func(v string) { kv.put(t, "canary", map[string]any{"api_key": v}, "api_key") },
					// A new version whose value is not a string.
					func() { kv.put(t, "canary", map[string]any{"api_key": 7}, "api_key") }
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			canary1, canary2 := "canary-"+tt.name+"-first-7f3a9c", "canary-"+tt.name+"-second-b41d0e"
			clock := newClock()
			o, logs := testOptions(clock)
			ref, setup, fail := tt.prepare(t, &o)
			setup(canary1)
			r := NewResolver(o)
			defer r.Close()
			in, err := NewInjector("canary", &Spec{Type: "header", Header: "X-Api-Key", Prefix: "Key ",
				Secret: conf.MustRef(ref), TTL: conf.Dur(time.Minute), MaxStale: conf.Dur(time.Minute)}, r, o)
			if err != nil {
				t.Fatal(err)
			}
			var texts []string
			record := func(info Info, err error) {
				b, _ := json.Marshal(in.Status())
				texts = append(texts, string(b), fmt.Sprintf("%v %+v %#v", info, info, in.Status()))
				if err != nil {
					texts = append(texts, err.Error(), fmt.Sprintf("%+v %#v", err, err))
				}
			}
			info, req, err := apply(context.Background(), in)
			if err != nil || req.Header.Get("X-Api-Key") != "Key "+canary1 {
				t.Fatalf("apply: %v", err)
			}
			record(info, nil)
			setup(canary2) // rotation
			record(Info{}, in.Refresh(context.Background()))
			fail()
			clock.Advance(3 * time.Minute) // past TTL and max staleness
			record(Info{}, in.Refresh(context.Background()))
			info, _, err = apply(context.Background(), in)
			if err == nil {
				t.Fatalf("want a failure after breaking the %s provider", tt.name)
			}
			record(info, err)
			texts = append(texts, logs.String())
			for _, c := range []string{canary1, canary2} {
				assertNoCanary(t, c, texts...)
				if got := o.Scrubber.Scrub("x " + c + " y"); got != "x REDACTED y" {
					t.Errorf("%s not registered with the Scrubber: %q", c, got)
				}
			}
			if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), ref) || !strings.Contains(err.Error(), "canary") {
				t.Errorf("failure %q must be ErrUnavailable naming the integration and %s", err, ref)
			}
		})
	}
}

// FuzzParseKVRead feeds arbitrary KV v2 answers to the parser: it must not
// panic, must classify every failure as ErrUnavailable, and must never put a
// value from the answer into an error.
func FuzzParseKVRead(f *testing.F) {
	seeds := []struct {
		status int
		body   string
	}{
		{200, `{"data":{"data":{"api_key":"s3cr3t-value-1"},"metadata":{"created_time":"2026-01-02T03:04:05.123456Z","deletion_time":"","destroyed":false,"version":3}}}`},
		{200, `{"data":{"api_key":"s3cr3t-value-1"}}`},
		{200, `{"data":{"data":{"api_key":12345678},"metadata":{"version":1}}}`},
		{200, `{"data":{"data":{"api_key":["s3cr3t-value-1"]}}}`},
		{200, `{"data":{"data":null,"metadata":{"deletion_time":"2026-01-01T00:00:00Z","version":2}}}`},
		{404, `{"data":{"data":null,"metadata":{"destroyed":true,"version":2}}}`},
		{404, `{"errors":[]}`},
		{403, `{"errors":["permission denied"]}`},
		{503, `{"errors":["Vault is sealed"]}`},
		{200, `<html>`},
		{200, ``},
	}
	for _, s := range seeds {
		f.Add(s.status, []byte(s.body), "api_key")
	}
	f.Fuzz(func(t *testing.T, status int, body []byte, key string) {
		s, err := parseKVRead(status, body, key)
		if err == nil {
			if status != http.StatusOK {
				t.Fatalf("status %d accepted", status)
			}
			_ = s.Value.Reveal()
			return
		}
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("error %v is not ErrUnavailable", err)
		}
		var v struct {
			Data struct {
				Data map[string]any `json:"data"`
			} `json:"data"`
		}
		if json.Unmarshal(body, &v) != nil {
			return
		}
		for k, val := range v.Data.Data {
			if s := fmt.Sprint(val); len(s) >= 8 && k != key && !strings.Contains(key, s) && strings.Contains(err.Error(), s) {
				t.Fatalf("error %q quotes the value of %q", err, k)
			}
		}
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// FuzzTokenResponse feeds arbitrary token endpoint answers through the
// token source: no panic; a token is accepted only with a value and a
// future expiry; a failure is ErrUnavailable and never shows the client
// secret.
func FuzzTokenResponse(f *testing.F) {
	seeds := []struct {
		status int
		ctype  uint8
		body   string
	}{
		{200, 0, `{"access_token":"at","token_type":"bearer","expires_in":60,"scope":"a b"}`},
		{200, 0, `{"access_token":"at","token_type":"Bearer"}`},
		{200, 0, `{"access_token":"at","token_type":"bearer","expires_in":"3600"}`},
		{200, 0, `{"access_token":"at","token_type":"bearer","expires_in":-1}`},
		{200, 0, `{"access_token":"at","token_type":"DPoP","expires_in":60}`},
		{200, 1, `access_token=at&token_type=bearer&expires_in=60`},
		{400, 0, `{"error":"invalid_scope"}`},
		{401, 2, `client_secret=` + canary},
		{200, 0, `{"token_type":"bearer"}`},
		{200, 0, `{"access_token":"at","scope":7}`},
	}
	for _, s := range seeds {
		f.Add(s.status, s.ctype, []byte(s.body))
	}
	types := []string{"application/json", "application/x-www-form-urlencoded", "text/html", "text/plain"}
	f.Fuzz(func(t *testing.T, status int, ctype uint8, body []byte) {
		if status < 100 || status > 999 {
			return
		}
		client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			h := http.Header{"Content-Type": {types[int(ctype)%len(types)]}}
			return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader(string(body))), Request: r}, nil
		})}
		o := Options{HTTPClient: client, Scrubber: secret.NewScrubber()}
		os.Setenv("PCS_FUZZ_CLIENT_SECRET", canary)
		r := NewResolver(o)
		defer r.Close()
		c := oauthCred("https://idp.example/token")
		c.ClientSecret = conf.MustRef("env:PCS_FUZZ_CLIENT_SECRET")
		ts, err := newTokenSource("fuzz", c, r, o)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := ts.request()
		if err != nil {
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("error %v is not ErrUnavailable", err)
			}
			if strings.Contains(err.Error(), canary) {
				t.Fatalf("error shows the client secret: %v", err)
			}
			return
		}
		if tok.value.IsZero() || !tok.expires.After(tok.issued) || tok.usableUntil.After(tok.expires) || status/100 != 2 {
			t.Fatalf("accepted a bad token: status %d, %+v", status, tok)
		}
	})
}
