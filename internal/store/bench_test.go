package store_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/store"
	"github.com/portcullis-dev/portcullis/internal/store/storetest"
)

type benchBackend struct {
	name string
	open func(b *testing.B) (store.Store, func() int64) // round-trip counter, nil when not networked
}

var benchBackends = []benchBackend{
	{"memory", func(*testing.B) (store.Store, func() int64) { return store.NewMemory(nil), nil }},
	{"embedded", func(b *testing.B) (store.Store, func() int64) {
		e, err := store.OpenEmbedded(b.TempDir(), store.EmbeddedOptions{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = e.Close() })
		return e, nil
	}},
	{"redis", func(b *testing.B) (store.Store, func() int64) {
		prefix := testPrefix()
		r, err := store.OpenRedis(storetest.RedisURL(b), store.RedisOptions{Prefix: prefix})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			_ = r.Close()
			deletePrefix(b, prefix)
		})
		return r, store.CountRoundTrips(r).Load
	}},
}

// runBench runs op once to warm up (Redis loads its scripts), then b.N times,
// reporting round trips per op for Redis.
func runBench(b *testing.B, op func(s store.Store, i int) error) {
	for _, be := range benchBackends {
		b.Run(be.name, func(b *testing.B) {
			s, rtts := be.open(b)
			if err := op(s, -1); err != nil {
				b.Fatal(err)
			}
			var start int64
			if rtts != nil {
				start = rtts()
			}
			i := 0
			for b.Loop() {
				if err := op(s, i); err != nil {
					b.Fatal(err)
				}
				i++
			}
			if rtts != nil {
				b.ReportMetric(float64(rtts()-start)/float64(i), "rtt/op")
			}
		})
	}
}

func BenchmarkSetNX(b *testing.B) {
	runBench(b, func(s store.Store, i int) error {
		_, err := s.SetNX(bg, fmt.Sprint("replay-", i), []byte("1"), time.Hour)
		return err
	})
}

func BenchmarkEnqueue(b *testing.B) {
	payload := make([]byte, 512)
	runBench(b, func(s store.Store, i int) error {
		return s.Enqueue(bg, "bench", store.Job{ID: fmt.Sprint("job-", i), Owner: "billing", Payload: payload})
	})
}

func BenchmarkAllow(b *testing.B) {
	runBench(b, func(s store.Store, _ int) error {
		_, _, err := s.(store.RateLimiter).Allow(bg, "global", 1e6, 1000, time.Now())
		return err
	})
}
