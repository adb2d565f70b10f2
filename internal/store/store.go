// Package store owns the gateway's state interfaces — what must be shared
// between replicas or survive a restart — and their backends: Memory (tests,
// throwaway), the embedded durable store under data_dir (one process), and
// Redis (several replicas). Every backend passes the same test suite.
package store

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned when a key or job does not exist.
var ErrNotFound = errors.New("store: not found")

// ErrUnavailable wraps backend failures (Redis down, disk error) so callers
// can apply their configured fail_open / fail_closed behaviour.
var ErrUnavailable = errors.New("store: backend unavailable")

// ErrJobExists is returned by Enqueue when the queue already holds a job with
// that ID (a retried enqueue of the same call is not a second job).
var ErrJobExists = errors.New("store: job already exists")

// ErrNotClaimed is returned by Complete and Retry for a job that is not
// running: never claimed, already completed, or returned to pending.
var ErrNotClaimed = errors.New("store: job is not claimed")

// ErrInvalid is returned for arguments no backend can honour: an empty job ID
// or queue name, a non-positive lease, a Complete state other than succeeded
// or failed, a non-positive rate.
var ErrInvalid = errors.New("store: invalid argument")

// ErrLocked is returned by OpenEmbedded when another process holds the data
// file; the error text names the file.
var ErrLocked = errors.New("store: data file locked by another process")

// KV is a small key-value store with expiry: replay ids, kill switches,
// the stale-response cache.
type KV interface {
	// SetNX stores val under key for ttl (0 = no expiry) only if key is absent
	// or expired, and reports whether it stored it. Atomic across replicas.
	SetNX(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error)
	// Set stores val under key for ttl (0 = no expiry).
	Set(ctx context.Context, key string, val []byte, ttl time.Duration) error
	// Get returns the value, or ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// Delete removes key; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
}

// JobState is where a job is in its life.
type JobState string

const (
	JobPending   JobState = "pending"
	JobRunning   JobState = "running" // claimed under a lease
	JobSucceeded JobState = "succeeded"
	JobFailed    JobState = "failed" // gave up after its attempts
)

// Job is one durable unit of deferred work: a queued vendor call or a
// webhook to forward.
type Job struct {
	ID        string
	Owner     string // the caller that created it (who may read it)
	Payload   []byte
	State     JobState
	Attempts  int
	NotBefore time.Time // not claimable before this
	Created   time.Time
	Updated   time.Time
	Result    []byte // set on success or final failure
	LastError string // public-safe text of the last failure
}

// Queue is a durable at-least-once work queue. Enqueue returns only once the
// job is on disk (embedded) or acknowledged by Redis: what a caller was told
// is accepted is never only in memory.
type Queue interface {
	// Enqueue stores a new pending job (ID set by the caller, unique:
	// ErrJobExists otherwise).
	Enqueue(ctx context.Context, queue string, j Job) error
	// Claim leases up to n claimable jobs (pending and due, or running with an
	// expired lease — a worker that died) for lease; they become running and
	// their Attempts grows by one. Oldest first: by Created (Memory,
	// Embedded) or by arrival in the stream (Redis), the same unless a
	// caller back-dates Created. lease must be positive (ErrInvalid).
	Claim(ctx context.Context, queue string, n int, lease time.Duration) ([]Job, error)
	// Complete marks a claimed job succeeded or failed with its result;
	// ErrNotClaimed if the job is not running, ErrNotFound if absent.
	Complete(ctx context.Context, queue, id string, state JobState, result []byte, lastErr string) error
	// Retry returns a claimed job to pending, claimable at notBefore;
	// ErrNotClaimed if the job is not running, ErrNotFound if absent.
	Retry(ctx context.Context, queue, id string, notBefore time.Time, lastErr string) error
	// GetJob returns a job by id, or ErrNotFound.
	GetJob(ctx context.Context, queue, id string) (Job, error)
	// Stats reports how many jobs are pending or running and the Created
	// time of the oldest of them (zero when empty).
	Stats(ctx context.Context, queue string) (depth int, oldest time.Time, err error)
}

// UsageRecord is one call, kept for `portcullis audit`.
type UsageRecord struct {
	Time              time.Time
	Caller            string
	Integration       string
	Route             string // template, never the raw path
	Method            string
	Status            int
	VendorFailed      bool // 5xx, timeout or connect error from the vendor
	LatencyMS         float64
	CredentialVersion string
	Scopes            []string
}

// Usage stores usage records.
type Usage interface {
	// AppendUsage stores recs. It keeps nothing of the slice after it
	// returns: the caller reuses it.
	AppendUsage(ctx context.Context, recs []UsageRecord) error
	// ScanUsage calls fn for every record in [from, to) in time order.
	ScanUsage(ctx context.Context, from, to time.Time, fn func(UsageRecord) error) error
}

// Store is everything a backend provides.
type Store interface {
	KV
	Queue
	Usage
	// Ping reports whether the backend is reachable (readiness).
	Ping(ctx context.Context) error
	Close() error
}
