package credential

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/conf"
	"github.com/portcullis-dev/portcullis/internal/secret"
)

// Bad input at start-up (the gateway calls Refresh on every injector): the
// error names the integration and the reference, never the value.
func TestStartupErrorsNameIntegrationAndReference(t *testing.T) {
	fixed := func(ref conf.SecretRef, addr string) func(*testing.T) (conf.SecretRef, VaultOptions) {
		return func(*testing.T) (conf.SecretRef, VaultOptions) {
			return ref, VaultOptions{Addr: addr, Token: secret.New("unused-token-abcdef")}
		}
	}
	tests := []struct {
		name    string
		prepare func(*testing.T) (conf.SecretRef, VaultOptions)
		want    error
		text    string
	}{
		{name: "unknown-provider", prepare: fixed(conf.SecretRef{Scheme: "aws", Target: "sm/payments"}, ""), want: ErrBadReference, text: "unknown provider"},
		{name: "malformed-vault-reference", prepare: fixed(conf.SecretRef{Scheme: "vault", Target: "secret/payments#api_key"}, ""), want: ErrBadReference, text: "MOUNT/data/PATH#KEY"},
		{name: "missing-key", prepare: func(t *testing.T) (conf.SecretRef, VaultOptions) {
			kv := vaultServer(t)
			kv.put(t, "payments", map[string]any{"api_key": canary}, "api_key")
			return kv.ref("payments", "apikey"), VaultOptions{Addr: kv.addr, Token: secret.New(kv.token)}
		}, want: ErrNotFound, text: `key "apikey"`},
		{name: "unreachable-vault", prepare: fixed(conf.MustRef("vault:secret/data/payments#api_key"), "http://"+closedAddr(t)), want: ErrUnavailable, text: "unreachable"},
		{name: "unset-variable", prepare: fixed(conf.MustRef("env:PCS_NOT_SET_ANYWHERE"), ""), want: ErrNotFound, text: "not set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref, vo := tt.prepare(t)
			o, logs := testOptions(nil)
			o.Vault = vo
			r := NewResolver(o)
			defer r.Close()
			in, err := NewInjector("payments", &Spec{Type: "bearer", Secret: ref, TTL: conf.Dur(time.Minute)}, r, o)
			if err != nil {
				t.Fatal(err)
			}
			err = in.Refresh(context.Background())
			if !errors.Is(err, tt.want) || !errors.Is(err, ErrUnavailable) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			for _, s := range []string{"integration payments", ref.Ref(), tt.text} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("err %q does not mention %q", err, s)
				}
			}
			if st := in.Status(); st.LastError == "" || st.Ref != ref.Ref() {
				t.Errorf("Status does not show the failure: %+v", st)
			}
			assertNoCanary(t, canary, err.Error(), logs.String())
		})
	}
}

func TestNewInjectorRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		c    *Spec
		text string
	}{
		{name: "no-block", c: nil, text: "no credential block"},
		{name: "unknown-type", c: &Spec{Type: "hmac"}, text: `unknown credential type "hmac"`},
		{name: "basic-without-username", c: &Spec{Type: "basic", Secret: conf.MustRef("env:X")}, text: "username"},
		{name: "query-without-param", c: &Spec{Type: "query", Secret: conf.MustRef("env:X")}, text: "param"},
		{name: "bad-header-name", c: &Spec{Type: "header", Header: "X Bad", Secret: conf.MustRef("env:X")}, text: "header"},
		{name: "oauth-bad-token-url", c: &Spec{Type: "oauth2_client_credentials", TokenURL: "ftp://x", ClientID: "c", ClientSecret: conf.MustRef("env:X")}, text: "token_url"},
		{name: "oauth-no-secret", c: &Spec{Type: "oauth2_client_credentials", TokenURL: "https://idp/token", ClientID: "c"}, text: "client_secret"},
		{name: "jwt-bad-algorithm", c: &Spec{Type: "jwt_bearer", PrivateKey: conf.MustRef("env:X"), Algorithm: "HS256"}, text: "algorithm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, _ := testOptions(nil)
			r := NewResolver(o)
			defer r.Close()
			_, err := NewInjector("payments", tt.c, r, o)
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.text) || !strings.Contains(err.Error(), "payments") {
				t.Errorf("err = %v, want ErrConfig naming payments and %q", err, tt.text)
			}
		})
	}
}
