package credential

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/portcullis-dev/portcullis/internal/conf"
)

func TestSpecProvision(t *testing.T) {
	tests := []struct {
		name string
		spec Spec
		// want: ttl, max_stale, token_ttl, auth_method, header
		want []any
	}{
		{"bearer", Spec{Type: "bearer"}, []any{5 * time.Minute, time.Hour, time.Duration(0), "", ""}},
		{"header-defaults-authorization", Spec{Type: "header"}, []any{5 * time.Minute, time.Hour, time.Duration(0), "", "Authorization"}},
		{"oauth-defaults-basic", Spec{Type: "oauth2_client_credentials"}, []any{5 * time.Minute, time.Hour, time.Duration(0), "basic", ""}},
		{"private-key-jwt-assertion", Spec{Type: "oauth2_client_credentials", AuthMethod: "private_key_jwt"},
			[]any{5 * time.Minute, time.Hour, time.Minute, "private_key_jwt", ""}},
		{"jwt-bearer-self-signed", Spec{Type: "jwt_bearer"}, []any{5 * time.Minute, time.Hour, 5 * time.Minute, "", ""}},
		{"jwt-bearer-exchanged", Spec{Type: "jwt_bearer", TokenURL: "https://idp.example/token"}, []any{5 * time.Minute, time.Hour, time.Minute, "", ""}},
		{"set-values-stay", Spec{Type: "jwt_bearer", TTL: conf.Dur(time.Minute), MaxStale: conf.Dur(time.Second), TokenTTL: conf.Dur(2 * time.Minute)},
			[]any{time.Minute, time.Second, 2 * time.Minute, "", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.spec
			s.Provision()
			s.Provision() // idempotent
			got := []any{s.TTL.D, s.MaxStale.D, s.TokenTTL.D, s.AuthMethod, s.Header}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestSpecValidate(t *testing.T) {
	ref := conf.MustRef("env:X")
	tests := []struct {
		name string
		spec *Spec
		want []string
	}{
		{"none", nil, []string{"warning "}},
		{"bearer", &Spec{Type: "bearer", Secret: ref}, nil},
		{"bearer-without-secret", &Spec{Type: "bearer"}, []string{"error secret"}},
		{"header-bad-name", &Spec{Type: "header", Secret: ref, Header: "a b"}, []string{"error header"}},
		{"basic-without-username", &Spec{Type: "basic", Secret: ref}, []string{"error username"}},
		{"query-without-param", &Spec{Type: "query"}, []string{"error secret", "error param"}},
		{"oauth-everything-missing", &Spec{Type: "oauth2_client_credentials", TokenURL: "https://idp.example/t?x=1"},
			[]string{"error token_url", "error client_id", "error client_secret", "warning scopes"}},
		{"oauth-private-key-jwt", &Spec{Type: "oauth2_client_credentials", TokenURL: "https://idp.example/t", ClientID: "c", AuthMethod: "private_key_jwt", Scopes: []string{"a"}},
			[]string{"error private_key"}},
		{"oauth-bad-auth-method", &Spec{Type: "oauth2_client_credentials", TokenURL: "https://idp.example/t", ClientID: "c", AuthMethod: "mtls", Scopes: []string{"a"}},
			[]string{"error auth_method"}},
		{"jwt-bearer-bad-algorithm", &Spec{Type: "jwt_bearer", Algorithm: "HS256"}, []string{"error private_key", "error algorithm"}},
		{"no-type", &Spec{}, []string{"error type"}},
		{"unknown-type", &Spec{Type: "ftp"}, []string{"error type"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, conf.Check(tt.spec)); d != "" {
				t.Errorf("problems (-want +got):\n%s", d)
			}
		})
	}
}
