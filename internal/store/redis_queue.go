package store

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Queue layout in Redis, all keys of one queue sharing the hash tag {queue}:
//
//	P q:{queue}:s        stream: one entry {id} per claimable delivery, read
//	                     through consumer group "portcullis"; its pending
//	                     entries list (PEL) holds the running jobs
//	P q:{queue}:d        sorted set: pending jobs whose NotBefore is ahead,
//	                     score = NotBefore in µs; Claim moves due ones to s
//	P q:{queue}:l        sorted set: every pending or running job, score =
//	                     Created in µs (Stats)
//	P q:{queue}:j:<id>   hash: the job (times as unix-ns strings), its
//	                     stream entry id (sid) and lease deadline
//
// A lease is the entry's idle time in the PEL: Claim re-takes, with
// XAUTOCLAIM, entries idle for at least its own lease. So every worker on one
// queue should claim with the same lease (one worker pool has one setting);
// a worker using a shorter lease would re-take jobs early, which at-least-once
// delivery tolerates.
//
// Times: Created, Updated and lease deadlines come from the Redis server
// clock (TIME), and NotBefore is compared against it, so replicas whose
// clocks disagree still agree on what is due; a caller-supplied NotBefore is
// off by the caller's own clock skew only.

func (r *Redis) queueKeys(queue string) (stream, delayed, live, jobPrefix string) {
	base := r.opts.Prefix + "q:{" + queue + "}:"
	return base + "s", base + "d", base + "l", base + "j:"
}

// luaNow is shared by the scripts: the server clock in µs (a Lua number,
// exact below 2^53) and in ns (a string, never through a float).
const luaNow = `
local t = redis.call('TIME')
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
local now_ns = t[1] .. string.format('%06d', tonumber(t[2])) .. '000'
`

// KEYS: stream delayed live job. ARGV: id owner payload attempts nb_ns nb_us
// created_ns created_us result last_error.
var enqueueScript = redis.NewScript(luaNow + `
if redis.call('EXISTS', KEYS[4]) == 1 then return redis.error_reply('PCS_EXISTS') end
local created, created_us = ARGV[7], tonumber(ARGV[8])
if created == '' then created, created_us = now_ns, now_us end
redis.call('HSET', KEYS[4], 'id', ARGV[1], 'owner', ARGV[2], 'payload', ARGV[3], 'state', 'pending',
  'attempts', ARGV[4], 'not_before', ARGV[5], 'created', created, 'updated', now_ns,
  'result', ARGV[9], 'last_error', ARGV[10])
redis.call('ZADD', KEYS[3], created_us, ARGV[1])
if tonumber(ARGV[6]) > now_us then
  redis.call('ZADD', KEYS[2], ARGV[6], ARGV[1])
else
  redis.call('HSET', KEYS[4], 'sid', redis.call('XADD', KEYS[1], '*', 'id', ARGV[1]))
end
return 1
`)

// KEYS: stream delayed. ARGV: group consumer n lease_ms job_prefix.
var claimScript = redis.NewScript(luaNow + `
local n, lease_ms, jp = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local lease_until = string.format('%.0f', now_us + lease_ms * 1000) .. '000'
redis.pcall('XGROUP', 'CREATE', KEYS[1], ARGV[1], '0', 'MKSTREAM')
for _, id in ipairs(redis.call('ZRANGE', KEYS[2], '-inf', now_us, 'BYSCORE', 'LIMIT', 0, n)) do
  redis.call('HSET', jp .. id, 'sid', redis.call('XADD', KEYS[1], '*', 'id', id))
  redis.call('ZREM', KEYS[2], id)
end
local out = {}
local function take(entry)
  if not entry or not entry[2] then return end
  local sid, jk = entry[1], jp .. entry[2][2]
  local st = redis.call('HGET', jk, 'state')
  if st ~= 'pending' and st ~= 'running' then
    redis.call('XACK', KEYS[1], ARGV[1], sid)
    redis.call('XDEL', KEYS[1], sid)
    return
  end
  redis.call('HSET', jk, 'state', 'running', 'sid', sid, 'updated', now_ns, 'lease_until', lease_until)
  redis.call('HINCRBY', jk, 'attempts', 1)
  out[#out + 1] = redis.call('HGETALL', jk)
end
local cursor = '0-0'
repeat
  local r = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], lease_ms, cursor, 'COUNT', n - #out)
  cursor = r[1]
  for _, e in ipairs(r[2]) do take(e) end
until cursor == '0-0' or #out >= n
if #out < n then
  local r = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', n - #out, 'STREAMS', KEYS[1], '>')
  if r then for _, e in ipairs(r[1][2]) do take(e) end end
end
return out
`)

// luaClaimed loads a running job's stream entry id or raises our errors.
const luaClaimed = `
local st = redis.call('HGET', KEYS[3], 'state')
if not st then return redis.error_reply('PCS_NOTFOUND') end
if st ~= 'running' then return redis.error_reply('PCS_NOTCLAIMED job is ' .. st) end
local sid = redis.call('HGET', KEYS[3], 'sid')
if sid then
  redis.call('XACK', KEYS[1], ARGV[1], sid)
  redis.call('XDEL', KEYS[1], sid)
end
redis.call('HDEL', KEYS[3], 'sid', 'lease_until')
`

// KEYS: stream live job. ARGV: group id state result last_error retention_ms.
var completeScript = redis.NewScript(luaNow + luaClaimed + `
redis.call('HSET', KEYS[3], 'state', ARGV[3], 'result', ARGV[4], 'last_error', ARGV[5], 'updated', now_ns)
redis.call('PEXPIRE', KEYS[3], ARGV[6])
redis.call('ZREM', KEYS[2], ARGV[2])
return 1
`)

// KEYS: stream delayed job. ARGV: group id nb_ns nb_us last_error.
var retryScript = redis.NewScript(luaNow + luaClaimed + `
redis.call('HSET', KEYS[3], 'state', 'pending', 'not_before', ARGV[3], 'last_error', ARGV[5], 'updated', now_ns)
if tonumber(ARGV[4]) > now_us then
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[2])
else
  redis.call('HSET', KEYS[3], 'sid', redis.call('XADD', KEYS[1], '*', 'id', ARGV[2]))
end
return 1
`)

// KEYS: live. ARGV: job_prefix.
var statsScript = redis.NewScript(`
local n = redis.call('ZCARD', KEYS[1])
if n == 0 then return {0, ''} end
local first = redis.call('ZRANGE', KEYS[1], 0, 0)
return {n, redis.call('HGET', ARGV[1] .. first[1], 'created') or ''}
`)

// nsString and usString encode times for the scripts: "" and 0 for the zero
// time, which both mean "now" (not delayed; created now).
func nsString(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return strconv.FormatInt(t.UnixNano(), 10)
}

func usNumber(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return (t.UnixNano() + 999) / 1000 // round up: never due early
}

func parseNS(s string) time.Time {
	n, err := strconv.ParseInt(s, 10, 64)
	if s == "" || err != nil {
		return time.Time{}
	}
	return time.Unix(0, n)
}

func (r *Redis) Enqueue(ctx context.Context, queue string, j Job) error {
	if err := checkEnqueue(queue, j); err != nil {
		return err
	}
	stream, delayed, live, jp := r.queueKeys(queue)
	ctx, cancel := r.bound(ctx)
	defer cancel()
	err := enqueueScript.Run(ctx, r.client, []string{stream, delayed, live, jp + j.ID},
		j.ID, j.Owner, j.Payload, j.Attempts, nsString(j.NotBefore), usNumber(j.NotBefore),
		nsString(j.Created), usNumber(j.Created), j.Result, j.LastError).Err()
	return r.wrap(fmt.Sprintf("enqueue %s to %s", j.ID, queue), err)
}

func (r *Redis) Claim(ctx context.Context, queue string, n int, lease time.Duration) ([]Job, error) {
	if err := checkClaim(queue, lease); err != nil {
		return nil, err
	}
	if n <= 0 {
		return nil, nil
	}
	stream, delayed, _, jp := r.queueKeys(queue)
	ctx, cancel := r.bound(ctx)
	defer cancel()
	res, err := claimScript.Run(ctx, r.client, []string{stream, delayed},
		consumerGroup, r.opts.Consumer, n, pxTTL(lease).Milliseconds(), jp).Slice()
	if err != nil {
		return nil, r.wrap("claim from "+queue, err)
	}
	out := make([]Job, 0, len(res))
	for _, item := range res {
		flat, ok := item.([]any)
		if !ok {
			return nil, fmt.Errorf("store: redis claim from %s: unexpected reply %T: %w", queue, item, ErrUnavailable)
		}
		out = append(out, jobFromFields(pairs(flat)))
	}
	return out, nil
}

func pairs(flat []any) map[string]string {
	m := make(map[string]string, len(flat)/2)
	for i := 0; i+1 < len(flat); i += 2 {
		k, _ := flat[i].(string)
		v, _ := flat[i+1].(string)
		m[k] = v
	}
	return m
}

func jobFromFields(f map[string]string) Job {
	attempts, _ := strconv.Atoi(f["attempts"])
	j := Job{
		ID:        f["id"],
		Owner:     f["owner"],
		State:     JobState(f["state"]),
		Attempts:  attempts,
		NotBefore: parseNS(f["not_before"]),
		Created:   parseNS(f["created"]),
		Updated:   parseNS(f["updated"]),
		LastError: f["last_error"],
	}
	if p := f["payload"]; p != "" {
		j.Payload = []byte(p)
	}
	if res := f["result"]; res != "" {
		j.Result = []byte(res)
	}
	return j
}

func (r *Redis) Complete(ctx context.Context, queue, id string, state JobState, result []byte, lastErr string) error {
	if err := checkComplete(state); err != nil {
		return err
	}
	stream, _, live, jp := r.queueKeys(queue)
	ctx, cancel := r.bound(ctx)
	defer cancel()
	err := completeScript.Run(ctx, r.client, []string{stream, live, jp + id},
		consumerGroup, id, string(state), result, lastErr, r.opts.JobRetention.Milliseconds()).Err()
	return r.wrap(fmt.Sprintf("complete %s in %s", id, queue), err)
}

func (r *Redis) Retry(ctx context.Context, queue, id string, notBefore time.Time, lastErr string) error {
	stream, delayed, _, jp := r.queueKeys(queue)
	ctx, cancel := r.bound(ctx)
	defer cancel()
	err := retryScript.Run(ctx, r.client, []string{stream, delayed, jp + id},
		consumerGroup, id, nsString(notBefore), usNumber(notBefore), lastErr).Err()
	return r.wrap(fmt.Sprintf("retry %s in %s", id, queue), err)
}

// GetJob is one HGETALL.
func (r *Redis) GetJob(ctx context.Context, queue, id string) (Job, error) {
	_, _, _, jp := r.queueKeys(queue)
	ctx, cancel := r.bound(ctx)
	defer cancel()
	f, err := r.client.HGetAll(ctx, jp+id).Result()
	if err != nil {
		return Job{}, r.wrap(fmt.Sprintf("get job %s in %s", id, queue), err)
	}
	if len(f) == 0 {
		return Job{}, fmt.Errorf("store: job %s in %s: %w", id, queue, ErrNotFound)
	}
	return jobFromFields(f), nil
}

func (r *Redis) Stats(ctx context.Context, queue string) (int, time.Time, error) {
	_, _, live, jp := r.queueKeys(queue)
	ctx, cancel := r.bound(ctx)
	defer cancel()
	res, err := statsScript.Run(ctx, r.client, []string{live}, jp).Slice()
	if err != nil {
		return 0, time.Time{}, r.wrap("stats of "+queue, err)
	}
	if len(res) != 2 {
		return 0, time.Time{}, fmt.Errorf("store: redis stats of %s: unexpected reply: %w", queue, ErrUnavailable)
	}
	n, _ := res[0].(int64)
	created, _ := res[1].(string)
	return int(n), parseNS(created), nil
}
