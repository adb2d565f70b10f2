package store

import (
	"context"
	"encoding/binary"
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

// usageFillPercent is the usage bucket's page fill when AppendUsage splits
// a page. Keys are record times, so records arrive nearly in key order and
// land on the last page; at bbolt's default of 0.5 every page was left half
// empty behind the appends (the file held ~500 bytes per record of ~250).
const usageFillPercent = 1.0

// AppendUsage stores the records in one fsync'd transaction, keyed by record
// time then an insertion sequence, so equal times keep their append order.
// It encodes the records before taking bbolt's write lock and yields the
// processor every usageYieldEvery records, so a large batch shares the CPU
// with the request path instead of holding it.
func (e *Embedded) AppendUsage(_ context.Context, recs []UsageRecord) error {
	if len(recs) == 0 {
		return nil
	}
	// One buffer for every value: bbolt keeps the slices until the
	// transaction commits, and one allocation beats one per record.
	buf := make([]byte, 0, 96*len(recs))
	ends := make([]int, len(recs))
	for i, r := range recs {
		yield(i)
		var err error
		if buf, err = appendUsage(buf, r); err != nil {
			return fmt.Errorf("encode usage record: %w", err)
		}
		ends[i] = len(buf)
	}
	keys := make([]byte, 16*len(recs))
	return e.update("append usage", func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketUsage)
		b.FillPercent = usageFillPercent
		seq := b.Sequence()
		if err := b.SetSequence(seq + uint64(len(recs))); err != nil {
			return err
		}
		start := 0
		for i, r := range recs {
			yield(i)
			k := binary.BigEndian.AppendUint64(appendTimeKey(keys[16*i:16*i], r.Time), seq+uint64(i)+1)
			if err := b.Put(k, buf[start:ends[i]:ends[i]]); err != nil {
				return err
			}
			start = ends[i]
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
				r, err := decodeUsage(v)
				if err != nil {
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
