#!/usr/bin/env bash
# bench/state/run.sh — issue 7's benchmark: the Redis state backend against
# the embedded one on this machine, with rate_limit.global on (one shared
# limiter check per call). Prints one table (also saved to
# .cache/bench-state/report.txt): peak req/s, latency at a fixed rate and
# what the gateway adds, Redis commands / round trips / CPU per request,
# memory per usage record, and what an idle replica asks of Redis.
#
# It starts its own redis-server on 127.0.0.1:19390 (no persistence), which
# it FLUSHALLs and stops on exit; it never touches the test Redis (6390).
# Knobs: BENCH_DURATION (10s), BENCH_WARMUP (2s), BENCH_CONNS (32),
# BENCH_RATE (500 req/s), BENCH_CALIBRATE (2000 calls), BENCH_IDLE (5s), BENCH_ROUNDS (3).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
dir="$root/.cache/bench-state"
port=19390
mkdir -p "$dir/bin" "$dir/run"

if ! command -v redis-server >/dev/null 2>&1; then
	echo "== installing redis-server (Debian package)" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q && apt-get install -y -q --no-install-recommends redis-server
fi
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
	echo "127.0.0.1:$port is in use; is another bench/state/run.sh running?" >&2
	exit 1
fi

echo "== building" >&2
go build -o "$dir/bin/portcullis" ./cmd/portcullis
go build -o "$dir/bin/statebench" ./bench/state

# Two cores or more: the gateway alone on core 1 (GOMAXPROCS=1); the load
# generator, the upstream and Redis on core 0. Otherwise nothing is pinned.
pin_load=() gateway_cpu="" placement="not pinned"
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null 2>&1; then
	pin_load=(taskset -c 0) gateway_cpu=1
	placement="gateway on core 1 (GOMAXPROCS=1); load generator, upstream and Redis on core 0"
fi

redis_pid=""
cleanup() { if [ -n "$redis_pid" ]; then kill "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true; fi; }
trap cleanup EXIT INT TERM
"${pin_load[@]}" redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
	--daemonize no --logfile "$dir/run/redis.log" &
redis_pid=$!
for _ in $(seq 1 50); do
	[ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && break
	sleep 0.1
done

{
	echo "bench/state on $(nproc) CPU(s), $(uname -sr), $(redis-server --version | cut -d' ' -f3), $(go version | cut -d' ' -f3)"
	echo "placement: $placement; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
	"${pin_load[@]}" "$dir/bin/statebench" -portcullis "$dir/bin/portcullis" -redis "127.0.0.1:$port" \
		-dir "$dir/run" -gateway-cpu "$gateway_cpu" \
		-duration "${BENCH_DURATION:-10s}" -warmup "${BENCH_WARMUP:-2s}" -conns "${BENCH_CONNS:-32}" \
		-rate "${BENCH_RATE:-500}" -calibrate "${BENCH_CALIBRATE:-2000}" -idle "${BENCH_IDLE:-5s}" -rounds "${BENCH_ROUNDS:-3}"
	echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$dir/report.txt"
