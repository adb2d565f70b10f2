package store_test

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/portcullis-dev/portcullis/internal/clock"
	"github.com/portcullis-dev/portcullis/internal/store"
)

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

func TestRedisUnreachableIsUnavailable(t *testing.T) {
	r, err := store.OpenRedis("redis://"+closedPort(t)+"/0", store.RedisOptions{})
	if err != nil {
		t.Fatalf("OpenRedis does not need a reachable server, got %v", err)
	}
	t.Cleanup(func() { _ = r.Close() })
	noop := func(store.UsageRecord) error { return nil }
	calls := []struct {
		name string
		call func() error
	}{
		{"ping", func() error { return r.Ping(bg) }},
		{"get", func() error { _, err := r.Get(bg, "k"); return err }},
		{"set-nx", func() error { _, err := r.SetNX(bg, "k", nil, time.Second); return err }},
		{"enqueue", func() error { return r.Enqueue(bg, "q", store.Job{ID: "a"}) }},
		{"claim", func() error { _, err := r.Claim(bg, "q", 1, time.Second); return err }},
		{"get-job", func() error { _, err := r.GetJob(bg, "q", "a"); return err }},
		{"stats", func() error { _, _, err := r.Stats(bg, "q"); return err }},
		{"append-usage", func() error { return r.AppendUsage(bg, []store.UsageRecord{{Time: time.Now()}}) }},
		{"scan-usage", func() error { return r.ScanUsage(bg, time.Time{}, time.Now(), noop) }},
		{"allow", func() error { _, _, err := r.Allow(bg, "k", 1, 1, time.Now()); return err }},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			err := c.call()
			if !errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrNotFound) {
				t.Errorf("error = %v, want ErrUnavailable (and not ErrNotFound)", err)
			}
		})
	}
}

func TestRedisURLPasswordNeverInErrors(t *testing.T) {
	const password = "hunter2-s3cr3t"
	tests := []struct {
		name string
		url  string
		want error
	}{
		{"unparsable-url", "redis://user:" + password + "@[::1/0", store.ErrInvalid},
		{"wrong-scheme", "http://user:" + password + "@127.0.0.1:6390/0", store.ErrInvalid},
		{"unreachable", "redis://user:" + password + "@" + closedPort(t) + "/0", store.ErrUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := store.OpenRedis(tc.url, store.RedisOptions{})
			if err == nil {
				err = r.Ping(bg)
				_ = r.Close()
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("error = %v, want %v", err, tc.want)
			}
			if strings.Contains(err.Error(), password) {
				t.Errorf("error text reveals the password: %q", err)
			}
		})
	}
}

func TestRedisPrefixesIsolate(t *testing.T) {
	a := openRedis(t, testPrefix(), store.RedisOptions{})
	b := openRedis(t, testPrefix(), store.RedisOptions{})
	if ok, err := a.SetNX(bg, "replay", []byte("a"), time.Minute); !ok || err != nil {
		t.Fatalf("SetNX in a = %v, %v", ok, err)
	}
	if ok, err := b.SetNX(bg, "replay", []byte("b"), time.Minute); !ok || err != nil {
		t.Errorf("SetNX of the same key under another prefix = %v, %v; want true", ok, err)
	}
	if err := a.Enqueue(bg, "q", store.Job{ID: "j"}); err != nil {
		t.Fatal(err)
	}
	if jobs, err := b.Claim(bg, "q", 5, time.Minute); err != nil || len(jobs) != 0 {
		t.Errorf("Claim under another prefix = %d jobs, %v; want none", len(jobs), err)
	}
	if _, err := b.GetJob(bg, "q", "j"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetJob under another prefix: %v, want ErrNotFound", err)
	}
}

func TestRedisLimiterIgnoresReplicaClockSkew(t *testing.T) {
	// Replicas share Redis's clock: one whose clock runs an hour ahead
	// must not find a refilled budget.
	r := openRedis(t, testPrefix(), store.RedisOptions{})
	for range 3 {
		if ok, _, err := r.Allow(bg, "k", 1, 3, time.Now()); !ok || err != nil {
			t.Fatalf("burst call denied: %v", err)
		}
	}
	for _, skew := range []time.Duration{time.Hour, -time.Hour} {
		if ok, _, err := r.Allow(bg, "k", 1, 3, time.Now().Add(skew)); ok || err != nil {
			t.Errorf("replica clock off by %v: ok=%v err=%v; want denied", skew, ok, err)
		}
	}
}

func TestRedisUsageTrimmedByAgeAndCount(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name string
		opts store.RedisOptions
		ages []time.Duration // record i is at now - ages[i]
		want []string
	}{
		{"by-age", store.RedisOptions{UsageRetention: time.Hour},
			[]time.Duration{3 * time.Hour, 2 * time.Hour, 30 * time.Minute, time.Minute}, []string{"2", "3"}},
		{"by-count", store.RedisOptions{UsageMaxRecords: 3},
			[]time.Duration{5 * time.Minute, 4 * time.Minute, 3 * time.Minute, 2 * time.Minute, time.Minute}, []string{"2", "3", "4"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Clock = clock.NewFake(now)
			r := openRedis(t, testPrefix(), tc.opts)
			for i, age := range tc.ages {
				if err := r.AppendUsage(bg, []store.UsageRecord{{Time: now.Add(-age), Caller: fmt.Sprint(i)}}); err != nil {
					t.Fatal(err)
				}
			}
			var got []string
			err := r.ScanUsage(bg, now.Add(-24*time.Hour), now.Add(time.Hour), func(u store.UsageRecord) error {
				got = append(got, u.Caller)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("kept records (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRedisFinishedJobsExpireAfterRetention(t *testing.T) {
	r := openRedis(t, testPrefix(), store.RedisOptions{JobRetention: 200 * time.Millisecond})
	if err := r.Enqueue(bg, "q", store.Job{ID: "j"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Claim(bg, "q", 1, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := r.Complete(bg, "q", "j", store.JobSucceeded, nil, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := r.GetJob(bg, "q", "j"); err != nil {
		t.Fatalf("GetJob right after Complete: %v", err)
	}
	time.Sleep(400 * time.Millisecond)
	if _, err := r.GetJob(bg, "q", "j"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetJob past retention: %v, want ErrNotFound", err)
	}
}

func TestRedisHotPathIsOneRoundTrip(t *testing.T) {
	r := openRedis(t, testPrefix(), store.RedisOptions{})
	var ran bool
	calls := []struct {
		name string
		call func(i int) error
	}{
		{"set-nx", func(i int) error { _, err := r.SetNX(bg, fmt.Sprint("k", i), nil, time.Minute); return err }},
		{"get", func(i int) error { _, err := r.Get(bg, fmt.Sprint("k", i)); return err }},
		{"enqueue", func(i int) error { return r.Enqueue(bg, "q", store.Job{ID: fmt.Sprint(i)}) }},
		{"claim", func(i int) error {
			jobs, err := r.Claim(bg, "q", 1, time.Minute)
			ran = ran || len(jobs) == 1
			return err
		}},
		{"complete", func(i int) error { return r.Complete(bg, "q", fmt.Sprint(i), store.JobSucceeded, nil, "") }},
		{"get-job", func(i int) error { _, err := r.GetJob(bg, "q", fmt.Sprint(i)); return err }},
		{"stats", func(int) error { _, _, err := r.Stats(bg, "q"); return err }},
		{"append-usage", func(int) error {
			return r.AppendUsage(bg, []store.UsageRecord{{Time: time.Now()}, {Time: time.Now()}})
		}},
		{"allow", func(int) error { _, _, err := r.Allow(bg, "k", 1000, 10, time.Now()); return err }},
	}
	// Round 0 loads the scripts into Redis (EVALSHA misses, then EVAL);
	// round 1 is the steady state that is measured.
	for round := range 2 {
		for _, c := range calls {
			n := store.CountRoundTrips(r)
			if err := c.call(round); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			if got := n.Load(); round == 1 && got != 1 {
				t.Errorf("%s took %d round trips, want 1", c.name, got)
			}
		}
	}
	if !ran {
		t.Error("claim never returned the enqueued job")
	}
}
