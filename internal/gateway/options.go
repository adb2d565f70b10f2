package gateway

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"

	"go.opentelemetry.io/otel/trace"

	"github.com/portcullis-dev/portcullis/internal/anomaly"
	"github.com/portcullis-dev/portcullis/internal/clock"
	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/internal/egress"
	"github.com/portcullis-dev/portcullis/internal/observe"
	"github.com/portcullis-dev/portcullis/internal/store"
	"github.com/portcullis-dev/portcullis/internal/validate"
)

// CredentialFactory builds the `inject` layer of an integration's outbound
// chain: a RoundTripper that sets the vendor credential on every attempt,
// and a function that forces fresh credential material. eg is the
// integration's egress policy: token requests (OAuth2, JWT bearer) must go
// through it (eg.Client), never through a client of their own.
type CredentialFactory func(integration string, c *config.Credential, base http.RoundTripper, eg *egress.Policy) (rt http.RoundTripper, refresh func(context.Context) error, err error)

// Options are the gateway's collaborators, all optional.
type Options struct {
	Logger  *slog.Logger
	Metrics *observe.Metrics
	// Credentials builds credential injection; nil sends calls without one
	// (integrations that configure a credential then fail to compile).
	Credentials CredentialFactory
	// OnRecord sees every finished request record (usage, baselines).
	OnRecord func(*observe.Record)
	// Status adds runtime state to GET /api/v1/integrations.
	Status StatusHook
	// Store holds the stale cache, kill switches and queued calls; nil
	// turns those fallbacks off (tests of the core path).
	Store store.Store
	// Faults wraps the base transport of each integration (chaos drills).
	Faults func(http.RoundTripper) http.RoundTripper
	// Events receives anomaly events (validation failures, drift); nil drops them.
	Events func(anomaly.Event)
	// ValidationMetrics counts response validations; nil: not counted.
	ValidationMetrics *validate.Metrics
	// Tracer records one span per request; nil: no tracing.
	Tracer trace.Tracer
	// Resolver resolves vendor names at dial time (tests); nil: the system's.
	Resolver *net.Resolver
	// Clock times retries, budgets, limiters, kill-switch refreshes, queued
	// calls and stale entries; nil: clock.System. (The breaker's own
	// open/half-open timing is gobreaker's and reads the process clock.)
	Clock clock.Clock
}

func (o *Options) emit(e anomaly.Event) {
	if o.Events != nil {
		o.Events(e)
	}
}

func (o *Options) defaults() {
	o.Clock = clock.Or(o.Clock)
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil))
	}
	if o.Metrics == nil {
		o.Metrics = observe.NewMetrics()
	}
}
