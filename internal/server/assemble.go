package server

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portcullis-dev/portcullis/internal/admin"
	"github.com/portcullis-dev/portcullis/internal/anomaly"
	"github.com/portcullis-dev/portcullis/internal/chaos"
	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/internal/credential"
	"github.com/portcullis-dev/portcullis/internal/dashboard"
	"github.com/portcullis-dev/portcullis/internal/egress"
	"github.com/portcullis-dev/portcullis/internal/fallback"
	"github.com/portcullis-dev/portcullis/internal/forward"
	"github.com/portcullis-dev/portcullis/internal/gateway"
	"github.com/portcullis-dev/portcullis/internal/identity"
	"github.com/portcullis-dev/portcullis/internal/mint"
	"github.com/portcullis-dev/portcullis/internal/observe"
	"github.com/portcullis-dev/portcullis/internal/secret"
	"github.com/portcullis-dev/portcullis/internal/store"
	"github.com/portcullis-dev/portcullis/internal/validate"
)

// assembly is one running gateway with its collaborators.
type assembly struct {
	log      *slog.Logger
	scrub    *secret.Scrubber
	resolver *credential.Resolver
	metrics  *observe.Metrics
	gw       *gateway.Gateway
	webhooks *webhooks
	store    store.Store
	usage    *usageWriter
	// injectors by integration, for credential status in the admin API.
	injectors sync.Map
	// fwd is the forward proxy (CONNECT), rebuilt on reload.
	fwd        atomic.Pointer[forward.Proxy]
	fwdMetrics *forward.Metrics
	selfAddrs  atomic.Pointer[[]string] // bound listener addresses, set by Run
	chaos      *chaos.Injector
	series     *dashboard.Series
	hub        *anomaly.Hub
	detector   *anomaly.Detector
	closers    []func()
	dns        *net.Resolver // vendor names (tests); nil: the system's
}

func assemble(ctx context.Context, cfg *config.Config, log *slog.Logger, scrub *secret.Scrubber, dns *net.Resolver) (*assembly, error) {
	a := &assembly{log: log, scrub: scrub, metrics: observe.NewMetrics(), dns: dns}
	internal, err := internalPolicy(cfg)
	if err != nil {
		return nil, err
	}
	vault := credential.VaultOptionsFromEnv()
	if err := checkVaultEgress(cfg, internal, vault.Addr); err != nil {
		return nil, err
	}
	a.resolver = credential.NewResolver(credential.Options{
		Logger:          log,
		Scrubber:        scrub,
		Vault:           vault,
		VaultHTTPClient: internal.Client(vaultClientTimeout),
	})
	a.closers = append(a.closers, a.resolver.Close)
	if err := a.checkSecrets(ctx, cfg); err != nil {
		a.close()
		return nil, err
	}
	st, err := openStore(cfg, log)
	if err != nil {
		a.close()
		return nil, err
	}
	a.store = st
	a.closers = append(a.closers, func() { _ = st.Close() })
	a.usage = newUsageWriter(st, log)
	a.closers = append(a.closers, a.usage.close)
	a.series = dashboard.NewSeries(nil)
	hub, err := anomaly.NewHub(cfg.Alerts.Sinks, log, a.metrics.Registry, anomaly.WithHTTPClient(internal.Client(alertClientTimeout)))
	if err != nil {
		a.close()
		return nil, fmt.Errorf("alerts: %w", err)
	}
	a.hub = hub
	a.closers = append(a.closers, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hub.Close(ctx)
	})
	a.detector = anomaly.NewDetector(anomaly.Config{}, nil, hub)
	tickCtx, stopTick := context.WithCancel(context.Background())
	go func() {
		t := time.NewTicker(time.Minute)
		defer t.Stop()
		for {
			select {
			case <-tickCtx.Done():
				return
			case now := <-t.C:
				a.detector.Tick(now)
			}
		}
	}()
	a.closers = append(a.closers, stopTick)
	vm, err := validate.NewMetrics(a.metrics.Registry)
	if err != nil {
		a.close()
		return nil, err
	}
	a.chaos = chaos.NewInjector(nil, cfg.Chaos.Enabled, nil, chaos.WithLogger(log), chaos.WithRegistry(a.metrics.Registry))
	if err := a.chaos.Load(cfg.Chaos.Faults); err != nil {
		a.close()
		return nil, fmt.Errorf("chaos.faults: %w", err)
	}
	tracer, stopTracer, err := newTracer(cfg.Tracing, internal.Client(otlpClientTimeout))
	if err != nil {
		a.close()
		return nil, err
	}
	a.closers = append(a.closers, stopTracer)
	gw, err := gateway.New(cfg, gateway.Options{
		Tracer:            tracer,
		Faults:            a.chaos.Wrap,
		Events:            hub.Emit,
		ValidationMetrics: vm,
		Logger:            log,
		Metrics:           a.metrics,
		Credentials:       a.credentialFactory(),
		Store:             st,
		OnRecord:          a.onRecord,
		Status:            a.credentialStatus,
		Resolver:          a.dns,
	})
	if err != nil {
		a.close()
		return nil, err
	}
	a.gw = gw
	a.closers = append(a.closers, gw.Close)
	a.fwdMetrics = forward.NewMetrics(a.metrics.Registry)
	fwd, err := a.newForward(cfg)
	if err != nil {
		a.close()
		return nil, err
	}
	a.fwd.Store(fwd)
	a.closers = append(a.closers, func() { a.fwd.Load().Close() })
	// A delivery attempt may take as long as the slowest integration's
	// request timeout; a job claimed by a replica that died (kill -9) is
	// claimed again once its lease, just longer than that, runs out.
	attempt := time.Duration(0)
	for _, in := range cfg.Integrations {
		attempt = max(attempt, in.Timeouts.Request.D)
	}
	worker := fallback.NewWorker(gw.Queue(), fallback.WorkerConfig{
		Target: gw.QueueTarget, Logger: log, AttemptTimeout: attempt, Lease: attempt + 10*time.Second,
	}, nil)
	wctx, stopWorker := context.WithCancel(context.Background())
	go func() { _ = worker.Run(wctx) }()
	a.closers = append(a.closers, func() { stopWorker(); worker.Stop() })
	if len(cfg.Webhooks) > 0 {
		wh, err := newWebhooks(a, cfg)
		if err != nil {
			a.close()
			return nil, err
		}
		a.webhooks = wh
		a.closers = append(a.closers, wh.close)
	}
	return a, nil
}

// openStore opens the embedded store under data_dir, or Redis.
func openStore(cfg *config.Config, log *slog.Logger) (store.Store, error) {
	if cfg.State.Backend == "redis" {
		redis.SetLogger(store.RedisLog{Logger: log})
		r, err := store.OpenRedis(cfg.State.RedisURL, store.RedisOptions{Timeout: cfg.State.RedisTimeout.D, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("state.redis_url: %w", err)
		}
		return r, nil
	}
	if err := os.MkdirAll(cfg.State.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("state.data_dir: %w", err)
	}
	e, err := store.OpenEmbedded(cfg.State.DataDir, store.EmbeddedOptions{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("state.data_dir: %w", err)
	}
	return e, nil
}

// checkSecrets resolves every secret reference once at start-up so that a
// missing variable or an unreachable Vault is reported with the integration
// and reference, never the value, before the gateway takes traffic.
func (a *assembly) checkSecrets(ctx context.Context, cfg *config.Config) error {
	var errs []error
	check := func(path string, ref config.SecretRef) {
		if !ref.IsSet() {
			return
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if _, err := a.resolver.Resolve(cctx, ref, credential.DefaultTTL, time.Hour); err != nil {
			errs = append(errs, fmt.Errorf("%s (line %d): %s: %w", path, cfg.Line(path), ref.Ref(), err))
		}
	}
	check("server.admin_token", cfg.Server.AdminToken)
	if ca := cfg.Server.InspectCA; ca != nil {
		check("server.inspect_ca.key", ca.Key)
	}
	for _, name := range cfg.Names() {
		c := cfg.Integrations[name].Credential
		if c == nil {
			continue
		}
		p := "integrations." + name + ".credential"
		check(p+".secret", c.Secret)
		check(p+".client_secret", c.ClientSecret)
		check(p+".private_key", c.PrivateKey)
	}
	for name, w := range cfg.Webhooks {
		for i, s := range w.Secrets {
			check(fmt.Sprintf("webhooks.%s.secrets[%d]", name, i), s)
		}
		check("webhooks."+name+".forward_secret", w.ForwardSecret)
	}
	if len(errs) > 0 {
		return fmt.Errorf("secrets could not be resolved:\n%w", joinLines(errs))
	}
	return nil
}

type lines []error

func (l lines) Error() string {
	s := ""
	for i, e := range l {
		if i > 0 {
			s += "\n"
		}
		s += "  " + e.Error()
	}
	return s
}

func joinLines(errs []error) error { return lines(errs) }

func (a *assembly) credentialFactory() gateway.CredentialFactory {
	return func(name string, c *config.Credential, base http.RoundTripper, eg *egress.Policy) (http.RoundTripper, func(context.Context) error, error) {
		// Token requests go through the integration's own egress policy:
		// its allowlist, address check, CA file and pins.
		inj, err := credential.NewInjector(name, c, a.resolver, credential.Options{Logger: a.log, Scrubber: a.scrub,
			HTTPClient: eg.Client(tokenClientTimeout)})
		if err != nil {
			return nil, nil, err
		}
		a.injectors.Store(name, inj)
		t := &credential.Transport{Base: base, Injector: inj, Integration: name, Logger: a.log, RevokeOn403: c.RevokeOn403,
			OnRevoked: func(integration string) {
				a.log.Error("vendor credential revoked: the vendor refused the refreshed credential for two callers", "integration", integration)
				a.hub.Emit(anomaly.Event{Kind: "credential_revoked", Integration: integration,
					Message: "the vendor refused the refreshed credential for two different callers; calls answer credential_unavailable until it is rotated"})
			}}
		return t, inj.Refresh, nil
	}
}

// onRecord feeds every finished request to the usage records and the
// dashboard's series.
func (a *assembly) onRecord(r *observe.Record) {
	a.usage.record(r)
	a.series.Observe(r)
	if r.Attempts > 0 {
		a.detector.Observe(anomaly.Sample{Integration: r.Integration, Route: r.Method + " " + r.Route, Caller: r.Caller,
			Status: r.UpstreamStatus, Latency: r.UpstreamLatency, Bytes: r.BytesOut})
	}
}

func (a *assembly) credentialStatus(name string, st *admin.Status) {
	if v, ok := a.injectors.Load(name); ok {
		c := v.(credential.Injector).Status()
		st.Credential = &c
	}
}

func (a *assembly) adminToken() (secret.Value, bool) {
	ref := a.gw.Config().Server.AdminToken
	if !ref.IsSet() {
		return secret.Value{}, false
	}
	s, err := a.resolver.Resolve(context.Background(), ref, credential.DefaultTTL, time.Hour)
	if err != nil {
		return secret.Value{}, false
	}
	return s.Value, true
}

// newForward builds the forward proxy (CONNECT) for cfg.
func (a *assembly) newForward(cfg *config.Config) (*forward.Proxy, error) {
	auth, err := identity.New(cfg.Callers)
	if err != nil {
		return nil, err
	}
	insp, err := a.newInspect(cfg)
	if err != nil {
		return nil, err
	}
	return forward.New(cfg.ForwardIntegrations(), auth, forward.Options{
		Logger:  a.log,
		Metrics: a.fwdMetrics,
		SelfAddrs: func() []string {
			if p := a.selfAddrs.Load(); p != nil {
				return *p
			}
			return nil
		},
		Disabled: a.gw.Disabled,
		Inspect:  insp,
		Resolver: a.dns,
	})
}

// callerHandler sends CONNECT and absolute-form requests to the forward
// proxy and everything else to the reverse proxy.
func (a *assembly) callerHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if forward.IsProxyRequest(r) {
			a.fwd.Load().ServeHTTP(w, r)
			return
		}
		a.gw.ServeHTTP(w, r)
	})
}

func (a *assembly) adminHandler() http.Handler {
	chaosAPI := chaos.AdminHandler(a.chaos, a.log)
	d := dashboard.New(dashboard.Options{
		Series: a.series, Token: a.adminToken, Config: a.gw.Config, Usage: a.store,
		QueueStats: func(ctx context.Context) (int, time.Time, error) { return a.store.Stats(ctx, fallback.QueueName) },
		Chaos:      chaosAPI, Logger: a.log, Secure: true,
		Anomalies: func(n int) any { return a.hub.Recent(n) },
	})
	return admin.Handler(a.gw, admin.Options{Token: a.adminToken, Ready: a.store.Ping, Logger: a.log,
		Extend: func(mux *http.ServeMux, protect func(http.Handler) http.Handler) {
			h := protect(chaosAPI)
			mux.Handle("/api/v1/chaos", h)
			mux.Handle("/api/v1/chaos/", h)
			mux.Handle("GET /api/v1/anomalies", protect(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("Cache-Control", "no-store")
				_ = json.NewEncoder(w).Encode(map[string]any{"anomalies": a.hub.Recent(200)})
			})))
			d.Mount(mux, protect)
		}})
}

func (a *assembly) reload(path string) {
	cfg, warnings, err := config.Load(path)
	if err != nil {
		a.metrics.Reloads.WithLabelValues("error").Inc()
		a.log.Error("config reload refused; the previous config keeps serving", "config", path, "cause", err)
		return
	}
	for _, w := range warnings {
		a.log.Warn("config warning", "path", w.Path, "line", w.Line, "problem", w.Msg)
	}
	if err := a.checkSecrets(context.Background(), cfg); err != nil {
		a.metrics.Reloads.WithLabelValues("error").Inc()
		a.log.Error("config reload refused; the previous config keeps serving", "config", path, "cause", err)
		return
	}
	fwd, err := a.newForward(cfg)
	if err != nil {
		a.log.Error("config reload refused; the previous config keeps serving", "config", path, "cause", err)
		return
	}
	if err := a.gw.Reload(cfg); err != nil {
		fwd.Close()
		a.log.Error("config reload refused; the previous config keeps serving", "config", path, "cause", err)
		return
	}
	// Old tunnels run on under the old rules until they end or reach max_lifetime.
	a.fwd.Swap(fwd).Close()
	a.chaos.SetEnabled(cfg.Chaos.Enabled)
	if err := a.chaos.Load(cfg.Chaos.Faults); err != nil {
		a.log.Error("chaos faults from the new config refused", "cause", err)
	}
	if a.webhooks != nil {
		if err := a.webhooks.load(cfg); err != nil {
			a.log.Error("webhook config reload refused; the previous webhooks keep serving", "config", path, "cause", err)
		}
	}
	a.log.Info("config reloaded", "config", path, "integrations", len(cfg.Integrations))
}

func (a *assembly) close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
}

// ResolveSecrets reads every secret reference of cfg once, as serve does at
// start-up, for `portcullis check --resolve-secrets`. Its error names each
// unreadable reference by config path, line and reference, never by value.
func ResolveSecrets(cfg *config.Config) error {
	a := &assembly{log: slog.New(slog.DiscardHandler), scrub: secret.NewScrubber()}
	internal, err := internalPolicy(cfg)
	if err != nil {
		return err
	}
	vault := credential.VaultOptionsFromEnv()
	if err := checkVaultEgress(cfg, internal, vault.Addr); err != nil {
		return err
	}
	a.resolver = credential.NewResolver(credential.Options{Logger: a.log, Scrubber: a.scrub, Vault: vault,
		VaultHTTPClient: internal.Client(vaultClientTimeout)})
	defer a.resolver.Close()
	if err := a.checkSecrets(context.Background(), cfg); err != nil {
		return err
	}
	// With the key at hand, check it is the inspect CA certificate's own.
	_, err = a.inspectCA(context.Background(), cfg, mint.Options{})
	return err
}
