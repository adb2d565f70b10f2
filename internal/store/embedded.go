package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/portcullis-dev/portcullis/internal/clock"
)

// EmbeddedFile is the name of the embedded store's file under data_dir.
const EmbeddedFile = "portcullis.db"

// Default retention bounds, shared by the durable backends.
const (
	DefaultJobRetention   = 7 * 24 * time.Hour
	DefaultUsageRetention = 90 * 24 * time.Hour
)

// EmbeddedOptions tune OpenEmbedded; the zero value is ready to use.
type EmbeddedOptions struct {
	// LockTimeout is how long OpenEmbedded waits for another process to
	// release the data file before failing with ErrLocked. Default 1s.
	LockTimeout time.Duration
	// SweepInterval is how often expired KV entries, finished jobs past
	// JobRetention and usage records past UsageRetention are deleted from
	// disk. Default 1m; negative turns the background sweep off (call Sweep).
	SweepInterval time.Duration
	// JobRetention is how long a succeeded or failed job stays readable with
	// GetJob. Default DefaultJobRetention.
	JobRetention time.Duration
	// UsageRetention is how long usage records are kept. Default
	// DefaultUsageRetention.
	UsageRetention time.Duration
	// Clock is the clock for expiry, leases and retention (nil: clock.System).
	Clock clock.Clock
	// Logger receives background sweep failures (nil: discarded).
	Logger *slog.Logger
}

// Embedded is the durable single-process Store: one bbolt file under
// data_dir. Every write is a bbolt transaction that is fsync'd before it
// returns (bbolt's default), so an Enqueue that returned is on disk.
type Embedded struct {
	db   *bolt.DB
	path string
	opts EmbeddedOptions
	lim  *localLimiter

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

var (
	_ Store       = (*Embedded)(nil)
	_ RateLimiter = (*Embedded)(nil)
)

// Top-level buckets. Layout:
//
//	kv      key → 8-byte expiry (unix ns, 0 = none) ‖ value
//	kv_exp  8-byte expiry ‖ key → ""          (sweep index)
//	queues  queue → {jobs: id → JSON, live: created ‖ id → "", done: updated ‖ id → ""}
//	usage   8-byte time ‖ 8-byte sequence → JSON record
var (
	bucketKV     = []byte("kv")
	bucketKVExp  = []byte("kv_exp")
	bucketQueues = []byte("queues")
	bucketUsage  = []byte("usage")
)

// OpenEmbedded opens (creating if needed) dir/portcullis.db. If another
// process holds the file it fails after opts.LockTimeout with ErrLocked,
// naming the file. Only one process holds the file, so every job still
// claimed when it opens was claimed by a process that is gone (killed, or
// crashed mid-delivery): OpenEmbedded returns those jobs to pending at once
// instead of letting them wait for their leases. (Redis keeps leases: there
// another replica may still hold them.)
func OpenEmbedded(dir string, opts EmbeddedOptions) (*Embedded, error) {
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = time.Second
	}
	if opts.SweepInterval == 0 {
		opts.SweepInterval = time.Minute
	}
	if opts.JobRetention <= 0 {
		opts.JobRetention = DefaultJobRetention
	}
	if opts.UsageRetention <= 0 {
		opts.UsageRetention = DefaultUsageRetention
	}
	opts.Clock = clock.Or(opts.Clock)
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: create data_dir: %w", err)
	}
	path := filepath.Join(dir, EmbeddedFile)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("store: %s is held by another process (another portcullis with the same data_dir?), gave up after %v: %w",
			path, opts.LockTimeout, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketKV, bucketKVExp, bucketQueues, bucketUsage} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store: initialise %s: %w", path, err)
	}
	e := &Embedded{db: db, path: path, opts: opts, lim: newLocalLimiter(opts.Clock),
		stop: make(chan struct{}), done: make(chan struct{})}
	// The file lock says the process that held these leases is gone: its
	// work resumes now, not when the leases run out.
	n, err := e.releaseLeases()
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store: release the previous process's leases in %s: %w", path, err)
	}
	if n > 0 {
		opts.Logger.Info("jobs claimed by the previous process returned to their queues", slog.Int("jobs", n))
	}
	go e.sweepLoop()
	return e, nil
}

// Path is the data file's path.
func (e *Embedded) Path() string { return e.path }

// Close stops the sweeper and closes the file; later calls return the first
// call's result.
func (e *Embedded) Close() error {
	e.closeOnce.Do(func() {
		close(e.stop)
		<-e.done
		e.closeErr = e.db.Close()
	})
	return e.closeErr
}

// Ping reports whether the file is still open and readable.
func (e *Embedded) Ping(context.Context) error {
	return e.view("ping", func(*bolt.Tx) error { return nil })
}

// isLogical reports whether err is one of the store's own answers rather
// than a failure of the disk or the database.
func isLogical(err error) bool {
	for _, s := range []error{ErrNotFound, ErrJobExists, ErrNotClaimed, ErrInvalid} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

func (e *Embedded) wrap(op string, err error) error {
	if err == nil || isLogical(err) {
		return err
	}
	return fmt.Errorf("store: embedded %s: %w: %w", op, ErrUnavailable, err)
}

func (e *Embedded) update(op string, fn func(*bolt.Tx) error) error {
	return e.wrap(op, e.db.Update(fn))
}

func (e *Embedded) view(op string, fn func(*bolt.Tx) error) error {
	return e.wrap(op, e.db.View(fn))
}

// timeKey encodes t as 8 big-endian bytes of unix nanoseconds so that byte
// order is time order; times before 1970 (including the zero time) sort
// first as 0.
func timeKey(t time.Time) []byte {
	return appendTimeKey(make([]byte, 0, 8), t)
}

// appendTimeKey appends timeKey(t) to b.
func appendTimeKey(b []byte, t time.Time) []byte {
	var n uint64
	if t.After(time.Unix(0, 0)) {
		n = uint64(t.UnixNano())
	}
	return binary.BigEndian.AppendUint64(b, n)
}

func keyTime(k []byte) time.Time {
	n := binary.BigEndian.Uint64(k[:8])
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(n))
}

func (e *Embedded) SetNX(_ context.Context, key string, val []byte, ttl time.Duration) (bool, error) {
	if err := checkKey(key); err != nil {
		return false, err
	}
	var stored bool
	err := e.update("setnx", func(tx *bolt.Tx) error {
		now := e.opts.Clock.Now()
		if _, ok := kvLive(tx, key, now); ok {
			return nil
		}
		stored = true
		return kvPut(tx, key, val, expiry(now, ttl))
	})
	return stored && err == nil, err
}

func (e *Embedded) Set(_ context.Context, key string, val []byte, ttl time.Duration) error {
	if err := checkKey(key); err != nil {
		return err
	}
	return e.update("set", func(tx *bolt.Tx) error {
		return kvPut(tx, key, val, expiry(e.opts.Clock.Now(), ttl))
	})
}

func (e *Embedded) Get(_ context.Context, key string) ([]byte, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	var out []byte
	err := e.view("get", func(tx *bolt.Tx) error {
		v, ok := kvLive(tx, key, e.opts.Clock.Now())
		if !ok {
			return ErrNotFound
		}
		out = slices.Clone(v)
		return nil
	})
	return out, err
}

func (e *Embedded) Delete(_ context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	return e.update("delete", func(tx *bolt.Tx) error { return kvDelete(tx, key) })
}

// kvLive returns the value under key unless it is absent or expired; an
// expired entry is left for the sweep (a read transaction cannot delete).
func kvLive(tx *bolt.Tx, key string, now time.Time) ([]byte, bool) {
	v := tx.Bucket(bucketKV).Get([]byte(key))
	if v == nil {
		return nil, false
	}
	if exp := keyTime(v); !exp.IsZero() && !now.Before(exp) {
		return nil, false
	}
	return v[8:], true
}

func kvPut(tx *bolt.Tx, key string, val []byte, exp time.Time) error {
	if err := kvDelete(tx, key); err != nil {
		return err
	}
	ek := timeKey(exp)
	if err := tx.Bucket(bucketKV).Put([]byte(key), append(ek, val...)); err != nil {
		return err
	}
	if exp.IsZero() {
		return nil
	}
	return tx.Bucket(bucketKVExp).Put(append(slices.Clip(ek), key...), nil)
}

func kvDelete(tx *bolt.Tx, key string) error {
	kv := tx.Bucket(bucketKV)
	old := kv.Get([]byte(key))
	if old == nil {
		return nil
	}
	if exp := old[:8]; !keyTime(exp).IsZero() {
		if err := tx.Bucket(bucketKVExp).Delete(append(slices.Clone(exp), key...)); err != nil {
			return err
		}
	}
	return kv.Delete([]byte(key))
}

// Allow implements RateLimiter in process memory: one process holds the data
// file, so a global limit needs no shared state, and limiter state is not
// worth an fsync per call.
func (e *Embedded) Allow(ctx context.Context, key string, ratePerSec float64, burst int, now time.Time) (bool, time.Duration, error) {
	return e.lim.Allow(ctx, key, ratePerSec, burst, now)
}
