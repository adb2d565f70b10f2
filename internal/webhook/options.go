package webhook

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"time"

	"github.com/portcullis-dev/portcullis/internal/clock"
	"github.com/portcullis-dev/portcullis/internal/conf"
	"github.com/portcullis-dev/portcullis/internal/secret"
	"github.com/portcullis-dev/portcullis/internal/store"
)

// SecretFunc resolves a secret reference (the gateway's credential resolver,
// with its cache and refresh).
type SecretFunc func(ctx context.Context, ref conf.SecretRef) (secret.Value, error)

// Store is what webhooks need from the state store: replay ids (KV) and the
// durable forwarding queue. store.Store satisfies it.
type Store interface {
	store.KV
	store.Queue
}

// Options configure a Handler and a Forwarder; each ignores the fields that
// are the other's. Zero values mean the documented defaults.
type Options struct {
	// Store keeps replay ids and the forwarding queue (required).
	Store Store
	// Secrets resolves secrets and forward_secret on every use, so rotation
	// needs no restart (required).
	Secrets SecretFunc
	// Logger receives one record per request and per delivery attempt.
	Logger *slog.Logger
	// Clock is where replay windows, queue ages and delivery times are read
	// (default clock.System).
	Clock clock.Clock
	// Metrics are shared by the Handler and the Forwarder (default: fresh,
	// unregistered collectors).
	Metrics *Metrics
	// OnEvent receives alert events (bad-signature bursts, deliveries given
	// up). It is called synchronously and must not block.
	OnEvent func(Event)

	// BaseDir resolves relative schema paths (the config file's directory).
	BaseDir string
	// ReplayFailOpen accepts webhooks unchecked for replay while the state
	// store is unreachable (state.on_redis_down.replay: fail_open). Default:
	// fail closed with a 503 the vendor will retry.
	ReplayFailOpen bool
	// UntimedReplayTTL is how long replay ids of schemes that sign no
	// timestamp are kept. Default 7 days.
	UntimedReplayTTL time.Duration
	// BurstThreshold bad signatures on one webhook within BurstWindow raise
	// an alert event. Defaults 20 and 1m.
	BurstThreshold int
	BurstWindow    time.Duration
	// Enqueued is called after a webhook is persisted for forwarding; wire it
	// to Forwarder.Wake for prompt delivery (the Forwarder also polls).
	Enqueued func()

	// Client sends forwarded webhooks; required when a webhook has a
	// forward_to. The gateway passes one built on the internal_egress policy
	// (egress.Policy.Client), so forward_to's host must be listed there; nil,
	// or a nil Transport (http.DefaultTransport), is an error. Redirects are
	// never followed; ForwardTimeout applies when the client sets none.
	Client *http.Client
	// ForwardTimeout bounds one delivery attempt. Default 30s.
	ForwardTimeout time.Duration
	// PollInterval is how often the Forwarder looks for due jobs. Default 1s.
	PollInterval time.Duration
	// RetryBase and RetryMax shape the exponential backoff between delivery
	// attempts. Defaults 1s and 10m.
	RetryBase time.Duration
	RetryMax  time.Duration
	// MaxDeliveryAge is how long delivery is retried before the webhook is
	// marked failed and an alert raised. Default 72h (the Standard Webhooks
	// example schedule spans about three days).
	MaxDeliveryAge time.Duration
	// Concurrency is how many deliveries run at once. Default 4.
	Concurrency int
	// Jitter returns a number in [0,1) for backoff jitter (default math/rand).
	Jitter func() float64
}

// Alert event kinds.
const (
	EventBadSignatureBurst = "webhook_bad_signature_burst"
	EventForwardGaveUp     = "webhook_forward_gave_up"
)

// Event is an alert raised by the webhook package.
type Event struct {
	Kind    string
	Webhook string
	// Source is the address of the request that completed a burst.
	Source string
	// Count and Window describe a burst: Count bad signatures within Window.
	Count  int
	Window time.Duration
	Time   time.Time
	// Detail is public-safe text (never a secret or a body).
	Detail string
}

// Log keys.
const (
	keyRequestID = "request_id"
	keyWebhook   = "webhook"
	keySource    = "source"
	keyOutcome   = "outcome"
	keyStatus    = "status"
	keyReason    = "reason"
	keyMsgID     = "msg_id"
	keyJobID     = "job_id"
	keyAttempt   = "attempt"
	keyRetryIn   = "retry_in"
	keyPath      = "path"
)

const (
	defaultUntimedReplayTTL = 7 * 24 * time.Hour
	defaultForwardTimeout   = 30 * time.Second
	defaultPollInterval     = time.Second
	defaultRetryBase        = time.Second
	defaultRetryMax         = 10 * time.Minute
	defaultMaxDeliveryAge   = 72 * time.Hour
	defaultConcurrency      = 4
)

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.Clock = clock.Or(o.Clock)
	if o.Metrics == nil {
		o.Metrics, _ = NewMetrics(nil)
	}
	if o.OnEvent == nil {
		o.OnEvent = func(Event) {}
	}
	if o.UntimedReplayTTL <= 0 {
		o.UntimedReplayTTL = defaultUntimedReplayTTL
	}
	if o.ForwardTimeout <= 0 {
		o.ForwardTimeout = defaultForwardTimeout
	}
	if o.PollInterval <= 0 {
		o.PollInterval = defaultPollInterval
	}
	if o.RetryBase <= 0 {
		o.RetryBase = defaultRetryBase
	}
	if o.RetryMax <= 0 {
		o.RetryMax = defaultRetryMax
	}
	if o.MaxDeliveryAge <= 0 {
		o.MaxDeliveryAge = defaultMaxDeliveryAge
	}
	if o.Concurrency <= 0 {
		o.Concurrency = defaultConcurrency
	}
	return o
}

// QueueName is the store queue holding webhook's accepted messages.
func QueueName(webhook string) string { return "webhook:" + webhook }

func replayKey(webhook, msgID string) string { return "webhook:replay:" + webhook + ":" + msgID }

// newID returns prefix + 24 random hex digits.
func newID(prefix string) string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return prefix + hex.EncodeToString(b[:])
}
