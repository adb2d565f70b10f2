package credential

import (
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/portcullis-dev/portcullis/internal/conf"
)

// Defaults of a `credential:` block.
const (
	// DefaultMaxStale is how long the last good secret is served while
	// refreshing it fails (max_stale). DefaultTTL (resolver.go) is ttl's.
	DefaultMaxStale = time.Hour
	// DefaultJWTTTL is token_ttl for type jwt_bearer without a token_url:
	// the lifetime of the self-signed bearer JWT.
	DefaultJWTTTL = 5 * time.Minute
	// DefaultAssertionTTL is token_ttl when the JWT is an assertion sent
	// to a token endpoint (auth_method private_key_jwt, or jwt_bearer with
	// a token_url): it only has to outlive one token request.
	DefaultAssertionTTL = time.Minute
)

// Spec is an integration's `credential:` block: how the gateway
// authenticates to the vendor. It is plain data; NewInjector compiles a
// provisioned Spec into an Injector. Secret references are compared by
// their text (Ref), so a reload key over Specs changes when a reference
// does; the material behind a reference is re-read on its own TTL.
type Spec struct {
	// Type is bearer, header, basic, query, oauth2_client_credentials or
	// jwt_bearer. Required.
	Type string `yaml:"type"`
	// Secret is the credential (bearer/header/query value, basic
	// password): env:NAME, file:PATH or vault:MOUNT/data/PATH#KEY, never
	// the value itself. Required for bearer, header, basic and query.
	Secret conf.SecretRef `yaml:"secret"`
	// Header names the header for type header. Default Authorization.
	Header string `yaml:"header"`
	// Prefix is prepended to the value for type header ("Token ").
	// Default empty.
	Prefix string `yaml:"prefix"`
	// Param names the query parameter for type query. Required there.
	Param string `yaml:"param"`
	// Username for type basic. Required there.
	Username string `yaml:"username"`
	// MaxAge is the rotation policy checked by `portcullis audit`: a
	// secret older than this is reported. Default unset (not checked).
	MaxAge conf.Duration `yaml:"max_age"`
	// TTL is how long a resolved secret is cached before it is re-read
	// (refreshed in the background after three quarters of it). Default 5m.
	TTL conf.Duration `yaml:"ttl"`
	// MaxStale is how long the last good value is served when a refresh
	// fails. Default 1h.
	MaxStale conf.Duration `yaml:"max_stale"`
	// RevokeOn403 makes a vendor 403 (other than RFC 6750
	// insufficient_scope) count, like a 401, as the vendor rejecting the
	// credential: refresh, retry with fresh material, and revoke once the
	// fresh material is rejected for two distinct callers. Off by default:
	// a 403 is normally an answer about one resource (or a rate limit, as
	// GitHub sends), and is passed to the caller untouched. Turn it on only
	// for a vendor that answers 403 to a dead key.
	RevokeOn403 bool `yaml:"revoke_on_403"`

	// TokenURL is the OAuth2 token endpoint (oauth2_client_credentials,
	// or jwt_bearer exchanging its JWT for a token). Its host:port must be
	// on the integration's egress.allow. Required for
	// oauth2_client_credentials.
	TokenURL string `yaml:"token_url"`
	// ClientID is the OAuth2 client. Required for oauth2_client_credentials.
	ClientID string `yaml:"client_id"`
	// ClientSecret is the client's secret reference, for auth_method
	// basic and post.
	ClientSecret conf.SecretRef `yaml:"client_secret"`
	// Scopes requested; only these. Default none (the client's default
	// scope, which `check` warns about).
	Scopes []string `yaml:"scopes"`
	// Audience and Resource (RFC 8707) are sent with the token request
	// when set.
	Audience string `yaml:"audience"`
	Resource string `yaml:"resource"`
	// AuthMethod is how the client authenticates to the token endpoint:
	// basic (HTTP Basic), post (form fields) or private_key_jwt (a signed
	// assertion, RFC 7523). Default basic for oauth2_client_credentials.
	AuthMethod string `yaml:"auth_method"`

	// PrivateKey is the PEM signing key reference for jwt_bearer and
	// private_key_jwt.
	PrivateKey conf.SecretRef `yaml:"private_key"`
	// Algorithm is RS256, ES256 or EdDSA. Required for jwt_bearer.
	Algorithm string `yaml:"algorithm"`
	// KeyID, Issuer and Subject go into the JWT (kid, iss, sub) when set.
	KeyID   string `yaml:"key_id"`
	Issuer  string `yaml:"issuer"`
	Subject string `yaml:"subject"`
	// TokenTTL is the lifetime of each signed JWT. Default 5m for a
	// self-signed jwt_bearer token, 1m for an assertion sent to a token
	// endpoint.
	TokenTTL conf.Duration `yaml:"token_ttl"`
}

// Provision fills defaults; it resolves nothing. It is idempotent, and
// NewInjector runs it on its own copy, so a Spec built in code gets the
// same defaults as one read from the file.
func (s *Spec) Provision() {
	if s == nil {
		return
	}
	if s.TTL.D <= 0 { // 0 has always meant the default: a secret is never cached for no time
		s.TTL.D = DefaultTTL
	}
	s.MaxStale.Default(DefaultMaxStale)
	if s.Type == "oauth2_client_credentials" && s.AuthMethod == "" {
		s.AuthMethod = "basic"
	}
	if s.Type == "header" && s.Header == "" {
		s.Header = "Authorization"
	}
	if s.TokenTTL.D <= 0 {
		if s.Type == "jwt_bearer" && s.TokenURL == "" {
			s.TokenTTL.D = DefaultJWTTTL
		} else if s.Type == "jwt_bearer" || s.AuthMethod == "private_key_jwt" {
			s.TokenTTL.D = DefaultAssertionTTL
		}
	}
}

// Validate records every problem of a provisioned Spec, with paths
// relative to the credential block. A nil Spec (no credential block) is a
// warning at the block itself. That token_url is on egress.allow spans two
// Specs and is checked by the config package.
func (s *Spec) Validate(r *conf.Report) {
	if s == nil {
		r.Coded(conf.NoCredential).Warnf("", "no credential: calls go to the vendor unauthenticated")
		return
	}
	needSecret := func() {
		if !s.Secret.Given() {
			r.Errorf("secret", "required for type %s (env:NAME, file:PATH or vault:MOUNT/data/PATH#KEY)", s.Type)
		}
	}
	switch s.Type {
	case "bearer":
		needSecret()
	case "header":
		needSecret()
		if !httpguts.ValidHeaderFieldName(s.Header) {
			r.Errorf("header", "not a valid header name")
		}
	case "basic":
		needSecret()
		if s.Username == "" {
			r.Errorf("username", "required for type basic")
		}
	case "query":
		needSecret()
		if s.Param == "" {
			r.Errorf("param", "required for type query")
		}
	case "oauth2_client_credentials":
		conf.HTTPURL(r, "token_url", s.TokenURL)
		if s.ClientID == "" {
			r.Errorf("client_id", "required for oauth2_client_credentials")
		}
		switch s.AuthMethod {
		case "basic", "post":
			if !s.ClientSecret.Given() {
				r.Errorf("client_secret", "required for auth_method %s", s.AuthMethod)
			}
		case "private_key_jwt":
			if !s.PrivateKey.Given() {
				r.Errorf("private_key", "required for auth_method private_key_jwt")
			}
		default:
			r.Errorf("auth_method", "must be basic, post or private_key_jwt")
		}
		if len(s.Scopes) == 0 {
			r.Coded(conf.NoScopes).Warnf("scopes", "no scopes requested: the token gets the client's default scope, often more than needed")
		}
	case "jwt_bearer":
		if !s.PrivateKey.Given() {
			r.Errorf("private_key", "required for jwt_bearer")
		}
		switch s.Algorithm {
		case "RS256", "ES256", "EdDSA":
		default:
			r.Errorf("algorithm", "must be RS256, ES256 or EdDSA")
		}
	case "":
		r.Errorf("type", "required: bearer, header, basic, query, oauth2_client_credentials or jwt_bearer")
	default:
		r.Errorf("type", "unknown credential type %q: want bearer, header, basic, query, oauth2_client_credentials or jwt_bearer", s.Type)
	}
}

// provisioned returns a provisioned copy of s, for the constructors: a
// Spec built in code gets the file's defaults, and the caller's Spec is
// never written to.
func provisioned(s *Spec) *Spec {
	c := *s
	c.Provision()
	return &c
}
