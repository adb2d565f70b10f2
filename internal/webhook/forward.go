package webhook

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
	"slices"
	"strconv"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/portcullis-dev/portcullis/internal/conf"
	"github.com/portcullis-dev/portcullis/internal/store"
)

// forwardJob is the durable payload of one accepted webhook.
type forwardJob struct {
	Webhook     string            `json:"webhook"`
	MsgID       string            `json:"msg_id"`
	ContentType string            `json:"content_type,omitempty"`
	Headers     map[string]string `json:"headers,omitempty"`
	Body        []byte            `json:"body"`
	Received    time.Time         `json:"received"`
}

// passHeaders keeps the vendor's informational headers that internal
// services need (GitHub names the event only in a header). Signatures and
// anything else the vendor sent are dropped.
func passHeaders(scheme string, h http.Header) map[string]string {
	var names []string
	switch scheme {
	case "github":
		names = []string{"X-GitHub-Event", "X-GitHub-Delivery", "X-GitHub-Hook-ID",
			"X-GitHub-Hook-Installation-Target-ID", "X-GitHub-Hook-Installation-Target-Type"}
	case "slack":
		names = []string{"X-Slack-Retry-Num", "X-Slack-Retry-Reason"}
	}
	var out map[string]string
	for _, n := range names {
		if v := h.Get(n); v != "" {
			if out == nil {
				out = map[string]string{}
			}
			out[n] = truncate(v, 256)
		}
	}
	return out
}

type target struct {
	name, url, queue string
	secret           conf.SecretRef
}

// Forwarder delivers accepted webhooks from the durable queue to each
// webhook's forward_to, re-signed with forward_secret under the Standard
// Webhooks scheme (original id, new timestamp), so internal services verify
// one scheme only. Delivery is at least once: a job leaves the queue only
// after a 2xx, failures are retried with exponential backoff, and a job held
// by a process that died is claimed again when its lease runs out (with the
// embedded store, as soon as the gateway opens it again: see
// store.OpenEmbedded). A 2xx
// whose completion could not be recorded is delivered again with the same
// webhook-id; receivers deduplicate on it.
type Forwarder struct {
	o       Options
	client  *http.Client
	targets []target
	wake    chan struct{}
}

// NewForwarder builds the Forwarder for every webhook with a forward_to.
func NewForwarder(webhooks map[string]*Spec, o Options) (*Forwarder, error) {
	if o.Store == nil || o.Secrets == nil {
		return nil, errors.New("webhook: Options.Store and Options.Secrets are required")
	}
	o = o.withDefaults()
	f := &Forwarder{o: o, wake: make(chan struct{}, 1)}
	var errs []error
	for _, name := range sortedNames(webhooks) {
		w := webhooks[name]
		if w == nil || w.ForwardTo == "" {
			continue
		}
		r := conf.NewReport("webhooks." + name)
		if w.Validate(r); r.HasErrors() {
			errs = append(errs, r.Err())
			continue
		}
		f.targets = append(f.targets, target{name: name, url: w.ForwardTo, queue: QueueName(name), secret: w.ForwardSecret})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(f.targets) > 0 && (o.Client == nil || o.Client.Transport == nil) {
		// Never http.DefaultTransport: no egress guard, and the
		// environment's proxy.
		return nil, errors.New("webhook: Options.Client with an egress-guarded Transport is required for forward_to")
	}
	cp := http.Client{}
	if o.Client != nil {
		cp = *o.Client
	}
	c := &cp
	if c.Timeout == 0 {
		c.Timeout = o.ForwardTimeout
	}
	// A 3xx is a failure to fix in the config, not a hop to follow (Standard
	// Webhooks, "Delivery success and failure").
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	f.client = c
	return f, nil
}

// Wake makes Run look for due jobs now rather than at the next poll.
func (f *Forwarder) Wake() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// Run delivers until ctx is done, then returns nil once in-flight deliveries
// have been recorded (an interrupted delivery is put back as due now).
func (f *Forwarder) Run(ctx context.Context) error {
	t := time.NewTicker(f.o.PollInterval)
	defer t.Stop()
	for {
		f.pass(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-f.wake:
		}
	}
}

// maxBatchesPerPass keeps one busy webhook from starving the others.
const maxBatchesPerPass = 8

// pass claims and delivers due jobs of every target, then refreshes the
// queue metrics.
func (f *Forwarder) pass(ctx context.Context) {
	lease := f.o.ForwardTimeout + 30*time.Second
	for _, t := range f.targets {
		for range maxBatchesPerPass {
			if ctx.Err() != nil {
				return
			}
			jobs, err := f.o.Store.Claim(ctx, t.queue, f.o.Concurrency, lease)
			if err != nil {
				f.o.Logger.LogAttrs(ctx, slog.LevelWarn, "webhook queue claim failed",
					slog.String(keyWebhook, t.name), slog.String(keyReason, err.Error()))
				break
			}
			var g errgroup.Group
			for _, j := range jobs {
				g.Go(func() error { f.deliver(ctx, t, j); return nil })
			}
			_ = g.Wait()
			if len(jobs) < f.o.Concurrency {
				break
			}
		}
		f.refreshStats(ctx, t)
	}
}

func (f *Forwarder) refreshStats(ctx context.Context, t target) {
	depth, oldest, err := f.o.Store.Stats(ctx, t.queue)
	if err != nil {
		return
	}
	age := 0.0
	if !oldest.IsZero() {
		age = max(0, f.o.Clock.Now().Sub(oldest).Seconds())
	}
	f.o.Metrics.QueueDepth.WithLabelValues(t.name).Set(float64(depth))
	f.o.Metrics.QueueOldestAge.WithLabelValues(t.name).Set(age)
}

// attemptError is a failed delivery attempt: public is safe to store as the
// job's LastError, err is for logs.
type attemptError struct {
	public     string
	err        error
	status     int
	retryAfter time.Duration
}

func (e *attemptError) Error() string { return e.public + ": " + errText(e.err) }
func (e *attemptError) Unwrap() error { return e.err }

func (f *Forwarder) deliver(ctx context.Context, t target, j store.Job) {
	// Recording the outcome must survive a shutdown that interrupts the POST.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	log := f.o.Logger.With(slog.String(keyWebhook, t.name), slog.String(keyJobID, j.ID), slog.Int(keyAttempt, j.Attempts))
	var p forwardJob
	if err := json.Unmarshal(j.Payload, &p); err != nil {
		f.giveUp(sctx, log, t, j, "unreadable job payload")
		return
	}
	log = log.With(slog.String(keyMsgID, p.MsgID))
	start := time.Now()
	status, err := f.post(ctx, t, p)
	f.o.Metrics.ForwardSeconds.WithLabelValues(t.name).Observe(time.Since(start).Seconds())
	if err == nil {
		if cerr := f.o.Store.Complete(sctx, t.queue, j.ID, store.JobSucceeded, []byte(strconv.Itoa(status)), ""); cerr != nil {
			log.LogAttrs(sctx, slog.LevelWarn, "webhook delivered but not marked done: it will be delivered again", slog.String(keyReason, cerr.Error()))
		}
		f.o.Metrics.Forwards.WithLabelValues(t.name, "delivered").Inc()
		log.LogAttrs(sctx, slog.LevelInfo, "webhook forwarded", slog.Int(keyStatus, status))
		return
	}
	var ae *attemptError
	if !errors.As(err, &ae) {
		ae = &attemptError{public: "delivery failed", err: err}
	}
	now := f.o.Clock.Now()
	switch {
	case ae.status == http.StatusGone:
		f.giveUp(sctx, log, t, j, "receiver answered 410 Gone")
		return
	case now.Sub(j.Created) >= f.o.MaxDeliveryAge:
		f.giveUp(sctx, log, t, j, fmt.Sprintf("not delivered within %s: %s", f.o.MaxDeliveryAge, ae.public))
		return
	}
	delay := f.backoff(j.Attempts)
	if ae.retryAfter > delay {
		delay = min(ae.retryAfter, f.o.RetryMax)
	}
	if ctx.Err() != nil {
		delay = 0 // interrupted by shutdown, not the receiver's fault
	}
	if rerr := f.o.Store.Retry(sctx, t.queue, j.ID, now.Add(delay), ae.public); rerr != nil {
		log.LogAttrs(sctx, slog.LevelWarn, "webhook retry not recorded: it is claimed again when its lease ends", slog.String(keyReason, rerr.Error()))
	}
	f.o.Metrics.Forwards.WithLabelValues(t.name, "retry").Inc()
	log.LogAttrs(sctx, slog.LevelWarn, "webhook forward failed, will retry",
		slog.String(keyReason, ae.Error()), slog.Duration(keyRetryIn, delay))
}

func (f *Forwarder) giveUp(ctx context.Context, log *slog.Logger, t target, j store.Job, why string) {
	if err := f.o.Store.Complete(ctx, t.queue, j.ID, store.JobFailed, nil, why); err != nil {
		log.LogAttrs(ctx, slog.LevelWarn, "webhook failure not recorded", slog.String(keyReason, err.Error()))
	}
	f.o.Metrics.Forwards.WithLabelValues(t.name, "failed").Inc()
	f.o.Metrics.Alerts.WithLabelValues(t.name, "forward_gave_up").Inc()
	log.LogAttrs(ctx, slog.LevelError, "webhook forward gave up", slog.String(keyReason, why))
	f.o.OnEvent(Event{Kind: EventForwardGaveUp, Webhook: t.name, Time: f.o.Clock.Now(), Count: 1,
		Detail: "job " + j.ID + ": " + why})
}

// post makes one delivery attempt and returns the receiver's status.
func (f *Forwarder) post(ctx context.Context, t target, p forwardJob) (int, error) {
	sec, err := f.o.Secrets(ctx, t.secret)
	if err != nil {
		return 0, &attemptError{public: "forward secret unavailable", err: err}
	}
	key, err := standardKey(sec)
	if err != nil {
		return 0, &attemptError{public: "forward secret unusable", err: err}
	}
	ctx, cancel := context.WithTimeout(ctx, f.o.ForwardTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(p.Body))
	if err != nil {
		return 0, &attemptError{public: "bad forward_to", err: err}
	}
	ts := f.o.Clock.Now()
	ct := p.ContentType
	if ct == "" {
		ct = "application/json"
	}
	req.Header.Set("Content-Type", ct)
	for k, v := range p.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("User-Agent", "portcullis-webhook-forwarder")
	req.Header.Set("X-Portcullis-Webhook", p.Webhook)
	req.Header.Set(HeaderWebhookID, p.MsgID)
	req.Header.Set(HeaderWebhookTimestamp, strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set(HeaderWebhookSignature, standardSignature(key, p.MsgID, ts, p.Body))
	resp, err := f.client.Do(req)
	if err != nil {
		return 0, &attemptError{public: "receiver unreachable", err: err}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp.StatusCode, nil
	}
	return resp.StatusCode, &attemptError{
		public: fmt.Sprintf("receiver answered %d", resp.StatusCode), status: resp.StatusCode,
		retryAfter: parseRetryAfter(resp.Header.Get("Retry-After")),
	}
}

// backoff is exponential from RetryBase, capped at RetryMax, with "equal
// jitter" (half fixed, half random) so retries spread out yet never collapse
// to an immediate retry.
func (f *Forwarder) backoff(attempt int) time.Duration {
	d := f.o.RetryBase
	for i := 1; i < attempt && d < f.o.RetryMax; i++ {
		d *= 2
	}
	d = min(d, f.o.RetryMax)
	r := rand.Float64
	if f.o.Jitter != nil {
		r = f.o.Jitter
	}
	return d/2 + time.Duration(r()*float64(d/2))
}

// parseRetryAfter reads delay-seconds; the HTTP-date form is ignored (an
// internal receiver has no reason to send it).
func parseRetryAfter(v string) time.Duration {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0
	}
	return time.Duration(n) * time.Second
}

func sortedNames(m map[string]*Spec) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}
