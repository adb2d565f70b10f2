package gateway

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/portcullis-dev/portcullis/internal/admin"
	"github.com/portcullis-dev/portcullis/internal/problem"
	"github.com/portcullis-dev/portcullis/internal/secret"
)

// AdminOptions configure the admin listener.
type AdminOptions struct {
	// Token returns the current admin token; false when none is configured
	// (then everything but /healthz and /readyz is refused).
	Token func() (secret.Value, bool)
	// Ready reports readiness problems (state store down, ...); nil is ready.
	Ready func(context.Context) error
	// Extend lets other parts (fallbacks, chaos, anomalies, the dashboard)
	// mount their routes on the same mux, behind the same token check.
	Extend func(mux *http.ServeMux, protect func(http.Handler) http.Handler)
}

// AdminHandler serves /healthz, /readyz, /metrics and /api/v1.
func (g *Gateway) AdminHandler(o AdminOptions) http.Handler {
	mux := http.NewServeMux()
	protect := func(h http.Handler) http.Handler { return adminAuth(o.Token, h) }
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if o.Ready != nil {
			ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
			defer cancel()
			if err := o.Ready(ctx); err != nil {
				// The detail (addresses, errors) goes to the log only:
				// this endpoint needs no token.
				g.log.Warn("not ready", "cause", err)
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = w.Write([]byte("not ready: state store unreachable\n"))
				return
			}
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", protect(promhttp.HandlerFor(g.metrics.Registry, promhttp.HandlerOpts{})))
	mux.Handle("GET /api/v1/integrations", protect(http.HandlerFunc(g.listIntegrations)))
	mux.Handle("POST /api/v1/integrations/{name}/refresh-credentials", protect(http.HandlerFunc(g.refreshCredentials)))
	mux.Handle("POST /api/v1/integrations/{name}/disable", protect(g.killSwitch(true)))
	mux.Handle("POST /api/v1/integrations/{name}/enable", protect(g.killSwitch(false)))
	// Profiles, for the people who own the process; behind the admin token.
	mux.Handle("GET /debug/pprof/", protect(http.HandlerFunc(pprof.Index)))
	mux.Handle("GET /debug/pprof/profile", protect(http.HandlerFunc(pprof.Profile)))
	mux.Handle("GET /debug/pprof/trace", protect(http.HandlerFunc(pprof.Trace)))
	if o.Extend != nil {
		o.Extend(mux, protect)
	}
	return mux
}

func adminAuth(token func() (secret.Value, bool), next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		want, ok := secret.Value{}, false
		if token != nil {
			want, ok = token()
		}
		got, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if c, err := r.Cookie(AdminCookie); got == "" && err == nil {
			got = c.Value
		}
		// Compare digests so the comparison time does not depend on lengths.
		a, b := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want.Reveal()))
		if !ok || want.IsZero() || got == "" || subtle.ConstantTimeCompare(a[:], b[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="portcullis-admin"`)
			problem.Write(w, "", problem.New(problem.Unauthenticated, "admin token required"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// AdminCookie carries the admin token for the dashboard.
const AdminCookie = "portcullis_admin"

// StatusHook adds per-integration runtime state the gateway does not own
// (the credential's) to st.
type StatusHook func(name string, st *admin.Status)

func (g *Gateway) listIntegrations(w http.ResponseWriter, _ *http.Request) {
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
	writeJSON(w, http.StatusOK, out)
}

func (g *Gateway) refreshCredentials(w http.ResponseWriter, r *http.Request) {
	in, ok := g.rt.Load().integrations[r.PathValue("name")]
	if !ok {
		problem.Write(w, "", problem.New(problem.UnknownIntegration, "no such integration"))
		return
	}
	if in.core.refresh == nil {
		writeJSON(w, http.StatusOK, map[string]any{"integration": in.name, "refreshed": false, "reason": "no credential"})
		return
	}
	if err := in.core.refresh(r.Context()); err != nil {
		g.log.Warn("credential refresh failed", "integration", in.name, "cause", err)
		problem.Write(w, "", problem.Wrap(problem.CredentialUnavailable, "credential refresh failed; see the gateway log", err))
		return
	}
	g.log.Info("credential refreshed by admin", "integration", in.name)
	writeJSON(w, http.StatusOK, map[string]any{"integration": in.name, "refreshed": true})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
