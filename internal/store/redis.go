package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portcullis-dev/portcullis/internal/clock"
)

// DefaultUsageMaxRecords caps the Redis usage set when RedisOptions leaves
// UsageMaxRecords at zero: Redis holds everything in memory, so age alone is
// not a safe bound.
const DefaultUsageMaxRecords = 1_000_000

// RedisOptions tune OpenRedis; the zero value is ready to use.
type RedisOptions struct {
	// Prefix starts every key this store writes. Default "portcullis:".
	// Deployments (or tests) sharing one Redis database use distinct prefixes.
	Prefix string
	// Consumer names this replica in each queue's consumer group. Default
	// hostname-pid-random, unique per process.
	Consumer string
	// JobRetention is how long a succeeded or failed job stays readable with
	// GetJob. Default DefaultJobRetention.
	JobRetention time.Duration
	// UsageRetention is how long usage records are kept, trimmed on every
	// AppendUsage. Default DefaultUsageRetention.
	UsageRetention time.Duration
	// UsageMaxRecords caps the number of usage records kept, oldest dropped
	// first. Default DefaultUsageMaxRecords; negative means no cap.
	UsageMaxRecords int64
	// Clock is the clock for usage retention (nil: clock.System). TTLs,
	// leases, NotBefore and the rate limiter use the Redis server's clock.
	Clock clock.Clock
	// Timeout bounds every call of the store (state.redis_timeout): waiting
	// for a pooled connection, connecting, go-redis's retry and the reply all
	// fit in it, and a caller's earlier deadline wins. Default DefaultTimeout.
	// The URL's own dial_timeout, read_timeout, write_timeout, pool_timeout
	// and max_retries parameters are replaced so that none can exceed it.
	Timeout time.Duration
	// Logger receives the store's outage and recovery messages (nil: discard).
	Logger *slog.Logger
}

// DefaultTimeout is RedisOptions.Timeout when it is left at zero, and the
// default of state.redis_timeout.
const DefaultTimeout = 250 * time.Millisecond

// Redis is the Store shared by several replicas: KV entries are plain keys
// with PX expiry, each queue is a Redis stream read through one consumer
// group with job state in a hash per job, usage records live in one sorted
// set, and every multi-step operation is one Lua script (one round trip,
// atomic). Durability is the Redis server's (appendonly, replicas).
type Redis struct {
	client *redis.Client
	opts   RedisOptions

	// down is set when a call found Redis not answering; until a ping
	// succeeds, calls fail at once instead of each waiting out Timeout
	// (see redis_outage.go).
	down   atomic.Bool
	downMu sync.Mutex // serialises the up/down transitions
	closed chan struct{}

	closeOnce sync.Once
	closeErr  error
}

var (
	_ Store       = (*Redis)(nil)
	_ RateLimiter = (*Redis)(nil)
)

// consumerGroup is the one group every replica reads each queue through.
const consumerGroup = "portcullis"

// OpenRedis connects to the Redis at url (redis://, rediss:// or unix://,
// as go-redis parses it). It does not wait for the server: an unreachable
// Redis shows in Ping and in every call as ErrUnavailable, so a replica can
// start (and report not ready) while Redis is down. No call waits longer
// than opts.Timeout, see RedisOptions.
func OpenRedis(url string, opts RedisOptions) (*Redis, error) {
	ro, err := redis.ParseURL(url)
	if err != nil {
		// The parser's error quotes the URL, password included, so it is
		// not wrapped: the message says what is wrong without repeating it.
		return nil, fmt.Errorf("store: redis_url is not a valid redis://, rediss:// or unix:// URL: %w", ErrInvalid)
	}
	if opts.Prefix == "" {
		opts.Prefix = "portcullis:"
	}
	if opts.Consumer == "" {
		host, _ := os.Hostname()
		var b [4]byte
		_, _ = rand.Read(b[:])
		opts.Consumer = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
	}
	if opts.JobRetention <= 0 {
		opts.JobRetention = DefaultJobRetention
	}
	if opts.UsageRetention <= 0 {
		opts.UsageRetention = DefaultUsageRetention
	}
	if opts.UsageMaxRecords == 0 {
		opts.UsageMaxRecords = DefaultUsageMaxRecords
	}
	opts.Clock = clock.Or(opts.Clock)
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	boundClient(ro, opts.Timeout)
	r := &Redis{client: redis.NewClient(ro), opts: opts, closed: make(chan struct{})}
	r.client.AddHook(outageHook{r})
	return r, nil
}

// Close closes the connection pool; later calls return the first result.
func (r *Redis) Close() error {
	r.closeOnce.Do(func() {
		close(r.closed)
		r.closeErr = r.client.Close()
	})
	return r.closeErr
}

// Ping reports whether Redis answers. It always asks Redis, even while
// other calls fail at once (readiness and the outage prober rely on it).
func (r *Redis) Ping(ctx context.Context) error {
	ctx, cancel := r.bound(context.WithValue(ctx, probing{}, true))
	defer cancel()
	return r.wrap("ping", r.client.Ping(ctx).Err())
}

// Error replies our scripts raise, mapped back to sentinels.
var scriptErrors = map[string]error{
	"PCS_NOTFOUND":   ErrNotFound,
	"PCS_EXISTS":     ErrJobExists,
	"PCS_NOTCLAIMED": ErrNotClaimed,
}

// wrap maps a go-redis error to the store's sentinels: our scripts' own
// replies to theirs, everything else (network, timeouts, server errors) to
// ErrUnavailable.
func (r *Redis) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, redis.Nil) {
		return fmt.Errorf("store: redis %s: %w", op, ErrNotFound)
	}
	var re redis.Error
	if errors.As(err, &re) {
		code, detail, _ := strings.Cut(strings.TrimPrefix(re.Error(), "ERR "), " ")
		if s, ok := scriptErrors[code]; ok {
			if detail != "" {
				return fmt.Errorf("store: redis %s: %s: %w", op, detail, s)
			}
			return fmt.Errorf("store: redis %s: %w", op, s)
		}
	}
	return fmt.Errorf("store: redis %s: %w: %w", op, ErrUnavailable, err)
}

func (r *Redis) kvKey(key string) string { return r.opts.Prefix + "kv:" + key }

// pxTTL rounds a TTL up to whole milliseconds, Redis's resolution, so a
// sub-millisecond TTL still expires instead of being rejected.
func pxTTL(ttl time.Duration) time.Duration {
	if ttl <= 0 {
		return 0
	}
	return (ttl + time.Millisecond - 1).Truncate(time.Millisecond)
}

// SetNX is SET key val NX PX ttl: one round trip, atomic across replicas.
func (r *Redis) SetNX(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error) {
	if err := checkKey(key); err != nil {
		return false, err
	}
	ctx, cancel := r.bound(ctx)
	defer cancel()
	ok, err := r.client.SetNX(ctx, r.kvKey(key), val, pxTTL(ttl)).Result()
	if err != nil {
		return false, r.wrap("setnx", err)
	}
	return ok, nil
}

func (r *Redis) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	if err := checkKey(key); err != nil {
		return err
	}
	ctx, cancel := r.bound(ctx)
	defer cancel()
	return r.wrap("set", r.client.Set(ctx, r.kvKey(key), val, pxTTL(ttl)).Err())
}

func (r *Redis) Get(ctx context.Context, key string) ([]byte, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	ctx, cancel := r.bound(ctx)
	defer cancel()
	v, err := r.client.Get(ctx, r.kvKey(key)).Bytes()
	if err != nil {
		return nil, r.wrap("get", err)
	}
	return v, nil
}

func (r *Redis) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	ctx, cancel := r.bound(ctx)
	defer cancel()
	return r.wrap("delete", r.client.Del(ctx, r.kvKey(key)).Err())
}

// RedisLog adapts a *slog.Logger to go-redis's logger. go-redis logs (dial
// failures, pool events) through one process-wide logger that writes to
// stderr; the program's wiring, not this package, should call
// redis.SetLogger(store.RedisLog{Logger: logger}) once at start-up.
type RedisLog struct{ Logger *slog.Logger }

// Printf logs one go-redis message at warning level.
func (l RedisLog) Printf(ctx context.Context, format string, v ...any) {
	l.Logger.WarnContext(ctx, "redis client", "message", fmt.Sprintf(format, v...))
}
