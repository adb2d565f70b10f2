package store

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// gcraScript is GCRA in one atomic script. It reads the clock with TIME, so
// every replica judges against the same clock: a replica whose own clock runs
// ahead or behind neither gains nor loses budget, and the TAT it writes is on
// the server's timeline. The key expires once its TAT is in the past (an
// absent key is a full budget). TAT is stored in µs with a fractional part.
//
// KEYS: limiter key. ARGV: interval_us tolerance_us. Returns {ok, retry_us}.
var gcraScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval, tol = tonumber(ARGV[1]), tonumber(ARGV[2])
local v = redis.call('GET', KEYS[1])
local tat = v and tonumber(v) or now
if tat < now then tat = now end
local nxt = tat + interval
local allow_at = nxt - tol
if allow_at > now then return {0, math.ceil(allow_at - now)} end
redis.call('SET', KEYS[1], string.format('%.3f', nxt), 'PX', math.ceil((nxt - now) / 1000) + 1)
return {1, 0}
`)

// Allow implements RateLimiter with one script call (one round trip). now is
// ignored: the server's clock decides, see gcraScript.
func (r *Redis) Allow(ctx context.Context, key string, ratePerSec float64, burst int, _ time.Time) (bool, time.Duration, error) {
	interval, tolerance, err := limitParams(ratePerSec, burst)
	if err != nil {
		return false, 0, err
	}
	ctx, cancel := r.bound(ctx)
	defer cancel()
	res, err := gcraScript.Run(ctx, r.client, []string{r.opts.Prefix + "rl:" + key},
		float64(interval)/1e3, float64(tolerance)/1e3).Int64Slice()
	if err != nil {
		return false, 0, r.wrap("rate limit", err)
	}
	if len(res) != 2 {
		return false, 0, fmt.Errorf("store: redis rate limit: unexpected reply: %w", ErrUnavailable)
	}
	return res[0] == 1, time.Duration(res[1]) * time.Microsecond, nil
}
