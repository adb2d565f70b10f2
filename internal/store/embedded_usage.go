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

// AppendUsage stores the records in one fsync'd transaction, keyed by record
// time then an insertion sequence, so equal times keep their append order.
func (e *Embedded) AppendUsage(_ context.Context, recs []UsageRecord) error {
	if len(recs) == 0 {
		return nil
	}
	return e.update("append usage", func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketUsage)
		for _, r := range recs {
			seq, err := b.NextSequence()
			if err != nil {
				return err
			}
			v, err := json.Marshal(r)
			if err != nil {
				return fmt.Errorf("encode usage record: %w", err)
			}
			k := binary.BigEndian.AppendUint64(timeKey(r.Time), seq)
			if err := b.Put(k, v); err != nil {
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
