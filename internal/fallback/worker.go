package fallback

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/portcullis-dev/portcullis/internal/clock"
	"github.com/portcullis-dev/portcullis/internal/resilience"
	"github.com/portcullis-dev/portcullis/internal/store"
)

// Worker defaults, applied by NewWorker to zero fields.
const (
	DefaultConcurrency    = 4
	DefaultPollInterval   = 500 * time.Millisecond
	DefaultLease          = 2 * time.Minute
	DefaultAttemptTimeout = 30 * time.Second
	DefaultMaxAttempts    = 10
	DefaultJobBackoff     = time.Second
	DefaultJobMaxBackoff  = 5 * time.Minute
	DefaultMaxResultBytes = 64 << 10
)

// DefaultResultHeaders are the vendor response headers kept in a job's result.
var DefaultResultHeaders = []string{"Content-Type", "Content-Language", "Location", "ETag", "Retry-After"}

// ErrUnknownIntegration, returned by a Target func, fails a job at once
// (the integration was removed from the config since it was queued).
var ErrUnknownIntegration = errors.New("integration no longer configured")

// Target is where a job for one integration is sent.
type Target struct {
	// Transport is the gateway's full outbound chain for the integration
	// (retry, breaker, credential injection, egress-checked base transport).
	Transport http.RoundTripper
	// Upstream is the integration's base URL; the call's path is appended.
	Upstream *url.URL
}

// WorkerConfig configures a Worker. Zero fields take the defaults above.
type WorkerConfig struct {
	// Target resolves an integration; required.
	Target func(integration string) (Target, error)
	// Concurrency is the number of deliveries in flight at once.
	Concurrency int
	// PollInterval is how often the store is asked for due jobs (a Submit
	// on the same Queue wakes the worker at once).
	PollInterval time.Duration
	// Lease is how long a claimed job is ours; past it, a job whose worker
	// died is claimed again. Must exceed AttemptTimeout.
	Lease time.Duration
	// AttemptTimeout bounds one delivery attempt.
	AttemptTimeout time.Duration
	// MaxAttempts is the number of deliveries tried before a job fails.
	MaxAttempts int
	// Backoff and MaxBackoff shape the full-jitter delay between attempts;
	// a vendor's Retry-After is honoured when longer.
	Backoff, MaxBackoff time.Duration
	// MaxResultBytes bounds the vendor body kept in a result (the rest is dropped, Truncated set).
	MaxResultBytes int64
	// ResultHeaders is the allowlist of vendor headers kept; nil means DefaultResultHeaders.
	ResultHeaders []string
	// Logger receives one record per delivery attempt (ids, statuses, never bodies).
	Logger *slog.Logger
}

// Worker claims queued calls and delivers them, at least once: a job is
// marked done only after the vendor answered, and a job whose worker died
// is claimed again when its lease expires (with the embedded store, as soon
// as the restarted gateway opens it: see store.OpenEmbedded). Every
// delivery of a job carries the same Idempotency-Key.
type Worker struct {
	q   *Queue
	cfg WorkerConfig
	clk clock.Clock
	log *slog.Logger

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// NewWorker returns a Worker for q; a nil clock means the system clock.
func NewWorker(q *Queue, cfg WorkerConfig, clk clock.Clock) *Worker {
	if clk == nil {
		clk = clock.System()
	}
	setDefault := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.MaxResultBytes <= 0 {
		cfg.MaxResultBytes = DefaultMaxResultBytes
	}
	if cfg.ResultHeaders == nil {
		cfg.ResultHeaders = DefaultResultHeaders
	}
	setDefault(&cfg.PollInterval, DefaultPollInterval)
	setDefault(&cfg.Lease, DefaultLease)
	setDefault(&cfg.AttemptTimeout, DefaultAttemptTimeout)
	setDefault(&cfg.Backoff, DefaultJobBackoff)
	setDefault(&cfg.MaxBackoff, DefaultJobMaxBackoff)
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Worker{q: q, cfg: cfg, clk: clk, log: log}
}

// Run delivers jobs until ctx ends or Stop is called, then waits for the
// deliveries in flight: they are interrupted and their jobs put back as
// pending, to be delivered (again) by the next worker.
func (w *Worker) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	w.mu.Lock()
	if w.done != nil {
		w.mu.Unlock()
		cancel()
		return errors.New("worker: already running")
	}
	w.cancel, w.done = cancel, make(chan struct{})
	w.mu.Unlock()
	defer func() {
		cancel()
		close(w.done)
	}()

	slots := make(chan struct{}, w.cfg.Concurrency)
	// freed wakes the loop when a delivery ends, so a backlog (after a
	// restart, or an outage) drains at the vendor's pace, not one batch
	// per PollInterval.
	freed := make(chan struct{}, 1)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		if free := cap(slots) - len(slots); free > 0 {
			jobs, err := w.q.q.Claim(ctx, QueueName, free, w.cfg.Lease)
			if err != nil && ctx.Err() == nil {
				w.log.Warn("queue claim failed", slog.Any("error", err))
			}
			for _, j := range jobs {
				slots <- struct{}{}
				wg.Go(func() {
					defer func() {
						<-slots
						select {
						case freed <- struct{}{}:
						default:
						}
					}()
					w.deliver(ctx, j)
				})
			}
			if len(jobs) == free {
				continue // there may be more due
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-w.q.wake:
		case <-freed:
		case <-w.clk.After(w.cfg.PollInterval):
		}
	}
}

// Stop ends Run and waits for it to return.
func (w *Worker) Stop() {
	w.mu.Lock()
	cancel, done := w.cancel, w.done
	w.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
}

// deliver makes one attempt at job j and records the outcome.
func (w *Worker) deliver(ctx context.Context, j store.Job) {
	log := w.log.With(slog.String("job_id", j.ID), slog.Int("attempt", j.Attempts))
	var call Call
	if err := json.Unmarshal(j.Payload, &call); err != nil {
		w.finish(log, j, store.JobFailed, nil, "stored call is unreadable")
		return
	}
	log = log.With(slog.String("integration", call.Integration))
	target, err := w.cfg.Target(call.Integration)
	if err != nil {
		if errors.Is(err, ErrUnknownIntegration) {
			w.finish(log, j, store.JobFailed, nil, "integration no longer configured")
		} else {
			w.retry(ctx, log, j, nil, 0, "integration unavailable")
		}
		return
	}
	actx, cancel := context.WithTimeout(ctx, w.cfg.AttemptTimeout)
	defer cancel()
	req, err := newCallRequest(actx, target.Upstream, call)
	if err != nil {
		w.finish(log, j, store.JobFailed, nil, "stored call has an invalid path")
		return
	}
	resp, err := target.Transport.RoundTrip(req)
	if err != nil {
		if ctx.Err() != nil {
			w.putBack(log, j)
			return
		}
		// A vendor pause (its earlier 429 or Retry-After) says how long.
		var rl *resilience.RateLimitError
		wait := time.Duration(0)
		if errors.As(err, &rl) {
			wait = rl.RetryAfter
		}
		w.retry(ctx, log, j, nil, wait, publicError(err))
		return
	}
	res := w.readResult(resp)
	switch s := resp.StatusCode; {
	case s >= 200 && s < 300:
		w.finish(log, j, store.JobSucceeded, res, "")
	case s == http.StatusRequestTimeout || s == http.StatusTooEarly || s == http.StatusTooManyRequests || s >= 500:
		ra, _ := resilience.ParseRetryAfter(resp.Header.Get("Retry-After"), w.clk.Now())
		w.retry(ctx, log, j, res, ra, fmt.Sprintf("vendor answered %d", s))
	default:
		w.finish(log, j, store.JobFailed, res, fmt.Sprintf("vendor answered %d", s))
	}
}

func newCallRequest(ctx context.Context, upstream *url.URL, call Call) (*http.Request, error) {
	if !strings.HasPrefix(call.Path, "/") {
		return nil, fmt.Errorf("queued path %q is not absolute", call.Path)
	}
	u := *upstream
	u.Path = strings.TrimSuffix(upstream.Path, "/") + call.Path
	u.RawPath = ""
	u.RawQuery = call.RawQuery
	req, err := http.NewRequestWithContext(ctx, call.Method, u.String(), bytes.NewReader(call.Body))
	if err != nil {
		return nil, err
	}
	if len(call.Body) == 0 {
		req.Body, req.GetBody, req.ContentLength = http.NoBody, nil, 0
	}
	for k, vs := range call.Header {
		req.Header[k] = append([]string(nil), vs...)
	}
	req.Header.Set("Idempotency-Key", call.IdempotencyKey)
	if call.RequestID != "" {
		req.Header.Set("X-Request-Id", call.RequestID)
	}
	return req, nil
}

// publicError names a delivery failure without the error's text, which may
// hold a URL with an injected credential.
func publicError(err error) string {
	switch {
	case errors.Is(err, resilience.ErrCircuitOpen):
		return "circuit open"
	case errors.Is(err, resilience.ErrRateLimited):
		return "rate limited"
	case errors.Is(err, context.DeadlineExceeded):
		return "vendor timed out"
	}
	return "vendor unreachable"
}

func (w *Worker) readResult(resp *http.Response) *Result {
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, w.cfg.MaxResultBytes+1))
	res := &Result{Status: resp.StatusCode, Header: allowHeaders(resp.Header, w.cfg.ResultHeaders), Body: body}
	if int64(len(body)) > w.cfg.MaxResultBytes {
		res.Body, res.Truncated = body[:w.cfg.MaxResultBytes], true
	}
	return res
}

// detached bounds store writes that must happen even as Run is stopping.
func detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
}

func (w *Worker) finish(log *slog.Logger, j store.Job, state store.JobState, res *Result, lastErr string) {
	var b []byte
	if res != nil {
		b, _ = json.Marshal(res)
	}
	ctx, cancel := detached(context.Background())
	defer cancel()
	if err := w.q.q.Complete(ctx, QueueName, j.ID, state, b, lastErr); err != nil {
		log.Error("recording job outcome failed; it will be delivered again after its lease", slog.Any("error", err))
		return
	}
	log.Info("queued call finished", slog.String("state", string(state)), slog.String("last_error", lastErr))
}

func (w *Worker) retry(ctx context.Context, log *slog.Logger, j store.Job, res *Result, retryAfter time.Duration, reason string) {
	if j.Attempts >= w.cfg.MaxAttempts {
		w.finish(log, j, store.JobFailed, res, reason)
		return
	}
	ceil := w.cfg.Backoff
	for i := 1; i < j.Attempts && ceil < w.cfg.MaxBackoff; i++ {
		ceil *= 2
	}
	delay := max(time.Duration(rand.Int64N(int64(min(ceil, w.cfg.MaxBackoff))+1)), retryAfter)
	dctx, cancel := detached(ctx)
	defer cancel()
	if err := w.q.q.Retry(dctx, QueueName, j.ID, w.clk.Now().Add(delay), reason); err != nil {
		log.Error("rescheduling job failed; it will be delivered again after its lease", slog.Any("error", err))
		return
	}
	log.Info("queued call will be retried", slog.String("last_error", reason), slog.Duration("delay", delay))
}

// putBack returns a job interrupted by shutdown to the queue at once.
func (w *Worker) putBack(log *slog.Logger, j store.Job) {
	ctx, cancel := detached(context.Background())
	defer cancel()
	if err := w.q.q.Retry(ctx, QueueName, j.ID, w.clk.Now(), "interrupted by shutdown"); err != nil {
		log.Error("returning job to the queue failed; it will be delivered again after its lease", slog.Any("error", err))
	}
}
