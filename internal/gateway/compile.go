package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/internal/egress"
	"github.com/portcullis-dev/portcullis/internal/identity"
	"github.com/portcullis-dev/portcullis/internal/policy"
)

// runtime is a compiled config: everything the request path needs, built
// once and read-only afterwards.
type runtime struct {
	cfg          *config.Config
	auth         *identity.Authenticator
	integrations map[string]*integration
}

// integration is one compiled integration.
type integration struct {
	name     string
	upstream *url.URL
	basePath string // escaped upstream path without trailing slash
	routes   *policy.Table
	egress   *egress.Policy
	// headers is the canonical request-header allowlist.
	headers []string
	maxReq  int64
	maxResp int64
	timeout time.Duration
	proxy   *httputil.ReverseProxy
	base    *http.Transport
	refresh func(context.Context) error
}

// compile turns a validated config into a runtime. It resolves nothing
// remote; errors name the integration and config path.
func compile(cfg *config.Config, o *Options) (*runtime, error) {
	auth, err := identity.New(cfg.Callers)
	if err != nil {
		return nil, err
	}
	rt := &runtime{cfg: cfg, auth: auth, integrations: map[string]*integration{}}
	var errs []error
	for _, name := range cfg.Names() {
		in, err := compileIntegration(name, cfg.Integrations[name], o)
		if err != nil {
			errs = append(errs, fmt.Errorf("integrations.%s: %w", name, err))
			continue
		}
		rt.integrations[name] = in
	}
	if err := errors.Join(errs...); err != nil {
		rt.close()
		return nil, err
	}
	return rt, nil
}

func compileIntegration(name string, c *config.Integration, o *Options) (*integration, error) {
	up, err := url.Parse(c.Upstream)
	if err != nil {
		return nil, fmt.Errorf("upstream: %w", err)
	}
	routes := make([]policy.Route, 0, len(c.Routes))
	for _, r := range c.Routes {
		routes = append(routes, policy.Route{Method: r.Method, Path: r.Path, Callers: r.Callers})
	}
	table, err := policy.Compile(routes)
	if err != nil {
		return nil, fmt.Errorf("routes: %w", err)
	}
	eg, err := egress.NewPolicy(egress.Config{
		Allow:               c.Egress.Allow,
		AllowPrivate:        c.Egress.AllowPrivate,
		AllowCIDRs:          c.Egress.AllowCIDRs,
		PinSPKI:             c.Egress.PinSPKI,
		CAFile:              c.Egress.CAFile,
		ConnectTimeout:      c.Timeouts.Connect.D,
		TLSHandshakeTimeout: c.Timeouts.TLS.D,
		Resolver:            o.Resolver,
	})
	if err != nil {
		return nil, fmt.Errorf("egress: %w", err)
	}
	in := &integration{
		name:     name,
		upstream: up,
		basePath: strings.TrimSuffix(up.EscapedPath(), "/"),
		routes:   table,
		egress:   eg,
		maxReq:   c.Limits.MaxRequestBytes.N,
		maxResp:  c.Limits.MaxResponseBytes.N,
		timeout:  c.Timeouts.Request.D,
	}
	for _, h := range c.RequestHeaders {
		in.headers = append(in.headers, http.CanonicalHeaderKey(h))
	}
	base := eg.Transport()
	base.ResponseHeaderTimeout = c.Timeouts.Headers.D
	base.IdleConnTimeout = c.Timeouts.IdleConn.D
	in.base = base

	// The outbound chain, innermost first: base (egress-guarded dialer,
	// verified TLS) → record (times each attempt) → inject (credential on
	// every attempt).
	var chain http.RoundTripper = recordTransport{next: base}
	if c.Credential != nil {
		if o.Credentials == nil {
			return nil, errors.New("credential: no credential provider configured")
		}
		rt, refresh, err := o.Credentials(name, c.Credential, chain)
		if err != nil {
			return nil, fmt.Errorf("credential: %w", err)
		}
		if rt != nil {
			chain, in.refresh = rt, refresh
		}
	}
	in.proxy = &httputil.ReverseProxy{
		Rewrite:        in.rewrite,
		Transport:      chain,
		ModifyResponse: in.modifyResponse,
		ErrorHandler:   errorHandler,
		BufferPool:     bufferPool{},
		ErrorLog:       slog.NewLogLogger(o.Logger.Handler().WithAttrs([]slog.Attr{slog.String("integration", name)}), slog.LevelDebug),
		// -1 would flush after every write; streaming bodies such as
		// text/event-stream are flushed at once by ReverseProxy anyway.
		FlushInterval: 0,
	}
	return in, nil
}

func (rt *runtime) close() {
	for _, in := range rt.integrations {
		in.base.CloseIdleConnections()
	}
}

// Validate compiles cfg without serving it, for `portcullis check`: route
// templates, egress allowlists, pins and CA files are checked the same way
// serve checks them. It opens no connection and resolves no secret.
func Validate(cfg *config.Config) error {
	o := &Options{Credentials: func(string, *config.Credential, http.RoundTripper) (http.RoundTripper, func(context.Context) error, error) {
		return nil, nil, nil
	}}
	o.defaults()
	rt, err := compile(cfg, o)
	if err != nil {
		return err
	}
	rt.close()
	return nil
}
