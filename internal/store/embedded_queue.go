package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Sub-buckets of one queue's bucket.
var (
	qJobs = []byte("jobs") // id → JSON embJob
	qLive = []byte("live") // created ‖ id → "" for pending and running jobs
	qDone = []byte("done") // updated ‖ id → "" for finished jobs (retention sweep)
)

// embJob is a job as stored: the public fields plus the lease.
type embJob struct {
	Job
	LeaseUntil time.Time `json:",omitzero"`
}

func queueBucket(tx *bolt.Tx, queue string, create bool) (*bolt.Bucket, error) {
	qs := tx.Bucket(bucketQueues)
	if !create {
		return qs.Bucket([]byte(queue)), nil
	}
	q, err := qs.CreateBucketIfNotExists([]byte(queue))
	if err != nil {
		return nil, err
	}
	for _, name := range [][]byte{qJobs, qLive, qDone} {
		if _, err := q.CreateBucketIfNotExists(name); err != nil {
			return nil, err
		}
	}
	return q, nil
}

func indexKey(t time.Time, id string) []byte { return append(timeKey(t), id...) }

func loadJob(q *bolt.Bucket, queue, id string) (embJob, error) {
	var j embJob
	if q == nil {
		return j, fmt.Errorf("store: job %s in %s: %w", id, queue, ErrNotFound)
	}
	v := q.Bucket(qJobs).Get([]byte(id))
	if v == nil {
		return j, fmt.Errorf("store: job %s in %s: %w", id, queue, ErrNotFound)
	}
	if err := json.Unmarshal(v, &j); err != nil {
		return j, fmt.Errorf("decode job %s in %s: %w", id, queue, err)
	}
	return j, nil
}

func saveJob(q *bolt.Bucket, j embJob) error {
	v, err := json.Marshal(j)
	if err != nil {
		return err
	}
	return q.Bucket(qJobs).Put([]byte(j.ID), v)
}

func (e *Embedded) Enqueue(_ context.Context, queue string, j Job) error {
	if err := checkEnqueue(queue, j); err != nil {
		return err
	}
	return e.update("enqueue", func(tx *bolt.Tx) error {
		q, err := queueBucket(tx, queue, true)
		if err != nil {
			return err
		}
		if q.Bucket(qJobs).Get([]byte(j.ID)) != nil {
			return fmt.Errorf("store: job %s in %s: %w", j.ID, queue, ErrJobExists)
		}
		now := e.opts.Clock.Now()
		j.State = JobPending
		if j.Created.IsZero() {
			j.Created = now
		}
		j.Updated = now
		if err := saveJob(q, embJob{Job: j}); err != nil {
			return err
		}
		return q.Bucket(qLive).Put(indexKey(j.Created, j.ID), nil)
	})
}

// Claim walks the live index in Created order, so its cost grows with the
// number of pending and running jobs in the queue, not with finished ones.
func (e *Embedded) Claim(_ context.Context, queue string, n int, lease time.Duration) ([]Job, error) {
	if err := checkClaim(queue, lease); err != nil {
		return nil, err
	}
	if n <= 0 {
		return nil, nil
	}
	var out []Job
	err := e.update("claim", func(tx *bolt.Tx) error {
		out = out[:0]
		q, err := queueBucket(tx, queue, false)
		if err != nil || q == nil {
			return err
		}
		now := e.opts.Clock.Now()
		c := q.Bucket(qLive).Cursor()
		for k, _ := c.First(); k != nil && len(out) < n; k, _ = c.Next() {
			j, err := loadJob(q, queue, string(k[8:]))
			if err != nil {
				return err
			}
			switch {
			case j.State == JobPending && !now.Before(j.NotBefore):
			case j.State == JobRunning && !now.Before(j.LeaseUntil):
			default:
				continue
			}
			j.State, j.LeaseUntil, j.Updated = JobRunning, now.Add(lease), now
			j.Attempts++
			if err := saveJob(q, j); err != nil {
				return err
			}
			out = append(out, j.Job)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// finish moves a running job through fn and, when it ends up finished,
// from the live index to the done index.
func (e *Embedded) finish(op, queue, id string, fn func(*embJob, time.Time)) error {
	return e.update(op, func(tx *bolt.Tx) error {
		q, err := queueBucket(tx, queue, false)
		if err != nil {
			return err
		}
		j, err := loadJob(q, queue, id)
		if err != nil {
			return err
		}
		if j.State != JobRunning {
			return fmt.Errorf("store: job %s in %s is %s: %w", id, queue, j.State, ErrNotClaimed)
		}
		now := e.opts.Clock.Now()
		fn(&j, now)
		j.Updated, j.LeaseUntil = now, time.Time{}
		if err := saveJob(q, j); err != nil {
			return err
		}
		if j.State == JobPending {
			return nil
		}
		if err := q.Bucket(qLive).Delete(indexKey(j.Created, id)); err != nil {
			return err
		}
		return q.Bucket(qDone).Put(indexKey(now, id), nil)
	})
}

func (e *Embedded) Complete(_ context.Context, queue, id string, state JobState, result []byte, lastErr string) error {
	if err := checkComplete(state); err != nil {
		return err
	}
	return e.finish("complete", queue, id, func(j *embJob, _ time.Time) {
		j.State, j.Result, j.LastError = state, slices.Clone(result), lastErr
	})
}

func (e *Embedded) Retry(_ context.Context, queue, id string, notBefore time.Time, lastErr string) error {
	return e.finish("retry", queue, id, func(j *embJob, _ time.Time) {
		j.State, j.NotBefore, j.LastError = JobPending, notBefore, lastErr
	})
}

func (e *Embedded) GetJob(_ context.Context, queue, id string) (Job, error) {
	var out Job
	err := e.view("get job", func(tx *bolt.Tx) error {
		q, err := queueBucket(tx, queue, false)
		if err != nil {
			return err
		}
		j, err := loadJob(q, queue, id)
		out = j.Job
		return err
	})
	if err != nil {
		return Job{}, err
	}
	return out, nil
}

func (e *Embedded) Stats(_ context.Context, queue string) (int, time.Time, error) {
	var n int
	var oldest time.Time
	err := e.view("stats", func(tx *bolt.Tx) error {
		q, err := queueBucket(tx, queue, false)
		if err != nil || q == nil {
			return err
		}
		c := q.Bucket(qLive).Cursor()
		k, _ := c.First()
		if k == nil {
			return nil
		}
		j, err := loadJob(q, queue, string(k[8:]))
		if err != nil {
			return err
		}
		oldest = j.Created
		for ; k != nil; k, _ = c.Next() {
			n++
		}
		return nil
	})
	return n, oldest, err
}

// releaseLeases returns every running job of every queue to pending, due
// now, and says how many it released. Only OpenEmbedded calls it, while the
// file lock shows that no other process can be delivering them.
func (e *Embedded) releaseLeases() (int, error) {
	n := 0
	err := e.update("release leases", func(tx *bolt.Tx) error {
		now := e.opts.Clock.Now()
		qs := tx.Bucket(bucketQueues)
		var names []string
		if err := qs.ForEachBucket(func(name []byte) error { names = append(names, string(name)); return nil }); err != nil {
			return err
		}
		for _, name := range names {
			q := qs.Bucket([]byte(name))
			live := q.Bucket(qLive)
			if live == nil {
				continue
			}
			// Only the jobs bucket is written below, never the index walked.
			c := live.Cursor()
			for k, _ := c.First(); k != nil; k, _ = c.Next() {
				j, err := loadJob(q, name, string(k[8:]))
				if err != nil {
					return err
				}
				if j.State != JobRunning {
					continue
				}
				j.State, j.LeaseUntil, j.NotBefore, j.Updated = JobPending, time.Time{}, now, now
				j.LastError = "interrupted: the process delivering it stopped"
				if err := saveJob(q, j); err != nil {
					return err
				}
				n++
			}
		}
		return nil
	})
	return n, err
}
