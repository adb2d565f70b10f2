package server

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis-dev/portcullis/internal/anomaly"
	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/internal/credential"
	"github.com/portcullis-dev/portcullis/internal/secret"
	"github.com/portcullis-dev/portcullis/internal/webhook"
)

// webhooks serves server.webhook_listen. The handler and forwarder are
// rebuilt on reload and swapped; the forwarder of the old config is
// stopped (its claimed jobs return to the queue on their lease).
type webhooks struct {
	a       *assembly
	metrics *webhook.Metrics
	h       atomic.Pointer[webhook.Handler]
	mu      sync.Mutex
	stop    context.CancelFunc
	done    chan struct{}
}

func newWebhooks(a *assembly, cfg *config.Config) (*webhooks, error) {
	m, err := webhook.NewMetrics(a.metrics.Registry)
	if err != nil {
		return nil, err
	}
	w := &webhooks{a: a, metrics: m}
	if err := w.load(cfg); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *webhooks) options(cfg *config.Config) webhook.Options {
	a := w.a
	return webhook.Options{
		Store: a.store,
		Secrets: func(ctx context.Context, ref config.SecretRef) (secret.Value, error) {
			s, err := a.resolver.Resolve(ctx, ref, credential.DefaultTTL, time.Hour)
			return s.Value, err
		},
		Logger:         a.log,
		Metrics:        w.metrics,
		OnEvent:        a.event,
		BaseDir:        filepath.Dir(cfg.Path),
		ReplayFailOpen: cfg.State.OnRedisDown != nil && cfg.State.OnRedisDown.Replay == "fail_open",
	}
}

// load builds the handler and forwarder for cfg and swaps them in.
func (w *webhooks) load(cfg *config.Config) error {
	o := w.options(cfg)
	// forward_to goes through internal_egress.allow of the config being
	// loaded, so a reload that adds a target must also list it.
	internal, err := internalPolicy(cfg)
	if err != nil {
		return fmt.Errorf("webhooks: %w", err)
	}
	o.Client = internal.Client(forwardTimeout)
	fw, err := webhook.NewForwarder(cfg.Webhooks, o)
	if err != nil {
		return fmt.Errorf("webhooks: %w", err)
	}
	o.Enqueued = fw.Wake
	h, err := webhook.NewHandler(cfg.Webhooks, o)
	if err != nil {
		return fmt.Errorf("webhooks: %w", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopLocked()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = fw.Run(ctx) }()
	w.stop, w.done = cancel, done
	w.h.Store(h)
	return nil
}

func (w *webhooks) stopLocked() {
	if w.stop != nil {
		w.stop()
		<-w.done
		w.stop = nil
	}
}

func (w *webhooks) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopLocked()
}

func (w *webhooks) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	w.h.Load().ServeHTTP(rw, r)
}

// event receives alert events (webhook bursts, revoked credentials, ...).
func (a *assembly) event(e webhook.Event) {
	a.hub.Emit(anomaly.Event{Kind: anomaly.Kind(e.Kind), Route: "webhook " + e.Webhook, Time: e.Time,
		Message: fmt.Sprintf("webhook %s: %s (%d in %s)", e.Webhook, e.Detail, e.Count, e.Window)})
}
