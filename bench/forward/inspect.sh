#!/usr/bin/env bash
# Inspect-mode benchmark (issue 17): what an inspected tunnel costs against a
# plain one, through the `portcullis serve` binary. One TLS vendor on
# loopback, two integrations on it: `plain` (a tunnel, the client's TLS end
# to end) and `vendor` (proxy.inspect: the gateway terminates TLS with a
# minted leaf and runs each request through the reverse-mode chain, with a
# bearer credential injected and one log line per request). The gateway runs
# pinned to core 0 (GOMAXPROCS=1); the vendor and the load generator share
# core 1. Measures, per mode:
#   set-ups/s   CONNECT + TLS handshake (no session resumption) + one GET + close,
#               32 concurrent clients
#   requests/s  keep-alive GETs inside 32 open tunnels
# and the gateway's own CPU time per operation. Prints a table; raw JSON
# goes to .cache/bench-inspect/.
#
#   bench/forward/inspect.sh [SECONDS] [ROUNDS]   (default 5 s, 3 rounds)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
secs=${1:-5}
rounds=${2:-3}
out="$root/.cache/bench-inspect"
bin="$root/.cache/bin"
mkdir -p "$out" "$bin"
command -v taskset >/dev/null || { echo "taskset missing: apt-get install util-linux" >&2; exit 1; }
go build -o "$bin/forward-bench" ./bench/forward
pbin=${PORTCULLIS_BIN:-$bin/portcullis}
if [ -z "${PORTCULLIS_BIN:-}" ]; then go build -o "$pbin" ./cmd/portcullis; fi

VENDOR=localhost:18083 GATEWAY=127.0.0.1:18093
tplain=pcs_bench-plain-token-not-a-secret tinsp=pcs_bench-inspect-token-not-a-secret
hash() { printf 'sha256:%s' "$(printf %s "$1" | sha256sum | cut -d' ' -f1)"; }
rm -f "$out/inspect-ca.pem" "$out/inspect-ca.key"
"$pbin" ca new --out-cert "$out/inspect-ca.pem" --out-key "$out/inspect-ca.key" --permit localhost >/dev/null
printf 'sk_bench_vendor_key' >"$out/vendor_key"
cat >"$out/inspect.yaml" <<YAML
version: 1
server:
  listen: "$GATEWAY"
  admin_listen: "127.0.0.1:0"
  inspect_ca: {cert: "$out/inspect-ca.pem", key: "file:$out/inspect-ca.key"}
state: {data_dir: "$out/data"}
log: {level: info, format: json}
callers:
  plain: {tokens: ["$(hash "$tplain")"]}
  inspect: {tokens: ["$(hash "$tinsp")"]}
integrations:
  plain:
    upstream: https://$VENDOR
    egress: {allow: ["$VENDOR"], allow_cidrs: ["127.0.0.1/32"], ca_file: "$out/vendor-ca.pem"}
    timeouts: {connect: 2s, request: 10s}
    proxy: {mode: enforce, connect_callers: [plain], max_tunnels: 100000, idle_timeout: 30s, max_lifetime: 10m}
  vendor:
    upstream: https://$VENDOR
    egress: {allow: ["$VENDOR"], allow_cidrs: ["127.0.0.1/32"], ca_file: "$out/vendor-ca.pem"}
    timeouts: {connect: 2s, request: 10s}
    credential: {type: bearer, secret: "file:$out/vendor_key", max_age: 90d}
    rate_limit: {rate: 1000000/s, burst: 1000000}
    routes: [{method: GET, path: /v1/things, callers: [inspect]}]
    proxy: {mode: enforce, inspect: true, max_tunnels: 100000, idle_timeout: 30s, max_lifetime: 10m}
YAML

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
wait_port() { # host:port
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/${1%:*}/${1#*:}") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "nothing listening on $1" >&2
  return 1
}
rm -f "$out/vendor-ca.pem"
GOMAXPROCS=1 taskset -c 1 "$bin/forward-bench" inspect vendor -listen "127.0.0.1:${VENDOR#*:}" -ca-out "$out/vendor-ca.pem" &
pids+=($!)
wait_port "127.0.0.1:${VENDOR#*:}"
PORTCULLIS_ADMIN_TOKEN=unused GOMAXPROCS=1 taskset -c 0 "$pbin" serve --config "$out/inspect.yaml" 2>"$out/gateway.log" &
gw=$!; pids+=($!)
wait_port "$GATEWAY"

auth_of() { case $1 in plain) echo "plain:$tplain";; inspect) echo "inspect:$tinsp";; esac; }
ca_of() { case $1 in plain) echo "$out/vendor-ca.pem";; inspect) echo "$out/inspect-ca.pem";; esac; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rm -f "$out"/*.json "$out"/*-cpu-*
for r in $(seq "$rounds"); do
  for mode in setup requests; do
    for k in plain inspect; do
      c0=$(cpu_ticks "$gw")
      GOMAXPROCS=1 taskset -c 1 "$bin/forward-bench" inspect load -mode "$mode" -label "$k" -proxy "$GATEWAY" \
        -auth "$(auth_of "$k")" -ca "$(ca_of "$k")" -target "$VENDOR" -conns 32 -duration "${secs}s" -warmup 1s \
        >"$out/$k-$mode-$r.json"
      echo $(( $(cpu_ticks "$gw") - c0 )) >"$out/$k-$mode-cpu-$r"
      sleep 1
    done
  done
done

python3 - "$out" "$rounds" "$secs" <<'PY'
import json, statistics, sys
out, rounds, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
print(f"\nportcullis serve, GOMAXPROCS=1 on its own core; 32 concurrent clients; median of {rounds} rounds of {secs:g}s.")
print("set-up: CONNECT + TLS handshake + one GET + close; requests: keep-alive GETs inside open tunnels.")
print("'per CPU-s': operations per second of the gateway's own CPU time (utime+stime), what one busy core sustains.\n")
print("| mode               | tunnel    | ops/s  | p50 ms | p99 ms | errors | per CPU-s |")
print("|--------------------|-----------|--------|--------|--------|--------|-----------|")
for mode, name in (("setup", "set-ups"), ("requests", "requests in tunnel")):
    for k in ("plain", "inspect"):
        runs = [json.load(open(f"{out}/{k}-{mode}-{r}.json")) for r in range(1, rounds + 1)]
        ticks = sum(int(open(f"{out}/{k}-{mode}-cpu-{r}").read()) for r in range(1, rounds + 1))
        total = sum(x["total"] for x in runs)
        per_cpu = f"{total / (ticks / 100):>9,.0f}" if ticks else f"{'-':>9}"
        print(f"| {name:<18} | {('inspected' if k == 'inspect' else 'plain'):<9} | {statistics.median(x['per_sec'] for x in runs):>6,.0f} "
              f"| {statistics.median(x['p50_ms'] for x in runs):>6.2f} | {statistics.median(x['p99_ms'] for x in runs):>6.2f} "
              f"| {sum(x['errors'] for x in runs):>6} | {per_cpu} |")
PY
