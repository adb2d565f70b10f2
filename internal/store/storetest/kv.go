package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/portcullis-dev/portcullis/internal/store"
)

func mustGet(t *testing.T, s store.Store, key string) []byte {
	t.Helper()
	v, err := s.Get(ctx(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return v
}

func wantNotFound(t *testing.T, s store.Store, key string) {
	t.Helper()
	if v, err := s.Get(ctx(), key); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get(%q) = %q, %v; want ErrNotFound", key, v, err)
	}
}

func mustSet(t *testing.T, s store.Store, key string, val []byte, ttl time.Duration) {
	t.Helper()
	if err := s.Set(ctx(), key, val, ttl); err != nil {
		t.Fatalf("Set(%q): %v", key, err)
	}
}

func mustSetNX(t *testing.T, s store.Store, key string, val []byte, ttl time.Duration) bool {
	t.Helper()
	ok, err := s.SetNX(ctx(), key, val, ttl)
	if err != nil {
		t.Fatalf("SetNX(%q): %v", key, err)
	}
	return ok
}

var kvCases = []suiteCase{
	{name: "kv/get-missing-is-not-found", fn: func(t *testing.T, s store.Store) {
		wantNotFound(t, s, "nothing-here")
	}},
	{name: "kv/set-then-get-binary-value", fn: func(t *testing.T, s store.Store) {
		val := []byte{0, 1, 2, 0xff, '\n', 0}
		mustSet(t, s, "bin", val, 0)
		if diff := cmp.Diff(val, mustGet(t, s, "bin")); diff != "" {
			t.Errorf("Get after Set (-want +got):\n%s", diff)
		}
	}},
	{name: "kv/set-overwrites", fn: func(t *testing.T, s store.Store) {
		mustSet(t, s, "k", []byte("one"), 0)
		mustSet(t, s, "k", []byte("two"), 0)
		if got := string(mustGet(t, s, "k")); got != "two" {
			t.Errorf("Get = %q, want %q", got, "two")
		}
	}},
	{name: "kv/delete-removes-and-missing-is-ok", fn: func(t *testing.T, s store.Store) {
		mustSet(t, s, "k", []byte("v"), time.Hour)
		for i := range 2 { // the second delete is of a missing key
			if err := s.Delete(ctx(), "k"); err != nil {
				t.Fatalf("Delete #%d: %v", i+1, err)
			}
		}
		wantNotFound(t, s, "k")
		if !mustSetNX(t, s, "k", []byte("again"), 0) {
			t.Error("SetNX after Delete = false, want true")
		}
	}},
	{name: "kv/stored-value-is-a-copy", fn: func(t *testing.T, s store.Store) {
		val := []byte("original")
		mustSet(t, s, "k", val, 0)
		copy(val, "XXXXXXXX")
		got := mustGet(t, s, "k")
		copy(got, "YYYYYYYY")
		if got := string(mustGet(t, s, "k")); got != "original" {
			t.Errorf("Get = %q after caller mutated its buffers, want %q", got, "original")
		}
	}},
	{name: "kv/set-nx-stores-only-once", fn: func(t *testing.T, s store.Store) {
		if !mustSetNX(t, s, "replay-id", []byte("first"), time.Hour) {
			t.Fatal("first SetNX = false, want true")
		}
		if mustSetNX(t, s, "replay-id", []byte("second"), time.Hour) {
			t.Error("second SetNX = true, want false")
		}
		if got := string(mustGet(t, s, "replay-id")); got != "first" {
			t.Errorf("Get = %q, want the first value", got)
		}
	}},
	{name: "kv/live-before-ttl", fn: func(t *testing.T, s store.Store) {
		mustSet(t, s, "set", []byte("v"), 10*time.Second)
		mustSetNX(t, s, "nx", []byte("v"), 10*time.Second)
		mustGet(t, s, "set")
		if mustSetNX(t, s, "nx", []byte("w"), time.Second) {
			t.Error("SetNX on a live key = true, want false")
		}
	}},
	{name: "kv/expires-after-ttl", fn: func(t *testing.T, s store.Store) {
		mustSet(t, s, "set", []byte("v"), 100*time.Millisecond)
		mustSetNX(t, s, "nx", []byte("v"), 100*time.Millisecond)
		time.Sleep(300 * time.Millisecond)
		wantNotFound(t, s, "set")
		if !mustSetNX(t, s, "nx", []byte("again"), 0) {
			t.Fatal("SetNX on an expired key = false, want true")
		}
		if got := string(mustGet(t, s, "nx")); got != "again" {
			t.Errorf("Get = %q, want %q", got, "again")
		}
	}},
	{name: "kv/set-without-ttl-clears-old-ttl", fn: func(t *testing.T, s store.Store) {
		mustSet(t, s, "k", []byte("short"), 100*time.Millisecond)
		mustSet(t, s, "k", []byte("forever"), 0)
		time.Sleep(300 * time.Millisecond)
		if got := string(mustGet(t, s, "k")); got != "forever" {
			t.Errorf("Get = %q, want %q", got, "forever")
		}
	}},
	{name: "kv/empty-key-is-invalid", fn: func(t *testing.T, s store.Store) {
		if _, err := s.SetNX(ctx(), "", []byte("v"), 0); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("SetNX(\"\") error = %v, want ErrInvalid", err)
		}
		if err := s.Set(ctx(), "", []byte("v"), 0); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("Set(\"\") error = %v, want ErrInvalid", err)
		}
	}},
	{name: "kv/set-nx-race-has-one-winner", fn: func(t *testing.T, s store.Store) {
		const keys, racers = 20, 32
		winners := make([][]int, keys)
		var mu sync.Mutex
		var wg sync.WaitGroup
		start := make(chan struct{})
		for r := range racers {
			wg.Go(func() {
				<-start
				for k := range keys {
					ok, err := s.SetNX(ctx(), fmt.Sprintf("race-%d", k), fmt.Appendf(nil, "racer-%d", r), time.Minute)
					if err != nil {
						t.Errorf("SetNX: %v", err)
						return
					}
					if ok {
						mu.Lock()
						winners[k] = append(winners[k], r)
						mu.Unlock()
					}
				}
			})
		}
		close(start)
		wg.Wait()
		for k, w := range winners {
			if len(w) != 1 {
				t.Errorf("key race-%d: winners %v, want exactly one", k, w)
				continue
			}
			if got, want := string(mustGet(t, s, fmt.Sprintf("race-%d", k))), fmt.Sprintf("racer-%d", w[0]); got != want {
				t.Errorf("key race-%d holds %q, want the winner's %q", k, got, want)
			}
		}
	}},
}
