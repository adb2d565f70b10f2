package gateway

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/internal/credential"
	"github.com/portcullis-dev/portcullis/internal/egress"
	"github.com/portcullis-dev/portcullis/internal/problem"
)

const queryCredConfig = `
version: 1
callers:
  billing: {tokens: ["%[3]s"]}
  support: {tokens: ["%[4]s"]}
integrations:
  maps:
    upstream: %[1]s
    egress: {allow: ["%[2]s"], allow_private: true}
    credential: {type: query, param: key, secret: env:PORTCULLIS_TEST_MAPS_KEY}
    timeouts: {connect: 1s, request: 2s}
    routes:
      - {method: GET, path: "/v1/geocode", callers: [billing]}
`

// TestQueryHygiene sends hostile queries byte for byte to a gateway whose
// integration injects its key as ?key=…, and checks what the vendor got.
func TestQueryHygiene(t *testing.T) {
	const secret = "sekret-maps-key"
	t.Setenv("PORTCULLIS_TEST_MAPS_KEY", secret)
	v := newVendor(t, nil)
	resolver := credential.NewResolver(credential.Options{Logger: slog.New(slog.DiscardHandler)})
	fx := newFixtureWith(t, v.URL, queryCredConfig, Options{
		Credentials: func(name string, c *config.Credential, base http.RoundTripper, _ *egress.Policy) (http.RoundTripper, func(context.Context) error, error) {
			inj, err := credential.NewInjector(name, c, resolver, credential.Options{})
			if err != nil {
				return nil, nil, err
			}
			return &credential.Transport{Base: base, Injector: inj, Integration: name}, inj.Refresh, nil
		},
	})
	vendorQuery := func(t *testing.T) string {
		t.Helper()
		select {
		case r := <-v.got:
			return r.URL.RawQuery
		case <-time.After(10 * time.Second):
			t.Fatal("the vendor got no request")
		}
		return ""
	}

	refused := []struct{ name, query, reason string }{
		{"fragment", "a=1#", "fragment"},
		{"fragment-hiding-a-pair", "a=1#key=ATTACKER", "fragment"},
		{"semicolon-pair", "a=1;key=ATTACKER", "semicolon in query"},
		{"raw-quote-angle-brace", `a="<>{}`, "invalid character"},
		{"raw-high-bytes", "a=caf\xc3\xa9", "non-ASCII byte"},
		{"malformed-escape", "a=%zz", "bad escape"},
	}
	for _, tc := range refused {
		t.Run("refused/"+tc.name, func(t *testing.T) {
			resp := fx.rawDo(t, "GET", "/maps/v1/geocode?"+tc.query, fx.billing)
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", resp.StatusCode)
			}
			b := problemOf(t, resp)
			if b.Code != problem.BadRequestPath {
				t.Errorf("code %q, want bad_request_path", b.Code)
			}
			if want := "ambiguous or unsafe query string (" + tc.reason + ")"; b.Detail != want {
				t.Errorf("detail %q, want %q", b.Detail, want)
			}
			select {
			case r := <-v.got:
				t.Errorf("the vendor got %q", r.RequestURI)
			default:
			}
		})
	}

	forwarded := []struct{ name, query, want string }{
		{"valid-query-unchanged", "q=a%23b%3Bc+d&n=/x?y:z@w&q=2", "q=a%23b%3Bc+d&n=/x?y:z@w&q=2&key=" + secret},
		{"caller-key-replaced", "key=ATTACKER&a=1", "a=1&key=" + secret},
		{"every-caller-key-replaced", "key=ATTACKER&key=x", "key=" + secret},
		{"case-variant-replaced", "KEY=ATTACKER&Key=y&a=1", "a=1&key=" + secret},
		{"encoded-name-replaced", "k%65y=ATTACKER&%4B%45%59=z", "key=" + secret},
		{"bare-key-replaced", "key&a=1", "a=1&key=" + secret},
	}
	for _, tc := range forwarded {
		t.Run("forwarded/"+tc.name, func(t *testing.T) {
			resp := fx.rawDo(t, "GET", "/maps/v1/geocode?"+tc.query, fx.billing)
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200: %s", resp.StatusCode, body)
			}
			if got := vendorQuery(t); got != tc.want {
				t.Errorf("vendor query %q, want %q", got, tc.want)
			}
		})
	}
}
