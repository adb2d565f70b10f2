package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// usagePage is how many records ScanUsage reads per read transaction. fn runs
// outside any transaction, so it may itself use the store (bbolt can deadlock
// when one goroutine holds a read transaction while opening a write one).
const usagePage = 512

// usageYieldEvery is how many records AppendUsage encodes or puts, and the
// sweep deletes, between runtime.Gosched calls (see yield). A batch of 500
// records is about 1.5 ms of CPU in one goroutine; with GOMAXPROCS=1 every
// request queued behind it would wait that long (the scheduler preempts
// only after 10 ms). 32 records are well under 0.2 ms.
const usageYieldEvery = 32

// AppendUsage stores the records in one fsync'd transaction, keyed by record
// time then an insertion sequence, so equal times keep their append order.
// It encodes the records before taking bbolt's write lock and yields the
// processor every usageYieldEvery records, so a large batch shares the CPU
// with the request path instead of holding it.
func (e *Embedded) AppendUsage(_ context.Context, recs []UsageRecord) error {
	if len(recs) == 0 {
		return nil
	}
	vals := make([][]byte, len(recs))
	for i, r := range recs {
		yield(i)
		v, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("encode usage record: %w", err)
		}
		vals[i] = v
	}
	return e.update("append usage", func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketUsage)
		for i, r := range recs {
			yield(i)
			seq, err := b.NextSequence()
			if err != nil {
				return err
			}
			k := binary.BigEndian.AppendUint64(timeKey(r.Time), seq)
			if err := b.Put(k, vals[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

// ScanUsage calls fn for every record in [from, to) in time order.
func (e *Embedded) ScanUsage(ctx context.Context, from, to time.Time, fn func(UsageRecord) error) error {
	seek := timeKey(from)
	for {
		var page []UsageRecord
		var next []byte
		err := e.view("scan usage", func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketUsage).Cursor()
			for k, v := c.Seek(seek); k != nil; k, v = c.Next() {
				if len(page) == usagePage {
					next = append([]byte(nil), k...)
					return nil
				}
				var r UsageRecord
				if err := json.Unmarshal(v, &r); err != nil {
					return fmt.Errorf("decode usage record: %w", err)
				}
				if !r.Time.Before(to) {
					return nil
				}
				if !r.Time.Before(from) {
					page = append(page, r)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, r := range page {
			if err := fn(r); err != nil {
				return err
			}
		}
		if next == nil {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		seek = next
	}
}
