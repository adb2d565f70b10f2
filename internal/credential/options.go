package credential

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/portcullis-dev/portcullis/internal/clock"
	"github.com/portcullis-dev/portcullis/internal/secret"
)

// Options are shared by the Resolver and the injectors.
type Options struct {
	// Logger receives rotation, refresh-failure and revocation records. Nil
	// discards them.
	Logger *slog.Logger
	// Scrubber gets every value a provider resolves (vendor secrets, client
	// secrets, private keys, Vault tokens and AppRole secret ids). Access
	// tokens and signed JWTs are not added: they are new every few minutes
	// and the Scrubber cannot forget, so it would grow without bound; they
	// only ever sit on the outbound clone of a request. Nil means nothing is
	// registered (tests only).
	Scrubber *secret.Scrubber
	// Clock is the clock; nil means clock.System. Cache ages, token
	// lifetimes, back-off and JWT iat/exp all read it.
	Clock clock.Clock
	// Vault configures the vault: provider.
	Vault VaultOptions
	// HTTPClient is used for OAuth2 token endpoints. The gateway passes one
	// built on the integration's egress policy (egress.Policy.Client), so the
	// token URL's host must be on the integration's egress.allow and every
	// resolved address is checked at dial time. It is copied, and the copy
	// never follows redirects: a redirected token request would carry the
	// client secret to wherever the redirect points. It is required for
	// oauth2_client_credentials and jwt_bearer with a token_url: nil, or a
	// client whose Transport is nil (which would mean
	// http.DefaultTransport, with the environment's proxy), is an error.
	HTTPClient *http.Client
	// VaultHTTPClient carries every request of the vault: provider. The
	// gateway passes one built on the internal_egress policy. Required when
	// a vault: reference is resolved; nil, or a nil Transport, is an error.
	// Its Transport must be an *http.Transport (the Vault client sets its
	// TLS settings from VAULT_CACERT and friends on it).
	VaultHTTPClient *http.Client
	// FetchTimeout bounds one provider read or token request. Default 10 s.
	FetchTimeout time.Duration
}

// VaultOptions configure the vault: provider (HashiCorp Vault or OpenBao,
// KV version 2). Authentication is AppRole when RoleID is set, else the
// token in TokenFile (re-read at every login), else Token.
type VaultOptions struct {
	// Addr is the server, e.g. http://127.0.0.1:8200.
	Addr string
	// Token is a Vault token.
	Token secret.Value
	// TokenFile holds a token (as written by Vault Agent or `bao login`).
	TokenFile string
	// RoleID and SecretID are secret references (env:NAME or file:PATH) to an
	// AppRole's role_id and secret_id; login is POST auth/{AppRoleMount}/login.
	RoleID, SecretID string
	// AppRoleMount is where AppRole is mounted. Default "approle".
	AppRoleMount string
	// Namespace is sent as X-Vault-Namespace (Vault Enterprise, OpenBao).
	Namespace string
}

// VaultOptionsFromEnv reads VAULT_ADDR, VAULT_TOKEN, VAULT_TOKEN_FILE and
// VAULT_NAMESPACE, falling back to OpenBao's BAO_ADDR, BAO_TOKEN and
// BAO_NAMESPACE. When VAULT_ROLE_ID (or BAO_ROLE_ID) is set, AppRole is used
// with RoleID "env:VAULT_ROLE_ID" and SecretID "env:VAULT_SECRET_ID" (or the
// BAO_ names).
func VaultOptionsFromEnv() VaultOptions {
	get := func(names ...string) (string, string) {
		for _, n := range names {
			if v := os.Getenv(n); v != "" {
				return v, n
			}
		}
		return "", ""
	}
	var o VaultOptions
	o.Addr, _ = get("VAULT_ADDR", "BAO_ADDR")
	tok, _ := get("VAULT_TOKEN", "BAO_TOKEN")
	o.Token = secret.New(tok)
	o.TokenFile, _ = get("VAULT_TOKEN_FILE", "BAO_TOKEN_FILE")
	o.Namespace, _ = get("VAULT_NAMESPACE", "BAO_NAMESPACE")
	if _, name := get("VAULT_ROLE_ID", "BAO_ROLE_ID"); name != "" {
		o.RoleID = "env:" + name
		if name == "VAULT_ROLE_ID" {
			o.SecretID = "env:VAULT_SECRET_ID"
		} else {
			o.SecretID = "env:BAO_SECRET_ID"
		}
	}
	return o
}

func (o *Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Logger
}

func (o *Options) now() time.Time { return clock.Or(o.Clock).Now() }

func (o *Options) fetchTimeout() time.Duration {
	if o.FetchTimeout <= 0 {
		return 10 * time.Second
	}
	return o.FetchTimeout
}

func (o *Options) scrub(vals ...secret.Value) {
	if o.Scrubber != nil {
		o.Scrubber.Add(vals...)
	}
}

// scrubString removes registered secrets from provider-supplied text.
func (o *Options) scrubString(s string) string {
	if o.Scrubber == nil {
		return s
	}
	return o.Scrubber.Scrub(s)
}

// ErrNoHTTPClient is returned when a provider or token source that must
// reach the network was given no egress-guarded HTTP client.
var ErrNoHTTPClient = errors.New("no egress-guarded HTTP client configured")

// tokenClient returns the HTTP client for token endpoints: a copy of
// HTTPClient that does not follow redirects.
func (o *Options) tokenClient() (*http.Client, error) {
	if o.HTTPClient == nil || o.HTTPClient.Transport == nil {
		return nil, fmt.Errorf("%w for token requests (Options.HTTPClient)", ErrNoHTTPClient)
	}
	c := *o.HTTPClient
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c, nil
}

// Log keys (snake_case, shared with the gateway's request record).
const (
	logIntegration = "integration"
	logRef         = "credential_ref"
	logVersion     = "credential_version"
	logType        = "credential_type"
	logScopes      = "credential_scopes"
	logStatus      = "status"
	logError       = "error"
)
