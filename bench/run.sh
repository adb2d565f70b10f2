#!/usr/bin/env bash
# bench/run.sh — the load benchmark of issue 2. One run prints:
#   1. peak throughput and p50/p99 (closed loop) for: direct to a fast local
#      upstream, nginx injecting the header, a bare Go httputil.ReverseProxy
#      injecting the header, and Portcullis (bearer injection + route policy +
#      one log line per request), each server on one core;
#   2. Portcullis and direct at half of Portcullis's peak (open loop), and the
#      p99 the gateway adds;
#   3. 10,000 concurrent calls held 1 s by the vendor: errors and peak RSS;
#   4. the targets of issue 2 and of issue 16 (request path), each with
#      this run's figure and met or NOT met; issue 16's allocation row
#      comes from `go test -bench RequestPath ./bench/`.
# Everything listens on 127.0.0.1 only. Everything it starts is stopped on exit.
# Knobs (environment): BENCH_ROUNDS (3), BENCH_DURATION (10s), BENCH_WARMUP (2s),
# BENCH_CONNS (50), BENCH_CONCURRENCY (10000), BENCH_CONC_DURATION (6s),
# BENCH_CONC_RAMP (2s: the calls start evenly over this long, then all stay in flight).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
dir="$root/.cache/bench"
run="$dir/run"
bin="$dir/bin"
rounds=${BENCH_ROUNDS:-3}
duration=${BENCH_DURATION:-10s}
warmup=${BENCH_WARMUP:-2s}
conns=${BENCH_CONNS:-50}
concurrency=${BENCH_CONCURRENCY:-10000}
conc_duration=${BENCH_CONC_DURATION:-6s}
conc_ramp=${BENCH_CONC_RAMP:-2s}

# Fixed loopback ports, below the ephemeral range so tests using :0 never take them.
p_direct=19080 p_up=19081 p_bare=19082 p_nginx=19083 p_pc=19084 p_pc_admin=19085
p_slow=19086 p_pc2=19087 p_pc2_admin=19088 p_bare2=19089

say() { printf '%s\n' "$*" >&2; }

# --- install and build ----------------------------------------------------
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
	say "== installing nginx (Debian package nginx-light); the system service is not used"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	apt-get install -y -q --no-install-recommends nginx-light
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

say "== building"
mkdir -p "$bin"
go build -o "$bin/" ./bench/upstream ./bench/bareproxy ./bench/loadgen
go build -o "$root/.cache/bin/portcullis" ./cmd/portcullis
PC="$root/.cache/bin/portcullis"
LG="$bin/loadgen"

for p in $p_direct $p_up $p_bare $p_nginx $p_pc $p_pc_admin $p_slow $p_pc2 $p_pc2_admin $p_bare2; do
	if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
		say "port 127.0.0.1:$p is already in use; is another bench/run.sh running?"
		exit 1
	fi
done

pressure() { if [ -r /proc/pressure/cpu ]; then sed -n 's/^some avg10=\([0-9.]*\) avg60=\([0-9.]*\).*/\2%/p' /proc/pressure/cpu; else echo n/a; fi; }
load_start="load average $(cut -d' ' -f1-3 /proc/loadavg), CPU pressure (some, avg60) $(pressure)"
rm -rf "$run"
mkdir -p "$run/nginx-temp"
results="$run/results.jsonl"
: >"$results"

# Two cores: servers on core 1 (one each, GOMAXPROCS=1 against one nginx
# worker), the load generator and the upstream behind the proxies on core 0.
ncpu=$(nproc)
if [ "$ncpu" -ge 2 ] && command -v taskset >/dev/null 2>&1; then
	on_server=(taskset -c 1)
	on_load=(taskset -c 0)
	placement="servers pinned to core 1; load generator and proxied upstream pinned to core 0"
else
	on_server=()
	on_load=()
	placement="not pinned ($ncpu CPU(s) or no taskset)"
fi
ulimit -n "$(ulimit -Hn)"
nofile=$(ulimit -n)

# A proxy needs two descriptors per held call (caller side, vendor side),
# plus idle vendor connections and dials racing for the same call (Go's
# Transport may dial while an idle connection frees up): keep 2000 spare.
n=$concurrency
max_n=$(((nofile - 2000) / 2))
if [ "$n" -gt "$max_n" ]; then
	say "NOTE: ulimit -n is $nofile here (hard limit); a proxy needs 2 per call + its idle pool, so $n calls become $max_n"
	n=$max_n
fi
# The gateway's caller listener must hold every one of those calls: its
# default server.limits.caller.max_conns (1024) would leave the rest in the
# kernel's accept queue, and the phase would measure that limit.
max_conns=$((n + 500))

pids=()
# cleanup stops what this script started: TERM, up to 10 s to exit, then KILL.
cleanup() {
	local p i alive st
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for ((i = 0; i < 100; i++)); do
		alive=0
		for p in "${pids[@]}"; do
			# Not alive: gone from /proc (bash reaps its children as they exit)
			# or a zombie (state Z). The read of a vanished /proc entry fails;
			# under set -e and pipefail that failure would end the script, in
			# its EXIT trap, with sed's status 2, after the report.
			st=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | cut -d' ' -f1) || st=
			if [ -n "$st" ] && [ "$st" != Z ]; then alive=1; fi
		done
		if [ $alive = 0 ]; then break; fi
		sleep 0.1
	done
	for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME LOG CMD... : start a server in the background and remember its pid.
start() {
	local name=$1 log=$2
	shift 2
	"$@" >"$log" 2>&1 &
	pids+=($!)
	eval "pid_$name=$!"
}

BENCH_VENDOR_KEY="sk_bench_$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
export BENCH_VENDOR_KEY
tok_out=$("$PC" token new --caller bench)
BENCH_CALLER_TOKEN=$(printf '%s\n' "$tok_out" | sed -n 's/^token: *//p')
caller_hash=$(printf '%s\n' "$tok_out" | sed -n 's/.*tokens: \["\(sha256:[^"]*\)"\].*/\1/p')
export BENCH_CALLER_TOKEN
other_hash=$("$PC" token new --caller other | sed -n 's/.*tokens: \["\(sha256:[^"]*\)"\].*/\1/p')
if [ -z "$BENCH_CALLER_TOKEN" ] || [ -z "$caller_hash" ] || [ -z "$other_hash" ]; then
	say "could not read the token from 'portcullis token new'"
	exit 1
fi

# gateway_config LISTEN ADMIN UPSTREAM_PORT FILE
gateway_config() {
	cat >"$4" <<EOF
# Generated by bench/run.sh: one integration, bearer injection from env:,
# deny-by-default routes, one JSON log line per request (log.level info).
version: 1
server:
  listen: 127.0.0.1:$1
  admin_listen: 127.0.0.1:$2
  limits: {caller: {max_conns: $max_conns}}
log: {level: info}
state:
  data_dir: $run/data-$1
callers:
  bench: {tokens: ["$caller_hash"]}
  other: {tokens: ["$other_hash"]}
integrations:
  vendor:
    upstream: http://127.0.0.1:$3
    egress: {allow: ["127.0.0.1:$3"], allow_private: true}
    credential: {type: bearer, secret: env:BENCH_VENDOR_KEY}
    request_headers: [Accept, Content-Type, Idempotency-Key]
    timeouts: {connect: 5s, request: 30s}
    limits: {max_concurrent: 20000}
    routes:
      - {method: POST, path: /v1/charges, callers: [bench]}
      - {method: GET, path: "/v1/charges/{id}", callers: [bench, other]}
      - {method: POST, path: "/v1/charges/{id}/capture", callers: [bench]}
      - {method: GET, path: /v1/customers, callers: [other]}
      - {method: GET, path: "/v1/customers/{id}", callers: [other]}
      - {method: POST, path: /v1/refunds, callers: [bench]}
      - {method: GET, path: "/v1/refunds/{id}", callers: [bench]}
      - {method: GET, path: "/v1/items/{id}", callers: [bench]}
EOF
	chmod 600 "$4"
}
gateway_config $p_pc $p_pc_admin $p_up "$run/portcullis.yaml"
gateway_config $p_pc2 $p_pc2_admin $p_slow "$run/portcullis-slow.yaml"
old_umask=$(umask)
umask 077
cat >"$run/nginx.conf" <<EOF
# Generated by bench/run.sh: the same header injection as Portcullis, with
# keep-alive to the upstream, one worker, one access-log line per request.
worker_processes 1;
daemon off;
pid $run/nginx.pid;
error_log $run/nginx-error.log warn;
worker_rlimit_nofile $nofile;
events { worker_connections 16384; }
http {
  access_log $run/nginx-access.log;
  client_body_temp_path $run/nginx-temp/body;
  proxy_temp_path $run/nginx-temp/proxy;
  fastcgi_temp_path $run/nginx-temp/fastcgi;
  uwsgi_temp_path $run/nginx-temp/uwsgi;
  scgi_temp_path $run/nginx-temp/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  upstream vendor {
    server 127.0.0.1:$p_up;
    keepalive 256;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:$p_nginx;
    location / {
      proxy_pass http://vendor;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Authorization "Bearer $BENCH_VENDOR_KEY";
    }
  }
}
EOF
umask "$old_umask"

say "== starting servers ($placement; ulimit -n $nofile)"
export GOMAXPROCS=1
start direct "$run/upstream-direct.log" "${on_server[@]}" "$bin/upstream" -listen 127.0.0.1:$p_direct
start up "$run/upstream.log" "${on_load[@]}" "$bin/upstream" -listen 127.0.0.1:$p_up
start bare "$run/bareproxy.log" "${on_server[@]}" "$bin/bareproxy" -listen 127.0.0.1:$p_bare -upstream http://127.0.0.1:$p_up
start nginx "$run/nginx.out" "${on_server[@]}" "$NGINX" -c "$run/nginx.conf" -p "$run"
start pc "$run/portcullis.log" "${on_server[@]}" "$PC" serve --config "$run/portcullis.yaml"
for p in $p_direct $p_up $p_bare $p_nginx $p_pc; do "$LG" wait -addr 127.0.0.1:$p -timeout 30s; done

# Each target must answer 200 with the injected key before it is measured
# (the upstream answers 401 to a request without it).
check() {
	local name=$1 url=$2 auth=$3 code
	code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $auth" "$url")
	if [ "$code" != 200 ]; then
		say "$name: $url answered $code, not 200; see $run/*.log"
		exit 1
	fi
}
check direct "http://127.0.0.1:$p_direct/v1/items/42" "$BENCH_VENDOR_KEY"
check nginx "http://127.0.0.1:$p_nginx/v1/items/42" "$BENCH_CALLER_TOKEN"
check bare-go "http://127.0.0.1:$p_bare/v1/items/42" "$BENCH_CALLER_TOKEN"
check portcullis "http://127.0.0.1:$p_pc/vendor/v1/items/42" "$BENCH_CALLER_TOKEN"

# gcsum LOG: the largest heap, live heap and stack figures in a gctrace log.
gcsum() {
	awk '/^gc [0-9]+ @/ {
		for (i = 1; i <= NF; i++) {
			if ($i ~ /^[0-9]+->[0-9]+->[0-9]+$/) { split($i, a, "->"); if (a[1] + 0 > h) h = a[1] + 0; if (a[3] + 0 > l) l = a[3] + 0 }
			if ($(i + 1) == "MB" && $(i + 2) == "stacks,") { if ($i + 0 > s) s = $i + 0 }
		}
		n++
	}
	END { printf "%d GCs, peak heap at GC start %d MB, peak live heap after GC %d MB, peak goroutine stacks %d MB", n, h, l, s }' "$1"
}

# measure NAME PHASE ROUND [loadgen run flags...]
measure() {
	local name=$1 phase=$2 round=$3
	shift 3
	local url auth server upstream=0
	case $name in
	direct) url=http://127.0.0.1:$p_direct/v1/items/42 auth=BENCH_VENDOR_KEY server=$pid_direct ;;
	nginx) url=http://127.0.0.1:$p_nginx/v1/items/42 auth=BENCH_CALLER_TOKEN server=$pid_nginx upstream=$pid_up ;;
	bare-go) url=http://127.0.0.1:$p_bare/v1/items/42 auth=BENCH_CALLER_TOKEN server=$pid_bare upstream=$pid_up ;;
	portcullis) url=http://127.0.0.1:$p_pc/vendor/v1/items/42 auth=BENCH_CALLER_TOKEN server=$pid_pc upstream=$pid_up ;;
	esac
	# nginx's master only supervises; the worker (its child) serves.
	if [ "$name" = nginx ]; then server=$(pgrep -P "$pid_nginx" | head -n1); fi
	"${on_load[@]}" "$LG" run -name "$name" -phase "$phase" -round "$round" -url "$url" -auth-env "$auth" \
		-server-pid "$server" -upstream-pid "$upstream" -out "$results" "$@" >&2
}

say "== peak throughput: $rounds round(s) × 4 targets × ($warmup warm-up + $duration), $conns connections"
for ((r = 1; r <= rounds; r++)); do
	for t in direct nginx bare-go portcullis; do
		measure $t peak $r -conns "$conns" -duration "$duration" -warmup "$warmup"
	done
done

rate=$("$LG" rate -in "$results" -name portcullis)
say "== half of portcullis's median peak: open loop at $rate req/s, $rounds round(s) × 3 targets"
# bare-go at the same rate is not a target: it shows what a bare Go proxy
# adds over direct on this machine, the floor the gateway's p99 starts from.
for ((r = 1; r <= rounds; r++)); do
	for t in direct bare-go portcullis; do
		measure $t half-peak $r -conns "$conns" -rate "$rate" -duration "$duration" -warmup "$warmup"
	done
done
log_lines=$(wc -l <"$run/portcullis.log")

say "== concurrency: $n calls held 1 s by the vendor, started over $conc_ramp, $conc_duration in all; fresh gateway and bare proxy"
start slow "$run/upstream-slow.log" "${on_load[@]}" "$bin/upstream" -listen 127.0.0.1:$p_slow -delay 1s
# gctrace (on stderr, into the logs) shows where the peak RSS goes.
GODEBUG=gctrace=1 start pc2 "$run/portcullis-slow.log" "${on_server[@]}" "$PC" serve --config "$run/portcullis-slow.yaml"
GODEBUG=gctrace=1 start bare2 "$run/bareproxy-slow.log" "${on_server[@]}" "$bin/bareproxy" -listen 127.0.0.1:$p_bare2 -upstream http://127.0.0.1:$p_slow
for p in $p_slow $p_pc2 $p_bare2; do "$LG" wait -addr 127.0.0.1:$p -timeout 30s; done
"${on_load[@]}" "$LG" run -name portcullis -phase concurrency -url "http://127.0.0.1:$p_pc2/vendor/v1/items/42" \
	-auth-env BENCH_CALLER_TOKEN -server-pid "$pid_pc2" -upstream-pid "$pid_slow" -out "$results" \
	-conns "$n" -duration "$conc_duration" -warmup 0s -ramp "$conc_ramp" -timeout 30s >&2
"${on_load[@]}" "$LG" run -name bare-go -phase concurrency -url "http://127.0.0.1:$p_bare2/v1/items/42" \
	-auth-env BENCH_CALLER_TOKEN -server-pid "$pid_bare2" -upstream-pid "$pid_slow" -out "$results" \
	-conns "$n" -duration "$conc_duration" -warmup 0s -ramp "$conc_ramp" -timeout 30s >&2

# Issue 16, row 4: allocations per proxied request, from the in-process
# benchmark (allocation counts do not depend on the machine's load).
say "== allocations per proxied request: go test -bench RequestPath ./bench/"
allocs_row=$(go test -run '^$' -bench 'RequestPath/(bare-reverse-proxy|portcullis-allowed)$' -benchmem -benchtime 2000x ./bench/ |
	sed -n 's/^issue 16: //p')

# Issue 16, rows 5 and 6: enforce validation cost on the full chain (2 KB
# JSON) and validation speed on 100–500 KB list pages, from the in-process
# benchmark in bench/validation_test.go (it needs Stripe's spec from
# scripts/fetch-specs.sh). Row 7 (forward mode ÷ Smokescreen) has its own
# script.
say "== enforce validation cost and speed: go test -bench Validation ./bench/"
rows_elsewhere=$(PORTCULLIS_SPECS_DIR=${PORTCULLIS_SPECS_DIR:-$root/.cache/specs} \
	go test -run '^$' -bench 'Validation' -benchmem -benchtime 1s ./bench/ |
	sed -n 's/^issue 16: /  /p') || true
rows_elsewhere="${rows_elsewhere:-  rows 5–6 (enforce validation cost and speed): the benchmark printed no row}"

# Issue 16, row 7: forward mode, CONNECT + one GET + close, tunnels/s of
# the serve binary ÷ Smokescreen v0.1.0's, each pinned to the same core
# (bench/forward/run.sh, ports 18xxx; it prints the row itself).
say "== forward mode: bench/forward/run.sh ${BENCH_FORWARD_SECS:-3} ${BENCH_FORWARD_ROUNDS:-3}"
forward_row=$("$root/bench/forward/run.sh" "${BENCH_FORWARD_SECS:-3}" "${BENCH_FORWARD_ROUNDS:-3}" 2>&1 | tee "$dir/forward.txt" |
	sed -n 's/^issue 16: //p') || true

{
	echo "Portcullis benchmark — $(date -u +%Y-%m-%dT%H:%MZ), $(uname -m), $ncpu CPU(s): $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
	echo "$placement; GOMAXPROCS=1 for every Go process; nginx worker_processes 1"
	echo "machine load before: $load_start; after: load average $(cut -d' ' -f1-3 /proc/loadavg), CPU pressure $(pressure)"
	echo "portcullis: bearer injection + route policy (8 routes) + JSON request log at info to a file ($log_lines lines written); nginx: access_log to a file"
	echo
	"$LG" report -in "$results"
	echo
	echo "Go GC during the concurrency runs (GODEBUG=gctrace=1; MB as the runtime prints them):"
	echo "  portcullis: $(gcsum "$run/portcullis-slow.log")"
	echo "  bare-go:    $(gcsum "$run/bareproxy-slow.log")"
	echo
	echo "Targets (issue 16), rows 4–7: allocations and validation from in-process benchmarks (go test -bench ./bench/), forward mode from bench/forward/run.sh:"
	echo "  ${allocs_row:-allocations per proxied request: the benchmark printed no row}"
	echo "$rows_elsewhere"
	echo "  ${forward_row:-forward tunnels/s ÷ Smokescreen: bench/forward/run.sh printed no row (see .cache/bench/forward.txt)}"
} | tee "$dir/report.txt"
