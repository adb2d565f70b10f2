package fallback

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/internal/clock"
	"github.com/portcullis-dev/portcullis/internal/store"
)

// QueueName is the store.Queue queue that holds queued vendor calls.
const QueueName = "vendor-calls"

// DefaultQueueMaxBody bounds the request body a queued call may carry.
const DefaultQueueMaxBody = 1 << 20

// ErrJobNotFound is returned for a job that does not exist or belongs to
// another caller: the two are indistinguishable on purpose.
var ErrJobNotFound = errors.New("job not found")

// ErrBodyTooLarge is returned by Submit for a body over QueueConfig.MaxBodyBytes.
var ErrBodyTooLarge = errors.New("request body too large to queue")

// neverStored are request headers a queued call never keeps, whatever the
// allowlist says: caller credentials, cookies, hop-by-hop and proxy
// headers, and the async preference itself.
var neverStored = map[string]bool{
	"Authorization": true, "Proxy-Authorization": true, "Cookie": true,
	"Connection": true, "Keep-Alive": true, "Te": true, "Trailer": true,
	"Transfer-Encoding": true, "Upgrade": true, "Host": true, "Content-Length": true,
	"Prefer": true, "Forwarded": true, "X-Forwarded-For": true,
}

// QueueConfig configures a Queue.
type QueueConfig struct {
	// Headers returns an integration's request-header allowlist (its
	// request_headers); nil keeps every header except the never-stored ones.
	Headers func(integration string) []string
	// MaxBodyBytes bounds a queued body; 0 means DefaultQueueMaxBody.
	MaxBodyBytes int64
}

// Call is a queued vendor call: everything needed to send it later.
type Call struct {
	Integration    string      `json:"integration"`
	Caller         string      `json:"caller"`
	Method         string      `json:"method"`
	Path           string      `json:"path"` // vendor path, appended to the integration's upstream
	RawQuery       string      `json:"raw_query,omitempty"`
	Header         http.Header `json:"header,omitempty"`
	Body           []byte      `json:"body,omitempty"`
	IdempotencyKey string      `json:"idempotency_key"`
	RequestID      string      `json:"request_id,omitempty"`
}

// Result is what the vendor answered a delivered call.
type Result struct {
	Status    int         `json:"status"`
	Header    http.Header `json:"header,omitempty"`
	Body      []byte      `json:"body,omitempty"`
	Truncated bool        `json:"truncated,omitempty"`
}

// Queue accepts vendor calls durably for later delivery by a Worker.
type Queue struct {
	q    store.Queue
	cfg  QueueConfig
	clk  clock.Clock
	wake chan struct{}
}

// NewQueue returns a Queue over q; a nil clock means the system clock.
func NewQueue(q store.Queue, cfg QueueConfig, clk clock.Clock) *Queue {
	if clk == nil {
		clk = clock.System()
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultQueueMaxBody
	}
	return &Queue{q: q, cfg: cfg, clk: clk, wake: make(chan struct{}, 1)}
}

// newID returns prefix + 26 characters of base32 over 128 random bits.
func newID(prefix string) string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	return prefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// Submit stores the call req (as the gateway would send it: req.URL.Path is
// the vendor path) for caller and integration, and returns its job id once
// the store has it durably. Only allowlisted headers are kept, never the
// caller's credentials; the request's Idempotency-Key is kept, or one is
// generated, so every delivery of the job carries the same key.
func (q *Queue) Submit(ctx context.Context, caller, integration string, req *http.Request, body []byte) (jobID string, err error) {
	return q.SubmitAfter(ctx, caller, integration, req, body, 0)
}

// SubmitAfter is Submit with the first delivery held back by delay (0: due
// at once), as a vendor's Retry-After asks.
func (q *Queue) SubmitAfter(ctx context.Context, caller, integration string, req *http.Request, body []byte, delay time.Duration) (jobID string, err error) {
	if int64(len(body)) > q.cfg.MaxBodyBytes {
		return "", fmt.Errorf("queue: %w (%d bytes, limit %d)", ErrBodyTooLarge, len(body), q.cfg.MaxBodyBytes)
	}
	call := Call{
		Integration: integration, Caller: caller, Method: req.Method,
		Path: req.URL.Path, RawQuery: req.URL.RawQuery, Body: body,
		Header:         q.keepHeaders(integration, req.Header),
		IdempotencyKey: req.Header.Get("Idempotency-Key"),
		RequestID:      req.Header.Get("X-Request-Id"),
	}
	if call.IdempotencyKey == "" {
		call.IdempotencyKey = newID("pcq_")
	}
	payload, err := json.Marshal(call)
	if err != nil {
		return "", fmt.Errorf("queue: encoding call: %w", err)
	}
	id := newID("job_")
	j := store.Job{ID: id, Owner: caller, Payload: payload}
	if delay > 0 {
		j.NotBefore = q.clk.Now().Add(delay)
	}
	if err := q.q.Enqueue(ctx, QueueName, j); err != nil {
		return "", fmt.Errorf("queue: storing job: %w", err)
	}
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return id, nil
}

func (q *Queue) keepHeaders(integration string, h http.Header) http.Header {
	var allow map[string]bool
	if q.cfg.Headers != nil {
		allow = map[string]bool{}
		for _, name := range q.cfg.Headers(integration) {
			allow[http.CanonicalHeaderKey(name)] = true
		}
	}
	out := http.Header{}
	for k, vs := range h {
		ck := http.CanonicalHeaderKey(k)
		if neverStored[ck] || strings.HasPrefix(ck, "Proxy-") || ck == "Idempotency-Key" || (allow != nil && !allow[ck]) {
			continue
		}
		out[ck] = append([]string(nil), vs...)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// JobView is what a caller may see of its job.
type JobView struct {
	ID          string    `json:"id"`
	State       string    `json:"state"` // pending, running, succeeded, failed
	Integration string    `json:"integration"`
	Method      string    `json:"method"`
	Path        string    `json:"path"`
	Attempts    int       `json:"attempts"`
	Created     time.Time `json:"created"`
	Updated     time.Time `json:"updated"`
	LastError   string    `json:"last_error,omitempty"`
	Result      *Result   `json:"result,omitempty"`
}

// Get returns caller's job id, or an error matching ErrJobNotFound when it
// does not exist or another caller created it.
func (q *Queue) Get(ctx context.Context, caller, id string) (JobView, error) {
	j, err := q.q.GetJob(ctx, QueueName, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && (caller == "" || j.Owner != caller)) {
		return JobView{}, fmt.Errorf("queue: %w", ErrJobNotFound)
	}
	if err != nil {
		return JobView{}, fmt.Errorf("queue: reading job: %w", err)
	}
	var call Call
	if err := json.Unmarshal(j.Payload, &call); err != nil {
		return JobView{}, fmt.Errorf("queue: decoding job %s: %w", id, err)
	}
	v := JobView{
		ID: j.ID, State: string(j.State), Integration: call.Integration, Method: call.Method, Path: call.Path,
		Attempts: j.Attempts, Created: j.Created, Updated: j.Updated, LastError: j.LastError,
	}
	if len(j.Result) > 0 {
		v.Result = new(Result)
		if err := json.Unmarshal(j.Result, v.Result); err != nil {
			return JobView{}, fmt.Errorf("queue: decoding result of job %s: %w", id, err)
		}
	}
	return v, nil
}
