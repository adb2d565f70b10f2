package store_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/redis/go-redis/v9"
	bolt "go.etcd.io/bbolt"

	"github.com/portcullis-dev/portcullis/internal/clock"
	"github.com/portcullis-dev/portcullis/internal/store"
)

var bg = context.Background()

// TestMain lets the SIGKILL test re-run this binary as the child process that
// writes to the store and is killed.
func TestMain(m *testing.M) {
	if dir := os.Getenv(childDirEnv); dir != "" {
		runEnqueueChild(dir)
		return
	}
	// go-redis logs dial failures through its process-wide logger; route it
	// to slog as cmd/portcullis should, and drop it to keep test output clean.
	redis.SetLogger(store.RedisLog{Logger: slog.New(slog.DiscardHandler)})
	os.Exit(m.Run())
}

// rawKeys counts the keys in a top-level bucket of a closed embedded file,
// to see what is on disk rather than what reads let through.
func rawKeys(t *testing.T, dir, bucket string) int {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, store.EmbeddedFile), 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatalf("open raw: %v", err)
	}
	defer db.Close()
	n := 0
	err = db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return fmt.Errorf("file fails its consistency check: %w", err)
		}
		return tx.Bucket([]byte(bucket)).ForEach(func(_, _ []byte) error { n++; return nil })
	})
	if err != nil {
		t.Fatalf("read raw: %v", err)
	}
	return n
}

func TestEmbeddedRestartKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	s := openEmbedded(t, dir)
	base := time.Now().Add(-time.Minute)
	for i, id := range []string{"pending", "running", "succeeded", "failed", "delayed"} {
		j := store.Job{ID: id, Owner: "billing", Payload: []byte("p-" + id), Created: base.Add(time.Duration(i) * time.Second)}
		if id == "delayed" {
			j.NotBefore = time.Now().Add(time.Hour)
		}
		if err := s.Enqueue(bg, "q", j); err != nil {
			t.Fatal(err)
		}
	}
	claimed, err := s.Claim(bg, "q", 4, time.Hour) // all but the delayed one
	if err != nil || len(claimed) != 4 {
		t.Fatalf("Claim = %d jobs, %v", len(claimed), err)
	}
	if err := s.Retry(bg, "q", "pending", time.Time{}, "again"); err != nil {
		t.Fatal(err)
	}
	if err := s.Complete(bg, "q", "succeeded", store.JobSucceeded, []byte("201"), ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Complete(bg, "q", "failed", store.JobFailed, nil, "gave up"); err != nil {
		t.Fatal(err)
	}
	if err := s.Set(bg, "kill", []byte("on"), 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Set(bg, "stale", []byte("body"), time.Hour); err != nil {
		t.Fatal(err)
	}
	recs := []store.UsageRecord{{Time: base, Caller: "billing", Status: 200, Scopes: []string{"a"}}, {Time: base.Add(time.Second), Caller: "support", Status: 503, VendorFailed: true}}
	if err := s.AppendUsage(bg, recs); err != nil {
		t.Fatal(err)
	}
	type snapshot struct {
		Jobs  []store.Job
		KV    map[string]string
		Usage []store.UsageRecord
		Depth int
	}
	snap := func(s store.Store) snapshot {
		var out snapshot
		for _, id := range []string{"pending", "running", "succeeded", "failed", "delayed"} {
			j, err := s.GetJob(bg, "q", id)
			if err != nil {
				t.Fatalf("GetJob(%s): %v", id, err)
			}
			out.Jobs = append(out.Jobs, j)
		}
		out.KV = map[string]string{}
		for _, k := range []string{"kill", "stale"} {
			v, err := s.Get(bg, k)
			if err != nil {
				t.Fatalf("Get(%s): %v", k, err)
			}
			out.KV[k] = string(v)
		}
		_ = s.ScanUsage(bg, base.Add(-time.Hour), base.Add(time.Hour), func(r store.UsageRecord) error { out.Usage = append(out.Usage, r); return nil })
		out.Depth, _, _ = s.Stats(bg, "q")
		return out
	}
	before := snap(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	closed := time.Now()
	after := snap(openEmbedded(t, dir))
	// Only the running job changed: one process uses the file, so reopening
	// released the lease of the process that closed it. It is due at once.
	r := after.Jobs[1]
	if r.State != store.JobPending || r.Attempts != 1 || r.LastError == "" || r.NotBefore.Before(closed) || r.Updated.Before(closed) {
		t.Errorf("running job after reopen: %s, attempts %d, not before %v, updated %v, last error %q; want pending and due since the reopen, 1 attempt, a reason",
			r.State, r.Attempts, r.NotBefore, r.Updated, r.LastError)
	}
	before.Jobs[1].State, before.Jobs[1].NotBefore, before.Jobs[1].Updated, before.Jobs[1].LastError = r.State, r.NotBefore, r.Updated, r.LastError
	if diff := cmp.Diff(before, after, cmpopts.EquateApproxTime(0)); diff != "" {
		t.Errorf("state after restart (-before +after):\n%s", diff)
	}
	if before.Depth != 3 || len(before.Usage) != 2 {
		t.Errorf("snapshot has depth %d and %d usage records, want 3 and 2", before.Depth, len(before.Usage))
	}
}

func TestEmbeddedLockedFileNamesPath(t *testing.T) {
	dir := t.TempDir()
	openEmbedded(t, dir)
	start := time.Now()
	_, err := store.OpenEmbedded(dir, store.EmbeddedOptions{LockTimeout: 200 * time.Millisecond})
	if !errors.Is(err, store.ErrLocked) {
		t.Fatalf("second OpenEmbedded error = %v, want ErrLocked", err)
	}
	if path := filepath.Join(dir, store.EmbeddedFile); !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name %s", err, path)
	}
	if waited := time.Since(start); waited < 150*time.Millisecond || waited > 5*time.Second {
		t.Errorf("gave up after %v, want about the 200ms lock timeout", waited)
	}
}

func TestEmbeddedClosedIsUnavailable(t *testing.T) {
	s := openEmbedded(t, t.TempDir())
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(bg, "k"); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Get after Close error = %v, want ErrUnavailable", err)
	}
	if err := s.Enqueue(bg, "q", store.Job{ID: "a"}); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Enqueue after Close error = %v, want ErrUnavailable", err)
	}
	if err := s.Ping(bg); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Ping after Close error = %v, want ErrUnavailable", err)
	}
}

func TestEmbeddedExpiryAndRetention(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC))
	dir := t.TempDir()
	s, err := store.OpenEmbedded(dir, store.EmbeddedOptions{Clock: clk, SweepInterval: -1,
		JobRetention: 24 * time.Hour, UsageRetention: 30 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.Set(bg, "short", []byte("v"), time.Minute))
	must(s.Set(bg, "forever", []byte("v"), 0))
	must(s.Enqueue(bg, "q", store.Job{ID: "done"}))
	must(s.Enqueue(bg, "q", store.Job{ID: "waiting"}))
	if _, err := s.Claim(bg, "q", 1, time.Hour); err != nil {
		t.Fatal(err)
	}
	must(s.Complete(bg, "q", "done", store.JobSucceeded, nil, ""))
	must(s.AppendUsage(bg, []store.UsageRecord{{Time: clk.Now().Add(-31 * 24 * time.Hour), Caller: "old"}, {Time: clk.Now(), Caller: "new"}}))

	clk.Advance(time.Minute - time.Nanosecond)
	if _, err := s.Get(bg, "short"); err != nil {
		t.Errorf("Get 1ns before expiry: %v", err)
	}
	clk.Advance(time.Nanosecond)
	if _, err := s.Get(bg, "short"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get at expiry error = %v, want ErrNotFound (checked on read)", err)
	}
	clk.Advance(25 * time.Hour)
	must(s.Sweep(bg))

	if _, err := s.GetJob(bg, "q", "done"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("finished job past retention: error = %v, want ErrNotFound", err)
	}
	if j, err := s.GetJob(bg, "q", "waiting"); err != nil || j.State != store.JobPending {
		t.Errorf("pending job after sweep = %v, %v; want it kept", j.State, err)
	}
	var callers []string
	must(s.ScanUsage(bg, time.Time{}, clk.Now().Add(time.Hour), func(r store.UsageRecord) error { callers = append(callers, r.Caller); return nil }))
	if diff := cmp.Diff([]string{"new"}, callers); diff != "" {
		t.Errorf("usage after sweep (-want +got):\n%s", diff)
	}
	must(s.Close())
	if n := rawKeys(t, dir, "kv"); n != 1 {
		t.Errorf("%d kv entries on disk after sweep, want 1 (the expired one deleted)", n)
	}
	if n := rawKeys(t, dir, "kv_exp"); n != 0 {
		t.Errorf("%d expiry index entries on disk after sweep, want 0", n)
	}
}

func TestEmbeddedBackgroundSweep(t *testing.T) {
	clk := clock.NewFake(time.Now())
	dir := t.TempDir()
	s, err := store.OpenEmbedded(dir, store.EmbeddedOptions{Clock: clk, SweepInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if _, err := s.SetNX(bg, fmt.Sprintf("replay-%d", i), nil, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(2 * time.Minute)
	time.Sleep(300 * time.Millisecond) // ~30 sweep ticks
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := rawKeys(t, dir, "kv"); n != 0 {
		t.Errorf("%d expired replay ids still on disk after background sweeps", n)
	}
}

const childDirEnv = "PORTCULLIS_STORE_TEST_CHILD_DIR"

// runEnqueueChild enqueues from several goroutines, completing some jobs, and
// prints a line only after each call returned: what it printed was
// acknowledged. It runs until killed.
func runEnqueueChild(dir string) {
	s, err := store.OpenEmbedded(dir, store.EmbeddedOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(os.Stdout, format+"\n", args...)
	}
	for w := range 4 {
		go func() {
			for i := 0; ; i++ {
				id := fmt.Sprintf("w%d-%d", w, i)
				if err := s.Enqueue(bg, "q", store.Job{ID: id, Payload: []byte("payload " + id)}); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				say("enqueued %s", id)
			}
		}()
	}
	for {
		jobs, err := s.Claim(bg, "q", 5, time.Hour)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		for _, j := range jobs {
			if err := s.Complete(bg, "q", j.ID, store.JobSucceeded, []byte("ok "+j.ID), ""); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(2)
			}
			say("completed %s", j.ID)
		}
	}
}

func TestEmbeddedSIGKILLLosesNothingAcknowledged(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childDirEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	enqueued, completed := map[string]bool{}, map[string]bool{}
	r := bufio.NewReader(out)
	deadline := time.Now().Add(30 * time.Second)
	for len(enqueued) < 400 || len(completed) < 50 {
		line, err := r.ReadString('\n')
		if err != nil || time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("child stopped early or too slow (%d enqueued, %d completed): %v", len(enqueued), len(completed), err)
		}
		verb, id, _ := strings.Cut(strings.TrimSpace(line), " ")
		map[string]map[string]bool{"enqueued": enqueued, "completed": completed}[verb][id] = true
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL, mid-write
		t.Fatal(err)
	}
	for { // lines written before the kill were acknowledged too
		line, err := r.ReadString('\n')
		if err != nil {
			break // a trailing fragment without a newline was never acknowledged
		}
		verb, id, _ := strings.Cut(strings.TrimSpace(line), " ")
		map[string]map[string]bool{"enqueued": enqueued, "completed": completed}[verb][id] = true
	}
	_ = cmd.Wait()

	s := openEmbedded(t, dir)
	var lost []string
	for id := range enqueued {
		j, err := s.GetJob(bg, "q", id)
		if err != nil || string(j.Payload) != "payload "+id {
			lost = append(lost, id)
		}
	}
	for id := range completed {
		if j, err := s.GetJob(bg, "q", id); err != nil || j.State != store.JobSucceeded || string(j.Result) != "ok "+id {
			lost = append(lost, "completion of "+id)
		}
	}
	t.Logf("after SIGKILL: %d acknowledged enqueues and %d completions checked", len(enqueued), len(completed))
	if len(lost) > 0 {
		t.Errorf("lost %d acknowledged writes, e.g. %v", len(lost), lost[:min(5, len(lost))])
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rawKeys(t, dir, "queues") // runs bbolt's consistency check on the file
}
