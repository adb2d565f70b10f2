package store

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/portcullis-dev/portcullis/internal/clock"
)

// Memory is a Store kept in process memory: for tests and the demo. It is
// not durable; use the embedded store under data_dir for that.
type Memory struct {
	clk clock.Clock
	lim *localLimiter

	mu      sync.Mutex
	kv      map[string]memEntry
	kvSwept int // len(kv) after the last sweep of expired entries
	jobs    map[string]map[string]*memJob
	usage   []UsageRecord
}

type memEntry struct {
	val     []byte
	expires time.Time
}

type memJob struct {
	Job
	leaseUntil time.Time
}

var (
	_ Store       = (*Memory)(nil)
	_ RateLimiter = (*Memory)(nil)
)

// NewMemory returns an empty Memory store; a nil clock means clock.System.
func NewMemory(clk clock.Clock) *Memory {
	clk = clock.Or(clk)
	return &Memory{clk: clk, lim: newLocalLimiter(clk), kv: map[string]memEntry{}, jobs: map[string]map[string]*memJob{}}
}

func (m *Memory) live(key string, now time.Time) (memEntry, bool) {
	e, ok := m.kv[key]
	if ok && e.expired(now) {
		delete(m.kv, key)
		return memEntry{}, false
	}
	return e, ok
}

func (e memEntry) expired(now time.Time) bool {
	return !e.expires.IsZero() && !now.Before(e.expires)
}

// put stores an entry, first sweeping expired entries whenever the map has
// doubled since the last sweep: replay ids are written once and never read
// again, so expiry checked only on read would keep them forever.
func (m *Memory) put(key string, val []byte, now time.Time, ttl time.Duration) {
	if len(m.kv) >= 2*max(m.kvSwept, 512) {
		for k, e := range m.kv {
			if e.expired(now) {
				delete(m.kv, k)
			}
		}
		m.kvSwept = len(m.kv)
	}
	m.kv[key] = memEntry{slices.Clone(val), expiry(now, ttl)}
}

func expiry(now time.Time, ttl time.Duration) time.Time {
	if ttl <= 0 {
		return time.Time{}
	}
	return now.Add(ttl)
}

func (m *Memory) SetNX(_ context.Context, key string, val []byte, ttl time.Duration) (bool, error) {
	if err := checkKey(key); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.clk.Now()
	if _, ok := m.live(key, now); ok {
		return false, nil
	}
	m.put(key, val, now, ttl)
	return true, nil
}

func (m *Memory) Set(_ context.Context, key string, val []byte, ttl time.Duration) error {
	if err := checkKey(key); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.put(key, val, m.clk.Now(), ttl)
	return nil
}

func (m *Memory) Get(_ context.Context, key string) ([]byte, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.live(key, m.clk.Now())
	if !ok {
		return nil, ErrNotFound
	}
	return slices.Clone(e.val), nil
}

func (m *Memory) Delete(_ context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.kv, key)
	return nil
}

// cloneJob copies the byte slices so callers never share memory with the
// store (a caller reusing its payload buffer must not change a queued job).
func cloneJob(j Job) Job {
	j.Payload = slices.Clone(j.Payload)
	j.Result = slices.Clone(j.Result)
	return j
}

func (m *Memory) Enqueue(_ context.Context, queue string, j Job) error {
	if err := checkEnqueue(queue, j); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	q := m.jobs[queue]
	if q == nil {
		q = map[string]*memJob{}
		m.jobs[queue] = q
	}
	if _, ok := q[j.ID]; ok {
		return fmt.Errorf("store: job %s in %s: %w", j.ID, queue, ErrJobExists)
	}
	now := m.clk.Now()
	j.State = JobPending
	if j.Created.IsZero() {
		j.Created = now
	}
	j.Updated = now
	q[j.ID] = &memJob{Job: cloneJob(j)}
	return nil
}

func (m *Memory) Claim(_ context.Context, queue string, n int, lease time.Duration) ([]Job, error) {
	if err := checkClaim(queue, lease); err != nil {
		return nil, err
	}
	if n <= 0 {
		return nil, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.clk.Now()
	var due []*memJob
	for _, j := range m.jobs[queue] {
		switch {
		case j.State == JobPending && !now.Before(j.NotBefore):
		case j.State == JobRunning && !now.Before(j.leaseUntil):
		default:
			continue
		}
		due = append(due, j)
	}
	sort.Slice(due, func(a, b int) bool {
		if !due[a].Created.Equal(due[b].Created) {
			return due[a].Created.Before(due[b].Created)
		}
		return due[a].ID < due[b].ID
	})
	if len(due) > n {
		due = due[:n]
	}
	out := make([]Job, 0, len(due))
	for _, j := range due {
		j.State, j.leaseUntil, j.Updated = JobRunning, now.Add(lease), now
		j.Attempts++
		out = append(out, cloneJob(j.Job))
	}
	return out, nil
}

func (m *Memory) job(queue, id string) (*memJob, error) {
	j, ok := m.jobs[queue][id]
	if !ok {
		return nil, fmt.Errorf("store: job %s in %s: %w", id, queue, ErrNotFound)
	}
	return j, nil
}

func (m *Memory) claimed(queue, id string) (*memJob, error) {
	j, err := m.job(queue, id)
	if err != nil {
		return nil, err
	}
	if j.State != JobRunning {
		return nil, fmt.Errorf("store: job %s in %s is %s: %w", id, queue, j.State, ErrNotClaimed)
	}
	return j, nil
}

func (m *Memory) Complete(_ context.Context, queue, id string, state JobState, result []byte, lastErr string) error {
	if err := checkComplete(state); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	j, err := m.claimed(queue, id)
	if err != nil {
		return err
	}
	j.State, j.Result, j.LastError, j.Updated = state, slices.Clone(result), lastErr, m.clk.Now()
	return nil
}

func (m *Memory) Retry(_ context.Context, queue, id string, notBefore time.Time, lastErr string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	j, err := m.claimed(queue, id)
	if err != nil {
		return err
	}
	j.State, j.NotBefore, j.LastError, j.Updated = JobPending, notBefore, lastErr, m.clk.Now()
	return nil
}

func (m *Memory) GetJob(_ context.Context, queue, id string) (Job, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	j, err := m.job(queue, id)
	if err != nil {
		return Job{}, err
	}
	return cloneJob(j.Job), nil
}

func (m *Memory) Stats(_ context.Context, queue string) (int, time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n int
	var oldest time.Time
	for _, j := range m.jobs[queue] {
		if j.State == JobPending || j.State == JobRunning {
			n++
			if oldest.IsZero() || j.Created.Before(oldest) {
				oldest = j.Created
			}
		}
	}
	return n, oldest, nil
}

func (m *Memory) AppendUsage(_ context.Context, recs []UsageRecord) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range recs {
		r.Scopes = slices.Clone(r.Scopes)
		m.usage = append(m.usage, r)
	}
	return nil
}

func (m *Memory) ScanUsage(_ context.Context, from, to time.Time, fn func(UsageRecord) error) error {
	m.mu.Lock()
	recs := make([]UsageRecord, 0, len(m.usage))
	for _, r := range m.usage {
		if !r.Time.Before(from) && r.Time.Before(to) {
			r.Scopes = slices.Clone(r.Scopes)
			recs = append(recs, r)
		}
	}
	m.mu.Unlock()
	sort.SliceStable(recs, func(i, j int) bool { return recs[i].Time.Before(recs[j].Time) })
	for _, r := range recs {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// Allow implements RateLimiter in process memory.
func (m *Memory) Allow(ctx context.Context, key string, ratePerSec float64, burst int, now time.Time) (bool, time.Duration, error) {
	return m.lim.Allow(ctx, key, ratePerSec, burst, now)
}

func (m *Memory) Ping(context.Context) error { return nil }
func (m *Memory) Close() error               { return nil }
