package credential

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/portcullis-dev/portcullis/internal/conf"
	"github.com/portcullis-dev/portcullis/internal/secret"
)

// vaultProvider reads vault:MOUNT/data/PATH#KEY from HashiCorp Vault or
// OpenBao (same HTTP API) through the official client. It logs in lazily:
// AppRole, a token file, or a static token (see VaultOptions). A 403 makes
// it log in again once (AppRole and token file only: a static token cannot
// get better by retrying) and repeat the read.
type vaultProvider struct {
	r   *Resolver
	opt VaultOptions
	c   *vault.Client

	mu       sync.Mutex
	loggedIn bool
	loginGen int       // bumped on every login
	relogAt  time.Time // AppRole: log in again after this (80% of the lease)
}

func newVaultProvider(r *Resolver) (*vaultProvider, error) {
	o := r.o.Vault
	if o.Addr == "" {
		return nil, fmt.Errorf("%w: a vault: reference needs a Vault/OpenBao address (set VAULT_ADDR or BAO_ADDR)", ErrBadReference)
	}
	// The client is built on VaultHTTPClient (the internal_egress policy:
	// Vault's host must be listed there, every resolved address is checked
	// at dial time, no proxy from the environment). vault.DefaultConfig is
	// not used: it reads VAULT_HTTP_PROXY, VAULT_PROXY_ADDR and
	// VAULT_AGENT_ADDR from the environment, which would move the
	// connection (and the token on it) somewhere the config did not name,
	// and honours HTTPS_PROXY. Only the TLS settings of the environment
	// (VAULT_CACERT, VAULT_CLIENT_CERT...) are applied. Address, token and
	// namespace come from VaultOptions only, so the environment cannot add
	// a token we were not told about. Redirects are not followed, neither
	// by net/http nor by the Vault client (DisableRedirects): point
	// VAULT_ADDR at the active node or its load balancer.
	hc := r.o.VaultHTTPClient
	if hc == nil || hc.Transport == nil {
		return nil, fmt.Errorf("%w: vault client: %w (Options.VaultHTTPClient)", ErrBadReference, ErrNoHTTPClient)
	}
	if _, ok := hc.Transport.(*http.Transport); !ok {
		return nil, fmt.Errorf("%w: vault client: Options.VaultHTTPClient.Transport is a %T, want *http.Transport", ErrBadReference, hc.Transport)
	}
	client := *hc
	client.Transport = hc.Transport.(*http.Transport).Clone() // ConfigureTLS edits it
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	cfg := &vault.Config{
		Address:          o.Addr,
		HttpClient:       &client,
		MaxRetries:       0, // the Resolver has its own back-off
		Timeout:          r.o.fetchTimeout(),
		DisableRedirects: true,
	}
	if err := cfg.ConfigureTLS(vaultTLSFromEnv()); err != nil {
		return nil, fmt.Errorf("%w: vault client TLS settings: %w", ErrBadReference, err)
	}
	c, err := vault.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: vault client: %w", ErrBadReference, err)
	}
	c.ClearToken()
	c.ClearNamespace()
	if o.Namespace != "" {
		c.SetNamespace(o.Namespace)
	}
	if o.AppRoleMount == "" {
		o.AppRoleMount = "approle"
	}
	return &vaultProvider{r: r, opt: o, c: c}, nil
}

// vaultTLSFromEnv reads the Vault client's TLS variables, the only part of
// the Vault environment the provider honours.
func vaultTLSFromEnv() *vault.TLSConfig {
	t := &vault.TLSConfig{
		CACert:        os.Getenv(vault.EnvVaultCACert),
		CACertBytes:   []byte(os.Getenv(vault.EnvVaultCACertBytes)),
		CAPath:        os.Getenv(vault.EnvVaultCAPath),
		ClientCert:    os.Getenv(vault.EnvVaultClientCert),
		ClientKey:     os.Getenv(vault.EnvVaultClientKey),
		TLSServerName: os.Getenv(vault.EnvVaultTLSServerName),
	}
	if len(t.CACertBytes) == 0 {
		t.CACertBytes = nil
	}
	return t
}

func (p *vaultProvider) fetch(ctx context.Context, target string) (Secret, error) {
	mount, path, key, err := splitVaultTarget(target)
	if err != nil {
		return Secret{}, err
	}
	gen, err := p.login(ctx)
	if err != nil {
		return Secret{}, err
	}
	status, body, err := p.read(ctx, mount+"/data/"+path)
	if err == nil && status == http.StatusForbidden && p.canRelogin() {
		p.mu.Lock()
		if p.loginGen == gen {
			p.loggedIn = false
		}
		p.mu.Unlock()
		if _, err := p.login(ctx); err != nil {
			return Secret{}, err
		}
		status, body, err = p.read(ctx, mount+"/data/"+path)
	}
	if err != nil {
		return Secret{}, fmt.Errorf("%w: secret store unreachable: %w", ErrUnavailable, err)
	}
	return parseKVRead(status, body, key)
}

// read GETs a path and returns the status and (bounded) body. err is set
// only when no answer came back.
func (p *vaultProvider) read(ctx context.Context, path string) (int, []byte, error) {
	resp, err := p.c.Logical().ReadRawWithContext(ctx, path)
	if resp == nil {
		if err == nil {
			err = errors.New("no response")
		}
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, maxSecretBytes))
	if rerr != nil {
		return 0, nil, rerr
	}
	return resp.StatusCode, body, nil
}

func (p *vaultProvider) canRelogin() bool { return p.opt.RoleID != "" || p.opt.TokenFile != "" }

// login makes sure the client holds a token and returns the login
// generation it belongs to.
func (p *vaultProvider) login(ctx context.Context) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.r.o.now()
	if p.loggedIn && (p.relogAt.IsZero() || now.Before(p.relogAt)) {
		return p.loginGen, nil
	}
	var tok secret.Value
	p.relogAt = time.Time{}
	switch {
	case p.opt.RoleID != "":
		t, lease, err := p.appRoleLogin(ctx)
		if err != nil {
			return 0, err
		}
		tok = t
		if lease > 0 {
			p.relogAt = now.Add(lease * 4 / 5)
		}
	case p.opt.TokenFile != "":
		b, err := os.ReadFile(p.opt.TokenFile)
		if err != nil {
			return 0, fmt.Errorf("%w: reading Vault token file: %w", ErrPermissionDenied, err)
		}
		tok = secret.New(strings.TrimSpace(string(b)))
	case !p.opt.Token.IsZero():
		tok = p.opt.Token
	}
	if tok.IsZero() {
		return 0, fmt.Errorf("%w: no Vault credentials: set VAULT_TOKEN, VAULT_TOKEN_FILE or an AppRole", ErrPermissionDenied)
	}
	p.r.o.scrub(tok)
	p.c.SetToken(tok.Reveal())
	p.loggedIn = true
	p.loginGen++
	return p.loginGen, nil
}

func (p *vaultProvider) appRoleLogin(ctx context.Context) (secret.Value, time.Duration, error) {
	roleID, err := p.localSecret(ctx, p.opt.RoleID, "role_id")
	if err != nil {
		return secret.Value{}, 0, err
	}
	secretID, err := p.localSecret(ctx, p.opt.SecretID, "secret_id")
	if err != nil {
		return secret.Value{}, 0, err
	}
	p.r.o.scrub(secretID)
	p.c.ClearToken()
	s, err := p.c.Logical().WriteWithContext(ctx, "auth/"+p.opt.AppRoleMount+"/login", map[string]any{
		"role_id":   roleID.Reveal(),
		"secret_id": secretID.Reveal(),
	})
	if err != nil {
		var re *vault.ResponseError
		if errors.As(err, &re) {
			return secret.Value{}, 0, fmt.Errorf("%w: AppRole login refused (%d)%s", ErrPermissionDenied, re.StatusCode, vaultErrors(re.Errors))
		}
		return secret.Value{}, 0, fmt.Errorf("%w: AppRole login: secret store unreachable: %w", ErrUnavailable, err)
	}
	if s == nil || s.Auth == nil || s.Auth.ClientToken == "" {
		return secret.Value{}, 0, fmt.Errorf("%w: AppRole login answer has no client token", ErrMalformed)
	}
	return secret.New(s.Auth.ClientToken), time.Duration(s.Auth.LeaseDuration) * time.Second, nil
}

// localSecret resolves an AppRole role_id/secret_id reference, which must be
// env: or file: (a vault: one could not be read before logging in).
func (p *vaultProvider) localSecret(ctx context.Context, ref, what string) (secret.Value, error) {
	scheme, target, err := conf.ParseSecretRef(ref)
	if err != nil || (scheme != "env" && scheme != "file") {
		return secret.Value{}, fmt.Errorf("%w: AppRole %s must be an env:NAME or file:PATH reference", ErrBadReference, what)
	}
	var pr provider = envProvider{}
	if scheme == "file" {
		pr = &fileProvider{r: p.r} // no watch: read at each login
	}
	s, err := pr.fetch(ctx, target)
	if err != nil {
		return secret.Value{}, fmt.Errorf("AppRole %s (%s:%s): %w", what, scheme, target, err)
	}
	return s.Value, nil
}
