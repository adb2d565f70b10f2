package store

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"
)

// Memory is a Store kept in process memory: for tests and the demo. It is
// not durable; use the embedded store under data_dir for that.
type Memory struct {
	now func() time.Time

	mu    sync.Mutex
	kv    map[string]memEntry
	jobs  map[string]map[string]*memJob
	usage []UsageRecord
}

type memEntry struct {
	val     []byte
	expires time.Time
}

type memJob struct {
	Job
	leaseUntil time.Time
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty Memory store; now may be nil (time.Now).
func NewMemory(now func() time.Time) *Memory {
	if now == nil {
		now = time.Now
	}
	return &Memory{now: now, kv: map[string]memEntry{}, jobs: map[string]map[string]*memJob{}}
}

func (m *Memory) live(key string, now time.Time) (memEntry, bool) {
	e, ok := m.kv[key]
	if ok && !e.expires.IsZero() && !now.Before(e.expires) {
		delete(m.kv, key)
		return memEntry{}, false
	}
	return e, ok
}

func expiry(now time.Time, ttl time.Duration) time.Time {
	if ttl <= 0 {
		return time.Time{}
	}
	return now.Add(ttl)
}

func (m *Memory) SetNX(_ context.Context, key string, val []byte, ttl time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if _, ok := m.live(key, now); ok {
		return false, nil
	}
	m.kv[key] = memEntry{append([]byte(nil), val...), expiry(now, ttl)}
	return true, nil
}

func (m *Memory) Set(_ context.Context, key string, val []byte, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.kv[key] = memEntry{append([]byte(nil), val...), expiry(m.now(), ttl)}
	return nil
}

func (m *Memory) Get(_ context.Context, key string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.live(key, m.now())
	if !ok {
		return nil, ErrNotFound
	}
	return append([]byte(nil), e.val...), nil
}

func (m *Memory) Delete(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.kv, key)
	return nil
}

func (m *Memory) Enqueue(_ context.Context, queue string, j Job) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	q := m.jobs[queue]
	if q == nil {
		q = map[string]*memJob{}
		m.jobs[queue] = q
	}
	if _, ok := q[j.ID]; ok {
		return fmt.Errorf("store: job %s already exists", j.ID)
	}
	now := m.now()
	j.State = JobPending
	if j.Created.IsZero() {
		j.Created = now
	}
	j.Updated = now
	j.Payload = append([]byte(nil), j.Payload...)
	q[j.ID] = &memJob{Job: j}
	return nil
}

func (m *Memory) Claim(_ context.Context, queue string, n int, lease time.Duration) ([]Job, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
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
	sort.Slice(due, func(a, b int) bool { return due[a].Created.Before(due[b].Created) })
	if len(due) > n {
		due = due[:n]
	}
	out := make([]Job, 0, len(due))
	for _, j := range due {
		j.State, j.leaseUntil, j.Updated = JobRunning, now.Add(lease), now
		j.Attempts++
		out = append(out, j.Job)
	}
	return out, nil
}

func (m *Memory) job(queue, id string) (*memJob, error) {
	j, ok := m.jobs[queue][id]
	if !ok {
		return nil, ErrNotFound
	}
	return j, nil
}

func (m *Memory) Complete(_ context.Context, queue, id string, state JobState, result []byte, lastErr string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	j, err := m.job(queue, id)
	if err != nil {
		return err
	}
	j.State, j.Result, j.LastError, j.Updated = state, append([]byte(nil), result...), lastErr, m.now()
	return nil
}

func (m *Memory) Retry(_ context.Context, queue, id string, notBefore time.Time, lastErr string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	j, err := m.job(queue, id)
	if err != nil {
		return err
	}
	j.State, j.NotBefore, j.LastError, j.Updated = JobPending, notBefore, lastErr, m.now()
	return nil
}

func (m *Memory) GetJob(_ context.Context, queue, id string) (Job, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	j, err := m.job(queue, id)
	if err != nil {
		return Job{}, err
	}
	return j.Job, nil
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
	m.usage = append(m.usage, recs...)
	return nil
}

func (m *Memory) ScanUsage(_ context.Context, from, to time.Time, fn func(UsageRecord) error) error {
	m.mu.Lock()
	recs := append([]UsageRecord(nil), m.usage...)
	m.mu.Unlock()
	sort.SliceStable(recs, func(i, j int) bool { return recs[i].Time.Before(recs[j].Time) })
	for _, r := range recs {
		if r.Time.Before(from) || !r.Time.Before(to) {
			continue
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

func (m *Memory) Ping(context.Context) error { return nil }
func (m *Memory) Close() error               { return nil }
