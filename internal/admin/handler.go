package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/portcullis-dev/portcullis/internal/problem"
	"github.com/portcullis-dev/portcullis/internal/secret"
)

// API is what the admin API needs of the gateway.
type API interface {
	// Integrations is the body of GET /api/v1/integrations.
	Integrations() IntegrationList
	// RefreshCredential refreshes an integration's credential now:
	// ErrUnknownIntegration, ErrNoCredential or the refresh's failure.
	RefreshCredential(ctx context.Context, name string) error
	// SetDisabled flips an integration's kill switch, by naming who did:
	// ErrUnknownIntegration, ErrNoStore or the store's failure.
	SetDisabled(ctx context.Context, name string, disabled bool, by string) error
	// Gatherer is what GET /metrics serves.
	Gatherer() prometheus.Gatherer
}

// Errors an API reports.
var (
	ErrUnknownIntegration = errors.New("admin: no such integration")
	ErrNoCredential       = errors.New("admin: integration has no credential")
	ErrNoStore            = errors.New("admin: no state store")
)

// Options configure the admin listener.
type Options struct {
	// Token returns the current admin token; false when none is configured
	// (then everything but /healthz and /readyz is refused).
	Token func() (secret.Value, bool)
	// Ready reports readiness problems (state store down, ...); nil is ready.
	Ready func(context.Context) error
	// Extend lets other parts (fallbacks, chaos, anomalies, the dashboard)
	// mount their routes on the same mux, behind the same token check.
	Extend func(mux *http.ServeMux, protect func(http.Handler) http.Handler)
	// Logger receives readiness failures and who did what (nil: discarded).
	Logger *slog.Logger
}

// Cookie carries the admin token for the dashboard.
const Cookie = "portcullis_admin"

// Handler serves /healthz, /readyz, /metrics, /debug/pprof/ and /api/v1.
func Handler(api API, o Options) http.Handler {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := handler{api: api, log: log}
	mux := http.NewServeMux()
	protect := func(next http.Handler) http.Handler { return auth(o.Token, next) }
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
				log.Warn("not ready", "cause", err)
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = w.Write([]byte("not ready: state store unreachable\n"))
				return
			}
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", protect(promhttp.HandlerFor(api.Gatherer(), promhttp.HandlerOpts{})))
	mux.Handle("GET /api/v1/integrations", protect(http.HandlerFunc(h.list)))
	mux.Handle("POST /api/v1/integrations/{name}/refresh-credentials", protect(http.HandlerFunc(h.refresh)))
	mux.Handle("POST /api/v1/integrations/{name}/disable", protect(h.killSwitch(true)))
	mux.Handle("POST /api/v1/integrations/{name}/enable", protect(h.killSwitch(false)))
	// Profiles, for the people who own the process; behind the admin token.
	mux.Handle("GET /debug/pprof/", protect(http.HandlerFunc(pprof.Index)))
	mux.Handle("GET /debug/pprof/profile", protect(http.HandlerFunc(pprof.Profile)))
	mux.Handle("GET /debug/pprof/trace", protect(http.HandlerFunc(pprof.Trace)))
	if o.Extend != nil {
		o.Extend(mux, protect)
	}
	return mux
}

func auth(token func() (secret.Value, bool), next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		want, ok := secret.Value{}, false
		if token != nil {
			want, ok = token()
		}
		got, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if c, err := r.Cookie(Cookie); got == "" && err == nil {
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

type handler struct {
	api API
	log *slog.Logger
}

func (h handler) list(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, h.api.Integrations())
}

func (h handler) refresh(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	err := h.api.RefreshCredential(r.Context(), name)
	switch {
	case errors.Is(err, ErrUnknownIntegration):
		problem.Write(w, "", problem.New(problem.UnknownIntegration, "no such integration"))
	case errors.Is(err, ErrNoCredential):
		writeJSON(w, http.StatusOK, map[string]any{"integration": name, "refreshed": false, "reason": "no credential"})
	case err != nil:
		h.log.Warn("credential refresh failed", "integration", name, "cause", err)
		problem.Write(w, "", problem.Wrap(problem.CredentialUnavailable, "credential refresh failed; see the gateway log", err))
	default:
		h.log.Info("credential refreshed by admin", "integration", name)
		writeJSON(w, http.StatusOK, map[string]any{"integration": name, "refreshed": true})
	}
}

func (h handler) killSwitch(disable bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		by := strings.TrimSpace(r.Header.Get("X-Portcullis-Actor"))
		if by == "" {
			by = "admin-api"
		}
		if len(by) > 64 {
			by = by[:64]
		}
		err := h.api.SetDisabled(r.Context(), name, disable, by)
		switch {
		case errors.Is(err, ErrUnknownIntegration):
			problem.Write(w, "", problem.New(problem.UnknownIntegration, "no such integration"))
		case errors.Is(err, ErrNoStore):
			problem.Write(w, "", problem.New(problem.Internal, "no state store: kill switch unavailable"))
		case err != nil:
			problem.Write(w, "", problem.Wrap(problem.Internal, "kill switch could not be stored", err))
		default:
			h.log.Warn("kill switch flipped", "integration", name, "disabled", disable, "by", by)
			writeJSON(w, http.StatusOK, map[string]any{"integration": name, "disabled": disable, "by": by})
		}
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
