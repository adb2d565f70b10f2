package store_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"path/filepath"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/portcullis-dev/portcullis/internal/store"
	"github.com/portcullis-dev/portcullis/internal/store/storetest"
)

func TestMemoryConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return store.NewMemory(nil) })
}

func openEmbedded(t *testing.T, dir string) *store.Embedded {
	t.Helper()
	e, err := store.OpenEmbedded(dir, store.EmbeddedOptions{})
	if err != nil {
		t.Fatalf("OpenEmbedded: %v", err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func TestEmbeddedConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openEmbedded(t, t.TempDir()) })
}

func TestEmbeddedDurable(t *testing.T) {
	storetest.RunDurable(t,
		func(t *testing.T) store.Store { return openEmbedded(t, t.TempDir()) },
		func(t *testing.T, s store.Store) store.Store {
			dir := filepath.Dir(s.(*store.Embedded).Path())
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			return openEmbedded(t, dir)
		}, storetest.LeasesReleased)
}

// testPrefix is a fresh key prefix, so tests sharing one Redis database
// never see each other's keys (and nothing is ever flushed).
func testPrefix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "pcs-test:" + hex.EncodeToString(b[:]) + ":"
}

func openRedis(t *testing.T, prefix string, opts store.RedisOptions) *store.Redis {
	t.Helper()
	opts.Prefix = prefix
	r, err := store.OpenRedis(storetest.RedisURL(t), opts)
	if err != nil {
		t.Fatalf("OpenRedis: %v", err)
	}
	t.Cleanup(func() {
		_ = r.Close()
		deletePrefix(t, prefix)
	})
	return r
}

// deletePrefix removes the keys a test wrote under its prefix (and only
// those: the database is shared, so it is never flushed).
func deletePrefix(t testing.TB, prefix string) {
	t.Helper()
	opts, err := redis.ParseURL(storetest.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	defer c.Close()
	ctx := context.Background()
	iter := c.Scan(ctx, 0, prefix+"*", 500).Iterator()
	for iter.Next(ctx) {
		c.Del(ctx, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Errorf("clean up %s*: %v", prefix, err)
	}
}

func TestRedisConformance(t *testing.T) {
	storetest.RedisURL(t)
	storetest.Run(t, func(t *testing.T) store.Store { return openRedis(t, testPrefix(), store.RedisOptions{}) })
}

// TestRedisDurable reopens as another replica: the first client (with its
// consumer name) is closed, as a replica that died, and a second one with
// another consumer name must see and re-claim everything.
func TestRedisDurable(t *testing.T) {
	storetest.RedisURL(t)
	var prefixes sync.Map // store.Store → its prefix; cases run in parallel
	storetest.RunDurable(t,
		func(t *testing.T) store.Store {
			p := testPrefix()
			r := openRedis(t, p, store.RedisOptions{Consumer: "replica-a"})
			prefixes.Store(r, p)
			return r
		},
		func(t *testing.T, s store.Store) store.Store {
			p, _ := prefixes.Load(s)
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			return openRedis(t, p.(string), store.RedisOptions{Consumer: "replica-b"})
		}, storetest.LeasesKept)
}
