package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/portcullis-dev/portcullis/internal/store"
)

// Leases says what a backend does, on reopen, with the jobs the previous
// handle had claimed.
type Leases int

const (
	// LeasesKept: a claimed job stays claimed until its lease runs out. Redis
	// keeps leases, because another replica may still be delivering the job.
	LeasesKept Leases = iota
	// LeasesReleased: a claimed job is claimable again at once. The embedded
	// store releases them when it opens: one process holds the file, so the
	// one that claimed them is gone.
	LeasesReleased
)

type durableCase struct {
	name string
	// leases, when set, runs the case only for backends with that behaviour.
	leases *Leases
	// before writes to the first handle, after checks the second; both get
	// the same recent time for records that carry one.
	before, after func(t *testing.T, s store.Store, at time.Time)
}

// RunDurable checks that what a backend acknowledged is still there through
// a second handle on the same state (see Reopener): queued jobs, a dead
// worker's lease (kept or released on reopen, as leases says), finished
// jobs, KV entries and usage records.
func RunDurable(t *testing.T, open Opener, reopen Reopener, leases Leases) {
	t.Helper()
	for _, tc := range durableCases {
		if tc.leases != nil && *tc.leases != leases {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, at := open(t), usageBase()
			tc.before(t, s, at)
			tc.after(t, reopen(t, s), at)
		})
	}
}

var durableCases = []durableCase{
	{
		name: "acknowledged-enqueue-survives",
		before: func(t *testing.T, s store.Store, at time.Time) {
			enqueueN(t, s, 20)
		},
		after: func(t *testing.T, s store.Store, at time.Time) {
			var want []string
			for i := range 20 {
				id := fmt.Sprintf("j%d", i)
				want = append(want, id)
				if j := mustGetJob(t, s, q, id); string(j.Payload) != fmt.Sprintf("payload-%d", i) || j.Owner != "billing" {
					t.Errorf("job %s after reopen: payload %q owner %q", id, j.Payload, j.Owner)
				}
			}
			wantClaimedIDs(t, mustClaim(t, s, q, 50, time.Minute), want...)
		},
	},
	{
		name:   "live-lease-survives",
		leases: ptr(LeasesKept),
		before: func(t *testing.T, s store.Store, at time.Time) {
			enqueueN(t, s, 1)
			mustClaim(t, s, q, 1, time.Minute)
		},
		after: func(t *testing.T, s store.Store, at time.Time) {
			if j := mustGetJob(t, s, q, "j0"); j.State != store.JobRunning || j.Attempts != 1 {
				t.Errorf("after reopen: state %s attempts %d, want running, 1", j.State, j.Attempts)
			}
			wantClaimedIDs(t, mustClaim(t, s, q, 1, time.Minute))
		},
	},
	{
		name:   "previous-process-leases-released",
		leases: ptr(LeasesReleased),
		before: func(t *testing.T, s store.Store, at time.Time) {
			enqueueN(t, s, 3)
			mustClaim(t, s, q, 2, time.Hour)
		},
		after: func(t *testing.T, s store.Store, at time.Time) {
			for _, id := range []string{"j0", "j1"} {
				if j := mustGetJob(t, s, q, id); j.State != store.JobPending || j.Attempts != 1 || j.LastError == "" {
					t.Errorf("%s after reopen: state %s attempts %d last error %q; want pending, 1, a reason", id, j.State, j.Attempts, j.LastError)
				}
			}
			// Claimable at once, not in an hour, and the third job with them.
			got := mustClaim(t, s, q, 10, time.Minute)
			wantClaimedIDs(t, got, "j0", "j1", "j2")
			for _, j := range got {
				if want := map[string]int{"j0": 2, "j1": 2, "j2": 1}[j.ID]; j.Attempts != want {
					t.Errorf("%s re-claimed with attempts %d, want %d", j.ID, j.Attempts, want)
				}
			}
		},
	},
	{
		name: "dead-workers-job-is-reclaimed",
		before: func(t *testing.T, s store.Store, at time.Time) {
			enqueueN(t, s, 1)
			mustClaim(t, s, q, 1, 200*time.Millisecond)
		},
		after: func(t *testing.T, s store.Store, at time.Time) {
			var got []store.Job
			if !eventually(3*time.Second, func() bool { got = mustClaim(t, s, q, 1, 200*time.Millisecond); return len(got) > 0 }) {
				t.Fatal("job of a worker that died was not re-claimed within 3s")
			}
			if got[0].ID != "j0" || got[0].Attempts != 2 || string(got[0].Payload) != "payload-0" {
				t.Errorf("re-claimed %s attempts %d payload %q; want j0, 2, payload-0", got[0].ID, got[0].Attempts, got[0].Payload)
			}
		},
	},
	{
		name: "finished-jobs-kv-and-usage-survive",
		before: func(t *testing.T, s store.Store, at time.Time) {
			enqueueN(t, s, 2)
			mustClaim(t, s, q, 1, time.Minute)
			if err := s.Complete(ctx(), q, "j0", store.JobSucceeded, []byte("201"), ""); err != nil {
				t.Fatalf("Complete: %v", err)
			}
			mustSet(t, s, "kill:payments", []byte("off"), 0)
			mustSet(t, s, "stale:GET /v1/x", []byte("cached"), time.Hour)
			mustSetNX(t, s, "replay:msg_1", []byte("1"), time.Hour)
			mustAppend(t, s, usageRec(at, "billing"))
		},
		after: func(t *testing.T, s store.Store, at time.Time) {
			got := mustGetJob(t, s, q, "j0")
			if got.State != store.JobSucceeded || string(got.Result) != "201" {
				t.Errorf("finished job after reopen: state %s result %q", got.State, got.Result)
			}
			if n, _, err := s.Stats(ctx(), q); err != nil || n != 1 {
				t.Errorf("Stats depth after reopen = %d, %v; want 1", n, err)
			}
			for key, want := range map[string]string{"kill:payments": "off", "stale:GET /v1/x": "cached"} {
				if v := string(mustGet(t, s, key)); v != want {
					t.Errorf("Get(%q) after reopen = %q, want %q", key, v, want)
				}
			}
			if mustSetNX(t, s, "replay:msg_1", []byte("1"), time.Hour) {
				t.Error("replay id forgotten across reopen: SetNX = true")
			}
			if diff := cmp.Diff([]store.UsageRecord{usageRec(at, "billing")},
				scanAll(t, s, at, at.Add(time.Second)), usageCmp...); diff != "" {
				t.Errorf("usage after reopen (-want +got):\n%s", diff)
			}
		},
	},
}

func ptr[T any](v T) *T { return &v }
