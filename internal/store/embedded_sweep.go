package store

import (
	"bytes"
	"context"
	"runtime"
	"time"

	bolt "go.etcd.io/bbolt"
)

// sweepChunk bounds the deletions per write transaction so a large backlog
// never holds the writer lock (and delays an Enqueue) for long.
const sweepChunk = 1000

// yield gives the processor away every usageYieldEvery items of a long
// write loop (the n-th deletion or put of a transaction): a chunk of 1000
// deletions is milliseconds of CPU, which with GOMAXPROCS=1 every queued
// request would wait behind.
func yield(n int) {
	if n > 0 && n%usageYieldEvery == 0 {
		runtime.Gosched()
	}
}

func (e *Embedded) sweepLoop() {
	defer close(e.done)
	if e.opts.SweepInterval < 0 {
		return
	}
	t := time.NewTicker(e.opts.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
			if err := e.Sweep(context.Background()); err != nil {
				e.opts.Logger.Warn("store sweep failed", "path", e.path, "error", err)
			}
		}
	}
}

// Sweep deletes from disk expired KV entries, finished jobs older than
// JobRetention and usage records older than UsageRetention. It runs every
// SweepInterval on its own; reads never return expired entries either way.
func (e *Embedded) Sweep(ctx context.Context) error {
	now := e.opts.Clock.Now()
	steps := []func(*bolt.Tx, time.Time) (int, error){
		sweepKV,
		func(tx *bolt.Tx, now time.Time) (int, error) { return sweepJobs(tx, now.Add(-e.opts.JobRetention)) },
		func(tx *bolt.Tx, now time.Time) (int, error) {
			return sweepBefore(tx.Bucket(bucketUsage), timeKey(now.Add(-e.opts.UsageRetention)))
		},
	}
	for _, step := range steps {
		for {
			if err := ctx.Err(); err != nil {
				return err
			}
			var n int
			err := e.update("sweep", func(tx *bolt.Tx) error {
				var err error
				n, err = step(tx, now)
				return err
			})
			if err != nil {
				return err
			}
			if n < sweepChunk {
				break
			}
		}
	}
	return nil
}

// sweepBefore deletes up to sweepChunk keys of b that sort before limit.
func sweepBefore(b *bolt.Bucket, limit []byte) (int, error) {
	var n int
	c := b.Cursor()
	for k, _ := c.First(); k != nil && n < sweepChunk && bytes.Compare(k, limit) < 0; k, _ = c.First() {
		if err := c.Delete(); err != nil {
			return n, err
		}
		n++
		yield(n)
	}
	return n, nil
}

func sweepKV(tx *bolt.Tx, now time.Time) (int, error) {
	exp, kv := tx.Bucket(bucketKVExp), tx.Bucket(bucketKV)
	limit := timeKey(now.Add(1)) // expired means expiry <= now
	var n int
	c := exp.Cursor()
	for k, _ := c.First(); k != nil && n < sweepChunk && bytes.Compare(k, limit) < 0; k, _ = c.First() {
		if err := kv.Delete(k[8:]); err != nil {
			return n, err
		}
		if err := c.Delete(); err != nil {
			return n, err
		}
		n++
		yield(n)
	}
	return n, nil
}

func sweepJobs(tx *bolt.Tx, cutoff time.Time) (int, error) {
	limit := timeKey(cutoff)
	var n int
	qc := tx.Bucket(bucketQueues).Cursor()
	for name, _ := qc.First(); name != nil && n < sweepChunk; name, _ = qc.Next() {
		q := tx.Bucket(bucketQueues).Bucket(name)
		if q == nil {
			continue
		}
		jobs, done := q.Bucket(qJobs), q.Bucket(qDone)
		c := done.Cursor()
		for k, _ := c.First(); k != nil && n < sweepChunk && bytes.Compare(k, limit) < 0; k, _ = c.First() {
			if err := jobs.Delete(k[8:]); err != nil {
				return n, err
			}
			if err := c.Delete(); err != nil {
				return n, err
			}
			n++
			yield(n)
		}
	}
	return n, nil
}
