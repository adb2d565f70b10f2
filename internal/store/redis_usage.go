package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Usage in Redis is one sorted set, P usage: score = record time in whole µs
// (exact in a float64), member = 8-byte big-endian unix ns ‖ 8 random bytes ‖
// JSON. Members with equal scores sort by bytes, hence by ns time; the random
// bytes keep two identical records from collapsing into one member.

func (r *Redis) usageKey() string { return r.opts.Prefix + "usage" }

func usageScore(t time.Time) float64 { return float64(t.UnixMicro()) }

// AppendUsage adds the records and trims by age and count in one MULTI/EXEC
// round trip.
func (r *Redis) AppendUsage(ctx context.Context, recs []UsageRecord) error {
	if len(recs) == 0 {
		return nil
	}
	members := make([]redis.Z, 0, len(recs))
	for _, rec := range recs {
		v, err := json.Marshal(rec)
		if err != nil {
			return fmt.Errorf("store: encode usage record: %w", err)
		}
		m := binary.BigEndian.AppendUint64(timeKey(rec.Time), rand.Uint64())
		members = append(members, redis.Z{Score: usageScore(rec.Time), Member: append(m, v...)})
	}
	ctx, cancel := r.bound(ctx)
	defer cancel()
	key := r.usageKey()
	cutoff := usageScore(r.opts.Clock.Now().Add(-r.opts.UsageRetention))
	_, err := r.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZAdd(ctx, key, members...)
		p.ZRemRangeByScore(ctx, key, "-inf", "("+strconv.FormatFloat(cutoff, 'f', -1, 64))
		if r.opts.UsageMaxRecords > 0 {
			p.ZRemRangeByRank(ctx, key, 0, -r.opts.UsageMaxRecords-1)
		}
		return nil
	})
	return r.wrap("append usage", err)
}

// usageRedisPage is how many members one ZRANGE of ScanUsage fetches.
const usageRedisPage = 500

// ScanUsage pages through the sorted set by score. The cursor is the last
// score seen plus how many members with that score were already returned,
// so equal scores spanning a page boundary are neither skipped nor repeated.
func (r *Redis) ScanUsage(ctx context.Context, from, to time.Time, fn func(UsageRecord) error) error {
	lo, hi := usageScore(from), usageScore(to)
	skip := 0
	for {
		// Each page is one call, bounded on its own: a long scan (audit)
		// is not an outage, a page Redis does not answer is.
		pctx, cancel := r.bound(ctx)
		zs, err := r.client.ZRangeArgsWithScores(pctx, redis.ZRangeArgs{
			Key: r.usageKey(), ByScore: true,
			Start: strconv.FormatFloat(lo, 'f', -1, 64), Stop: strconv.FormatFloat(hi, 'f', -1, 64),
			Offset: int64(skip), Count: usageRedisPage,
		}).Result()
		cancel()
		if err != nil {
			return r.wrap("scan usage", err)
		}
		for _, z := range zs {
			m, _ := z.Member.(string)
			if len(m) < 16 {
				continue
			}
			var rec UsageRecord
			if err := json.Unmarshal([]byte(m[16:]), &rec); err != nil {
				return fmt.Errorf("store: redis scan usage: decode record: %w", err)
			}
			if rec.Time.Before(from) || !rec.Time.Before(to) {
				continue
			}
			if err := fn(rec); err != nil {
				return err
			}
		}
		if len(zs) < usageRedisPage {
			return nil
		}
		last := zs[len(zs)-1].Score
		if last == lo {
			skip += len(zs)
			continue
		}
		lo, skip = last, 0
		for _, z := range zs {
			if z.Score == last {
				skip++
			}
		}
	}
}
