// Package server owns `portcullis serve`: it loads the config, assembles
// the gateway and its collaborators, runs the caller, admin and webhook
// listeners, reloads on SIGHUP or file change, and shuts down gracefully.
package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/internal/observe"
	"github.com/portcullis-dev/portcullis/internal/secret"
)

// Addrs are the addresses the listeners are bound to.
type Addrs struct {
	Caller, Admin, Webhook string
}

// Options for Run.
type Options struct {
	ConfigPath string
	LogOutput  io.Writer
	// Ready, if set, receives the bound addresses once serving.
	Ready func(Addrs)
	// Reload triggers a config reload (SIGHUP is wired by the caller).
	Reload <-chan struct{}
	// Resolver resolves vendor names at dial time, for the reverse and the
	// forward proxy (tests point it at a fake DNS); nil: the system's.
	Resolver *net.Resolver
}

// Run serves until ctx is done, then drains in-flight calls.
func Run(ctx context.Context, o Options) error {
	cfg, warnings, err := config.Load(o.ConfigPath)
	if err != nil {
		return err
	}
	if o.LogOutput == nil {
		o.LogOutput = os.Stderr
	}
	scrub := secret.NewScrubber()
	logOut := observe.NewBufferedWriter(o.LogOutput, 100*time.Millisecond)
	defer logOut.Close()
	log := observe.NewLogger(logOut, cfg.Log.Level, cfg.Log.Format, scrub)
	for _, w := range warnings {
		log.Warn("config warning", "path", w.Path, "line", w.Line, "problem", w.Msg)
	}
	a, err := assemble(ctx, cfg, log, scrub, o.Resolver)
	if err != nil {
		return err
	}
	defer a.close()

	if limit, ok := openFileLimit(); ok {
		if err := checkFDs(cfg, a.webhooks != nil, limit, log); err != nil {
			return err
		}
	}
	lim := cfg.Server.Limits
	listen := func(name, addr string, maxConns int) (net.Listener, error) {
		ln, err := listenCapped(addr, maxConns)
		if err != nil {
			return nil, err
		}
		ln.watch(name, a.metrics.Registry, log)
		return ln, nil
	}
	callerLn, err := listen("caller", cfg.Server.Listen, lim.Caller.MaxConns)
	if err != nil {
		return err
	}
	adminLn, err := listen("admin", cfg.Server.AdminListen, lim.Admin.MaxConns)
	if err != nil {
		callerLn.Close()
		return err
	}
	var webhookLn net.Listener
	if a.webhooks != nil {
		if webhookLn, err = listen("webhook", cfg.Server.WebhookListen, lim.Webhook.MaxConns); err != nil {
			callerLn.Close()
			adminLn.Close()
			return err
		}
	}

	callerSrv := limitServer(&http.Server{
		Handler:        a.callerHandler(),
		MaxHeaderBytes: callerMaxHeaderBytes,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}, lim.Caller)
	if t := cfg.Server.TLS; t != nil {
		tc, err := serverTLS(t)
		if err != nil {
			return err
		}
		callerSrv.TLSConfig = tc
		callerLn = tls.NewListener(callerLn, tc)
	}
	adminSrv := limitServer(&http.Server{Handler: a.adminHandler()}, lim.Admin)
	servers := []*http.Server{callerSrv, adminSrv}
	lns := []net.Listener{callerLn, adminLn}
	addrs := Addrs{Caller: callerLn.Addr().String(), Admin: adminLn.Addr().String()}
	if webhookLn != nil {
		whSrv := limitServer(&http.Server{Handler: a.webhooks, MaxHeaderBytes: 32 << 10}, lim.Webhook)
		servers = append(servers, whSrv)
		lns = append(lns, webhookLn)
		addrs.Webhook = webhookLn.Addr().String()
	}

	self := []string{addrs.Caller, addrs.Admin}
	if addrs.Webhook != "" {
		self = append(self, addrs.Webhook)
	}
	a.selfAddrs.Store(&self)

	errc := make(chan error, len(servers))
	for i := range servers {
		go func(s *http.Server, ln net.Listener) {
			if err := s.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}(servers[i], lns[i])
	}
	log.Info("portcullis serving", "listen", addrs.Caller, "admin_listen", addrs.Admin, "webhook_listen", addrs.Webhook,
		"integrations", len(cfg.Integrations), "config", o.ConfigPath)
	if o.Ready != nil {
		o.Ready(addrs)
	}

	reloads := make(chan struct{}, 1)
	stopWatch := watchFile(ctx, o.ConfigPath, reloads, log)
	defer stopWatch()
	var reloadMu sync.Mutex
	for {
		select {
		case <-ctx.Done():
			log.Info("shutting down", "grace", cfg.Server.ShutdownGrace.D.String())
			sctx, cancel := context.WithTimeout(context.Background(), a.gw.Config().Server.ShutdownGrace.D)
			defer cancel()
			var wg sync.WaitGroup
			for _, s := range servers {
				wg.Add(1)
				go func(s *http.Server) { defer wg.Done(); _ = s.Shutdown(sctx) }(s)
			}
			wg.Wait()
			_ = a.fwd.Load().Shutdown(sctx) // http.Server does not track hijacked tunnels
			return nil
		case err := <-errc:
			return fmt.Errorf("serve: %w", err)
		case <-o.Reload:
			reloadMu.Lock()
			a.reload(o.ConfigPath)
			reloadMu.Unlock()
		case <-reloads:
			reloadMu.Lock()
			a.reload(o.ConfigPath)
			reloadMu.Unlock()
		}
	}
}

// listenCapped binds addr and caps it at maxConns connections.
func listenCapped(addr string, maxConns int) (*capListener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	capped, err := limitListener(ln, maxConns)
	if err != nil {
		ln.Close()
		return nil, err
	}
	return capped, nil
}

// serverTLS builds the caller listener's TLS; client_ca turns on mTLS.
// Certificates are optional even then, so token callers keep working; a
// certificate that is presented must verify.
func serverTLS(t *config.TLS) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(t.Cert, t.Key)
	if err != nil {
		return nil, fmt.Errorf("server.tls: %w", err)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if t.ClientCA != "" {
		pem, err := os.ReadFile(t.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("server.tls.client_ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("server.tls.client_ca: no PEM certificates in %s", t.ClientCA)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return tc, nil
}
