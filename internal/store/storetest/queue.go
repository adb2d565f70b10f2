package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/portcullis-dev/portcullis/internal/store"
)

const q = "calls"

func mustEnqueue(t *testing.T, s store.Store, queue string, j store.Job) {
	t.Helper()
	if err := s.Enqueue(ctx(), queue, j); err != nil {
		t.Fatalf("Enqueue(%s, %s): %v", queue, j.ID, err)
	}
}

func mustClaim(t *testing.T, s store.Store, queue string, n int, lease time.Duration) []store.Job {
	t.Helper()
	jobs, err := s.Claim(ctx(), queue, n, lease)
	if err != nil {
		t.Fatalf("Claim(%s, %d): %v", queue, n, err)
	}
	return jobs
}

func mustGetJob(t *testing.T, s store.Store, queue, id string) store.Job {
	t.Helper()
	j, err := s.GetJob(ctx(), queue, id)
	if err != nil {
		t.Fatalf("GetJob(%s, %s): %v", queue, id, err)
	}
	return j
}

func ids(jobs []store.Job) []string {
	out := make([]string, len(jobs))
	for i, j := range jobs {
		out[i] = j.ID
	}
	return out
}

// enqueueN enqueues jobs j0…j(n-1) with strictly increasing Created times,
// in that order, and returns the base time.
func enqueueN(t *testing.T, s store.Store, n int) time.Time {
	t.Helper()
	base := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	for i := range n {
		mustEnqueue(t, s, q, store.Job{ID: fmt.Sprintf("j%d", i), Owner: "billing",
			Payload: fmt.Appendf(nil, "payload-%d", i), Created: base.Add(time.Duration(i) * time.Millisecond)})
	}
	return base
}

func wantClaimedIDs(t *testing.T, got []store.Job, want ...string) {
	t.Helper()
	if diff := cmp.Diff(want, ids(got), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("claimed ids (-want +got):\n%s", diff)
	}
}

var queueCases = []suiteCase{
	{name: "queue/enqueue-then-get-job", fn: func(t *testing.T, s store.Store) {
		created := time.Now().Add(-time.Hour).Round(time.Microsecond)
		in := store.Job{ID: "call-1", Owner: "billing", Payload: []byte(`{"amount":100}`), Created: created}
		mustEnqueue(t, s, q, in)
		got := mustGetJob(t, s, q, "call-1")
		want := in
		want.State = store.JobPending
		if diff := cmp.Diff(want, got, jobCmp...); diff != "" {
			t.Errorf("GetJob after Enqueue (-want +got):\n%s", diff)
		}
		if got.Updated.IsZero() {
			t.Error("Updated is zero after Enqueue")
		}
	}},
	{name: "queue/enqueue-sets-created-when-zero", fn: func(t *testing.T, s store.Store) {
		before := time.Now()
		mustEnqueue(t, s, q, store.Job{ID: "a"})
		after := time.Now()
		got := mustGetJob(t, s, q, "a").Created
		// A second of slack: Redis stamps with its own clock.
		if got.Before(before.Add(-time.Second)) || got.After(after.Add(time.Second)) {
			t.Errorf("Created = %v, want within [%v, %v]", got, before, after)
		}
	}},
	{name: "queue/enqueue-duplicate-id-is-job-exists", fn: func(t *testing.T, s store.Store) {
		mustEnqueue(t, s, q, store.Job{ID: "dup", Payload: []byte("first")})
		err := s.Enqueue(ctx(), q, store.Job{ID: "dup", Payload: []byte("second")})
		if !errors.Is(err, store.ErrJobExists) {
			t.Fatalf("second Enqueue error = %v, want ErrJobExists", err)
		}
		if got := string(mustGetJob(t, s, q, "dup").Payload); got != "first" {
			t.Errorf("payload = %q after a duplicate Enqueue, want %q", got, "first")
		}
	}},
	{name: "queue/get-job-missing-is-not-found", fn: func(t *testing.T, s store.Store) {
		mustEnqueue(t, s, q, store.Job{ID: "here"})
		for _, tc := range []struct{ queue, id string }{{q, "absent"}, {"no-such-queue", "here"}} {
			if _, err := s.GetJob(ctx(), tc.queue, tc.id); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("GetJob(%s, %s) error = %v, want ErrNotFound", tc.queue, tc.id, err)
			}
		}
	}},
	{name: "queue/invalid-arguments", fn: func(t *testing.T, s store.Store) {
		mustEnqueue(t, s, q, store.Job{ID: "x"})
		checks := []struct {
			name string
			err  error
		}{
			{"enqueue-empty-id", s.Enqueue(ctx(), q, store.Job{})},
			{"enqueue-empty-queue", s.Enqueue(ctx(), "", store.Job{ID: "y"})},
			{"claim-zero-lease", func() error { _, err := s.Claim(ctx(), q, 1, 0); return err }()},
			{"complete-running-state", s.Complete(ctx(), q, "x", store.JobRunning, nil, "")},
		}
		for _, c := range checks {
			if !errors.Is(c.err, store.ErrInvalid) {
				t.Errorf("%s: error = %v, want ErrInvalid", c.name, c.err)
			}
		}
		if jobs := mustClaim(t, s, q, 0, time.Minute); len(jobs) != 0 {
			t.Errorf("Claim(n=0) = %v, want none", ids(jobs))
		}
	}},
	{name: "queue/claim-empty-or-unknown-queue", fn: func(t *testing.T, s store.Store) {
		wantClaimedIDs(t, mustClaim(t, s, "never-used", 5, time.Minute))
	}},
	{name: "queue/claim-in-created-order-up-to-n", fn: func(t *testing.T, s store.Store) {
		enqueueN(t, s, 5)
		first := mustClaim(t, s, q, 3, time.Minute)
		wantClaimedIDs(t, first, "j0", "j1", "j2")
		for _, j := range first {
			if j.State != store.JobRunning || j.Attempts != 1 || string(j.Payload) != "payload-"+j.ID[1:] {
				t.Errorf("claimed %s: state %s attempts %d payload %q; want running, 1, its payload", j.ID, j.State, j.Attempts, j.Payload)
			}
		}
		wantClaimedIDs(t, mustClaim(t, s, q, 10, time.Minute), "j3", "j4")
		wantClaimedIDs(t, mustClaim(t, s, q, 10, time.Minute))
	}},
	{name: "queue/claim-respects-not-before", fn: func(t *testing.T, s store.Store) {
		now := time.Now()
		mustEnqueue(t, s, q, store.Job{ID: "past", NotBefore: now.Add(-time.Second)})
		mustEnqueue(t, s, q, store.Job{ID: "soon", NotBefore: now.Add(200 * time.Millisecond)})
		mustEnqueue(t, s, q, store.Job{ID: "later", NotBefore: now.Add(time.Hour)})
		wantClaimedIDs(t, mustClaim(t, s, q, 10, time.Minute), "past")
		var got []store.Job
		if !eventually(2*time.Second, func() bool { got = append(got, mustClaim(t, s, q, 10, time.Minute)...); return len(got) > 0 }) {
			t.Fatal("job with NotBefore 200ms ahead was not claimable within 2s")
		}
		if elapsed := time.Since(now); elapsed < 200*time.Millisecond {
			t.Errorf("claimed after %v, before its NotBefore", elapsed)
		}
		wantClaimedIDs(t, got, "soon")
		if j := mustGetJob(t, s, q, "later"); j.State != store.JobPending {
			t.Errorf("delayed job state = %s, want pending", j.State)
		}
	}},
	{name: "queue/leased-job-is-not-reclaimed", fn: func(t *testing.T, s store.Store) {
		enqueueN(t, s, 1)
		wantClaimedIDs(t, mustClaim(t, s, q, 1, time.Minute), "j0")
		wantClaimedIDs(t, mustClaim(t, s, q, 1, time.Minute))
		if j := mustGetJob(t, s, q, "j0"); j.State != store.JobRunning {
			t.Errorf("state = %s, want running", j.State)
		}
	}},
	{name: "queue/expired-lease-is-reclaimed", fn: func(t *testing.T, s store.Store) {
		enqueueN(t, s, 2)
		wantClaimedIDs(t, mustClaim(t, s, q, 1, 100*time.Millisecond), "j0") // this worker dies
		time.Sleep(300 * time.Millisecond)
		again := mustClaim(t, s, q, 2, 100*time.Millisecond)
		slices.SortFunc(again, func(a, b store.Job) int { return strings.Compare(a.ID, b.ID) })
		wantClaimedIDs(t, again, "j0", "j1")
		if len(again) > 0 && (again[0].Attempts != 2 || string(again[0].Payload) != "payload-0") {
			t.Errorf("re-claimed j0: attempts %d payload %q, want 2 and its payload", again[0].Attempts, again[0].Payload)
		}
		if err := s.Complete(ctx(), q, "j0", store.JobSucceeded, []byte("ok"), ""); err != nil {
			t.Errorf("Complete by the second worker: %v", err)
		}
	}},
	{name: "queue/concurrent-claims-take-each-job-once", fn: func(t *testing.T, s store.Store) {
		const jobs, workers = 60, 8
		enqueueN(t, s, jobs)
		seen := map[string]int{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for {
					got, err := s.Claim(ctx(), q, 3, time.Minute)
					if err != nil {
						t.Errorf("Claim: %v", err)
						return
					}
					if len(got) == 0 {
						return
					}
					mu.Lock()
					for _, j := range got {
						seen[j.ID]++
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(seen) != jobs {
			t.Errorf("claimed %d distinct jobs, want %d", len(seen), jobs)
		}
		for id, n := range seen {
			if n != 1 {
				t.Errorf("job %s claimed %d times under a live lease", id, n)
			}
		}
	}},
	{name: "queue/complete-records-outcome", fn: func(t *testing.T, s store.Store) {
		tests := []struct {
			name    string
			state   store.JobState
			result  []byte
			lastErr string
		}{
			{"succeeded", store.JobSucceeded, []byte(`{"status":201}`), ""},
			{"failed", store.JobFailed, []byte(`{"status":503}`), "vendor returned 503 three times"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				mustEnqueue(t, s, tc.name, store.Job{ID: "c", Payload: []byte("p")})
				mustClaim(t, s, tc.name, 1, time.Minute)
				if err := s.Complete(ctx(), tc.name, "c", tc.state, tc.result, tc.lastErr); err != nil {
					t.Fatalf("Complete: %v", err)
				}
				got := mustGetJob(t, s, tc.name, "c")
				want := store.Job{ID: "c", Payload: []byte("p"), State: tc.state, Attempts: 1, Result: tc.result, LastError: tc.lastErr, Created: got.Created}
				if diff := cmp.Diff(want, got, jobCmp...); diff != "" {
					t.Errorf("GetJob after Complete (-want +got):\n%s", diff)
				}
				if n, _, err := s.Stats(ctx(), tc.name); err != nil || n != 0 {
					t.Errorf("Stats depth = %d, %v; want 0", n, err)
				}
				time.Sleep(10 * time.Millisecond)
				wantClaimedIDs(t, mustClaim(t, s, tc.name, 1, time.Millisecond))
			})
		}
	}},
	{name: "queue/complete-or-retry-needs-a-claim", fn: func(t *testing.T, s store.Store) {
		mustEnqueue(t, s, q, store.Job{ID: "done", Created: time.Now().Add(-time.Hour)})
		mustEnqueue(t, s, q, store.Job{ID: "pending"})
		wantClaimedIDs(t, mustClaim(t, s, q, 1, time.Minute), "done")
		if err := s.Complete(ctx(), q, "done", store.JobSucceeded, nil, ""); err != nil {
			t.Fatalf("Complete: %v", err)
		}
		tests := []struct {
			name string
			err  error
			want error
		}{
			{"complete-pending", s.Complete(ctx(), q, "pending", store.JobSucceeded, nil, ""), store.ErrNotClaimed},
			{"retry-pending", s.Retry(ctx(), q, "pending", time.Time{}, ""), store.ErrNotClaimed},
			{"complete-twice", s.Complete(ctx(), q, "done", store.JobFailed, nil, "late"), store.ErrNotClaimed},
			{"retry-finished", s.Retry(ctx(), q, "done", time.Time{}, ""), store.ErrNotClaimed},
			{"complete-missing", s.Complete(ctx(), q, "absent", store.JobSucceeded, nil, ""), store.ErrNotFound},
			{"retry-missing", s.Retry(ctx(), q, "absent", time.Time{}, ""), store.ErrNotFound},
		}
		for _, tc := range tests {
			if !errors.Is(tc.err, tc.want) {
				t.Errorf("%s: error = %v, want %v", tc.name, tc.err, tc.want)
			}
		}
		if j := mustGetJob(t, s, q, "done"); j.State != store.JobSucceeded {
			t.Errorf("finished job state = %s after rejected calls, want succeeded", j.State)
		}
	}},
	{name: "queue/retry-returns-job-after-not-before", fn: func(t *testing.T, s store.Store) {
		enqueueN(t, s, 1)
		mustClaim(t, s, q, 1, time.Minute)
		notBefore := time.Now().Add(300 * time.Millisecond).Round(time.Microsecond)
		if err := s.Retry(ctx(), q, "j0", notBefore, "vendor returned 503"); err != nil {
			t.Fatalf("Retry: %v", err)
		}
		got := mustGetJob(t, s, q, "j0")
		if got.State != store.JobPending || got.LastError != "vendor returned 503" || !got.NotBefore.Equal(notBefore) {
			t.Errorf("after Retry: state %s, last error %q, not before %v; want pending, the error, %v", got.State, got.LastError, got.NotBefore, notBefore)
		}
		wantClaimedIDs(t, mustClaim(t, s, q, 1, time.Minute))
		var again []store.Job
		if !eventually(3*time.Second, func() bool { again = mustClaim(t, s, q, 1, time.Minute); return len(again) > 0 }) {
			t.Fatal("retried job not claimable within 3s")
		}
		if time.Now().Before(notBefore) {
			t.Error("retried job claimed before its NotBefore")
		}
		if again[0].Attempts != 2 || again[0].LastError != "vendor returned 503" {
			t.Errorf("re-claimed: attempts %d, last error %q; want 2 and the error", again[0].Attempts, again[0].LastError)
		}
	}},
	{name: "queue/retry-without-delay-is-claimable-at-once", fn: func(t *testing.T, s store.Store) {
		enqueueN(t, s, 1)
		mustClaim(t, s, q, 1, time.Minute)
		if err := s.Retry(ctx(), q, "j0", time.Time{}, "connect error"); err != nil {
			t.Fatalf("Retry: %v", err)
		}
		wantClaimedIDs(t, mustClaim(t, s, q, 1, time.Minute), "j0")
	}},
	{name: "queue/stats-depth-and-oldest", fn: func(t *testing.T, s store.Store) {
		if n, oldest, err := s.Stats(ctx(), q); err != nil || n != 0 || !oldest.IsZero() {
			t.Fatalf("Stats on empty = %d, %v, %v; want 0, zero", n, oldest, err)
		}
		base := enqueueN(t, s, 3)
		steps := []struct {
			name       string
			do         func()
			wantDepth  int
			wantOldest time.Time
		}{
			{"three-pending", func() {}, 3, base},
			{"one-running-still-counts", func() { mustClaim(t, s, q, 1, time.Minute) }, 3, base},
			{"oldest-completed", func() {
				if err := s.Complete(ctx(), q, "j0", store.JobSucceeded, nil, ""); err != nil {
					t.Fatalf("Complete: %v", err)
				}
			}, 2, base.Add(time.Millisecond)},
		}
		for _, st := range steps {
			st.do()
			n, oldest, err := s.Stats(ctx(), q)
			if err != nil || n != st.wantDepth || !oldest.Equal(st.wantOldest) {
				t.Errorf("%s: Stats = %d, %v, %v; want %d, %v", st.name, n, oldest, err, st.wantDepth, st.wantOldest)
			}
		}
	}},
	{name: "queue/queues-are-isolated", fn: func(t *testing.T, s store.Store) {
		mustEnqueue(t, s, "a", store.Job{ID: "same", Payload: []byte("in a")})
		mustEnqueue(t, s, "b", store.Job{ID: "same", Payload: []byte("in b")})
		wantClaimedIDs(t, mustClaim(t, s, "a", 5, time.Minute), "same")
		if j := mustGetJob(t, s, "b", "same"); j.State != store.JobPending || string(j.Payload) != "in b" {
			t.Errorf("job in b: state %s payload %q; want pending, %q", j.State, j.Payload, "in b")
		}
		if n, _, _ := s.Stats(ctx(), "b"); n != 1 {
			t.Errorf("Stats(b) depth = %d, want 1", n)
		}
	}},
}
