package gateway

import (
	"context"
	"sort"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis-dev/portcullis/internal/admin"
)

// The gateway is the admin API's admin.API; package admin serves it.
var _ admin.API = (*Gateway)(nil)

// StatusHook adds per-integration runtime state the gateway does not own
// (the credential's) to st.
type StatusHook func(name string, st *admin.Status)

// Integrations is the body of GET /api/v1/integrations.
func (g *Gateway) Integrations() admin.IntegrationList {
	rt := g.rt.Load()
	names := make([]string, 0, len(rt.integrations))
	for n := range rt.integrations {
		names = append(names, n)
	}
	sort.Strings(names)
	out := admin.IntegrationList{Integrations: make([]admin.Integration, 0, len(names))}
	for _, n := range names {
		in := rt.integrations[n]
		s := admin.Integration{Name: n, Upstream: in.upstream.Redacted(), Routes: len(rt.cfg.Integrations[n].Routes), Status: g.status(in)}
		if g.opts.Status != nil {
			g.opts.Status(n, &s.Status)
		}
		out.Integrations = append(out.Integrations, s)
	}
	return out
}

// RefreshCredential refreshes the credential of integration name now.
func (g *Gateway) RefreshCredential(ctx context.Context, name string) error {
	in, ok := g.rt.Load().integrations[name]
	switch {
	case !ok:
		return admin.ErrUnknownIntegration
	case in.core.refresh == nil:
		return admin.ErrNoCredential
	}
	return in.core.refresh(ctx)
}

// SetDisabled flips the kill switch of integration name.
func (g *Gateway) SetDisabled(ctx context.Context, name string, disabled bool, by string) error {
	if _, ok := g.rt.Load().integrations[name]; !ok {
		return admin.ErrUnknownIntegration
	}
	if g.kill == nil {
		return admin.ErrNoStore
	}
	if disabled {
		return g.kill.Disable(ctx, name, by)
	}
	return g.kill.Enable(ctx, name, by)
}

// Gatherer is the gateway's metrics registry, for GET /metrics.
func (g *Gateway) Gatherer() prometheus.Gatherer { return g.metrics.Registry }
