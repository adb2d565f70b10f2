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
	"sync"
	"time"

	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/internal/egress"
	"github.com/portcullis-dev/portcullis/internal/fallback"
	"github.com/portcullis-dev/portcullis/internal/identity"
	"github.com/portcullis-dev/portcullis/internal/policy"
	"github.com/portcullis-dev/portcullis/internal/resilience"
	"github.com/portcullis-dev/portcullis/internal/validate"
)

// runtime is a compiled config: everything the request path needs, built
// once and read-only afterwards.
type runtime struct {
	cfg          *config.Config
	auth         *identity.Authenticator
	integrations map[string]*integration
	cores        map[string]*core
}

// integration is one compiled integration.
type integration struct {
	// timers pools the calls' deadline timers (see callContext).
	timers   sync.Pool
	name     string
	upstream *url.URL
	basePath string // escaped upstream path without trailing slash
	routes   *policy.Table
	// queued holds "METHOD template" of routes that accept respond-async.
	queued map[string]bool
	// headers is the canonical request-header allowlist.
	headers   []string
	maxReq    int64
	maxResp   int64
	timeout   time.Duration
	proxy     *httputil.ReverseProxy
	core      *core
	stale     *fallback.StaleCache // nil without fallback.stale_for
	validator *validate.Validator  // nil without validate (or mode off)
	// propagateTrace sends traceparent to the vendor.
	propagateTrace bool
	queue          bool
	queueAlways    bool
	// rate_limit.global, kept in the shared store.
	global           bool
	globalBuckets    resilience.LimiterConfig
	globalFailClosed bool
}

// compile turns a validated config into a runtime. It resolves nothing
// remote; errors name the integration and config path. Cores whose
// settings did not change are taken over from the running config.
func compile(cfg *config.Config, o *Options, cs *cores) (*runtime, error) {
	failClosed := cfg.State.OnRedisDown != nil && cfg.State.OnRedisDown.RateLimit == "fail_closed"
	auth, err := identity.New(cfg.Callers)
	if err != nil {
		return nil, err
	}
	rt := &runtime{cfg: cfg, auth: auth, integrations: map[string]*integration{}, cores: map[string]*core{}}
	var errs []error
	specs := specCache{}
	for _, name := range cfg.Names() {
		in, err := compileIntegration(name, cfg, o, cs, specs)
		if err != nil {
			errs = append(errs, fmt.Errorf("integrations.%s: %w", name, err))
			continue
		}
		in.globalFailClosed = failClosed
		rt.integrations[name] = in
		rt.cores[name] = in.core
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return rt, nil
}

func compileIntegration(name string, cfg *config.Config, o *Options, cs *cores, specs specCache) (*integration, error) {
	c := cfg.Integrations[name]
	up, err := url.Parse(c.Upstream)
	if err != nil {
		return nil, fmt.Errorf("upstream: %w", err)
	}
	routes := make([]policy.Route, 0, len(c.Routes))
	in := &integration{
		name:           name,
		upstream:       up,
		basePath:       strings.TrimSuffix(up.EscapedPath(), "/"),
		queued:         map[string]bool{},
		maxReq:         c.Limits.MaxRequestBytes.N,
		maxResp:        c.Limits.MaxResponseBytes.N,
		timeout:        c.Timeouts.Request.D,
		propagateTrace: c.PropagateTrace,
	}
	for _, r := range c.Routes {
		routes = append(routes, policy.Route{Method: r.Method, Path: r.Path, Callers: r.Callers})
		if r.Queue {
			in.queued[r.Method+" "+r.Path] = true
		}
	}
	if in.routes, err = policy.Compile(routes); err != nil {
		return nil, fmt.Errorf("routes: %w", err)
	}
	eg, err := c.Egress.Policy(c.Timeouts, o.Resolver)
	if err != nil {
		return nil, fmt.Errorf("egress: %w", err)
	}
	for _, h := range c.RequestHeaders {
		in.headers = append(in.headers, http.CanonicalHeaderKey(h))
	}
	settings := resilience.Compile(c.Retry, c.CircuitBreaker, c.RateLimit, c.Limits, c.Timeouts.PerTry.D)
	fp := reloadKey(c, settings, eg)
	if cs != nil {
		in.core = cs.get(name, fp)
	}
	if in.core == nil {
		if in.core, err = buildCore(name, c, eg, o, fp, settings); err != nil {
			return nil, err
		}
	}
	if in.validator, err = buildValidator(name, cfg, c, o, specs); err != nil {
		return nil, err
	}
	if rl := c.RateLimit; rl != nil && rl.Global {
		in.global, in.globalBuckets = true, settings.Limiter
	}
	if f := c.Fallback; f != nil {
		if f.StaleFor.D > 0 && o.Store != nil {
			in.stale = fallback.NewStaleCache(o.Store, fallback.StaleConfig{StaleFor: f.StaleFor.D, Shared: f.ShareStale}, o.Clock)
		}
		in.queue, in.queueAlways = f.Queue, f.QueueAlways
	}
	in.proxy = &httputil.ReverseProxy{
		Rewrite:        in.rewrite,
		Transport:      in.core.chain,
		ModifyResponse: in.modifyResponse,
		ErrorHandler:   errorHandler,
		BufferPool:     copyBuffers,
		ErrorLog:       slog.NewLogLogger(o.Logger.Handler().WithAttrs([]slog.Attr{slog.String("integration", name)}), slog.LevelDebug),
		// 0: ReverseProxy flushes streaming bodies (text/event-stream,
		// unknown length) at once and buffers the rest.
		FlushInterval: 0,
	}
	return in, nil
}

// Validate compiles cfg without serving it, for `portcullis check`: route
// templates, egress allowlists, pins and CA files are checked the same way
// serve checks them. It opens no connection and resolves no secret.
func Validate(cfg *config.Config) error {
	o := &Options{Credentials: func(string, *config.Credential, http.RoundTripper, *egress.Policy) (http.RoundTripper, func(context.Context) error, error) {
		return nil, nil, nil
	}}
	o.defaults()
	rt, err := compile(cfg, o, nil)
	if err != nil {
		return err
	}
	for _, k := range rt.cores {
		k.base.CloseIdleConnections()
	}
	return missingOperations(cfg, specCache{})
}
