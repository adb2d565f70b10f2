package server

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/internal/forward"
	"github.com/portcullis-dev/portcullis/internal/gateway"
	"github.com/portcullis-dev/portcullis/internal/mint"
)

// callerMaxHeaderBytes bounds a request's headers on the caller listener
// and inside inspected tunnels.
const callerMaxHeaderBytes = 64 << 10

// newInspect builds what the forward proxy needs to serve inspected
// tunnels: the inspect CA, allowed to mint leaves only for the upstream
// hosts of integrations with proxy.inspect, and the handler that runs each
// request inside a tunnel through the gateway's chain, under the caller
// listener's header and body limits. Nil without server.inspect_ca.
//
// It is built again on every reload (a rotated CA key or a new inspect
// integration takes effect for new tunnels); the leaf cache starts empty.
func (a *assembly) newInspect(cfg *config.Config) (*forward.Inspect, error) {
	if cfg.Server.InspectCA == nil {
		return nil, nil
	}
	hosts := map[string]bool{}
	for _, name := range cfg.Names() {
		in := cfg.Integrations[name]
		if in.Proxy == nil || !in.Proxy.Inspect {
			continue
		}
		if u, err := url.Parse(in.Upstream); err == nil {
			hosts[strings.ToLower(u.Hostname())] = true
		}
	}
	// Leaves only for the hosts inspected tunnels can reach: the forward
	// proxy refuses every other target of an inspect integration.
	auth, err := a.inspectCA(context.Background(), cfg, mint.Options{Allowed: func(h string) bool { return hosts[h] }})
	if err != nil {
		return nil, err
	}
	lim := cfg.Server.Limits.Caller
	serve := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, _ := forward.TunnelFrom(r.Context())
		a.gw.ServeTunneled(w, r, gateway.Tunnel{Integration: t.Integration, Caller: t.Caller, Auth: t.Auth, Host: t.Host, Port: t.Port})
	})
	return &forward.Inspect{
		Leaf:              auth.Leaf,
		Handler:           bodyDeadlines(serve, lim.ReadTimeout.D, lim.BodyStallTimeout.D),
		ReadHeaderTimeout: lim.ReadHeaderTimeout.D,
		MaxHeaderBytes:    callerMaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelDebug),
	}, nil
}
