#!/usr/bin/env bash
# start-redis.sh — make sure a throwaway Redis answers on 127.0.0.1:6390 for tests.
#
# Idempotent: installs Debian's redis-server if it is missing, starts it on our
# fixed loopback port with no persistence unless something already answers PING
# there, then waits for PONG. A system service the package may have started is
# left alone; we only ever use port 6390. Logs and pid go under <repo>/.cache/.
set -euo pipefail

PORT="${PORTCULLIS_REDIS_PORT:-6390}"
HOST=127.0.0.1
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$REPO/.cache"
mkdir -p "$CACHE"

pong() {
	# redis-cli may be absent before the install; fall back to bash's /dev/tcp.
	if command -v redis-cli >/dev/null 2>&1; then
		[ "$(redis-cli -h "$HOST" -p "$PORT" ping 2>/dev/null)" = "PONG" ]
	else
		exec 3<>"/dev/tcp/$HOST/$PORT" 2>/dev/null || return 1
		printf 'PING\r\n' >&3
		local line=""
		read -r -t 2 line <&3 || true
		exec 3>&- 3<&-
		[ "${line%$'\r'}" = "+PONG" ]
	fi
}

if pong; then
	echo "start-redis: redis already answering on $HOST:$PORT"
	exit 0
fi

if ! command -v redis-server >/dev/null 2>&1; then
	echo "start-redis: installing redis-server (Debian package)"
	export DEBIAN_FRONTEND=noninteractive
	SUDO=""
	if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
	$SUDO apt-get update -q
	$SUDO apt-get install -y -q --no-install-recommends redis-server
fi

redis-server --port "$PORT" --bind "$HOST" --save '' --appendonly no \
	--daemonize yes --logfile "$CACHE/redis.log" --pidfile "$CACHE/redis.pid"

for _ in $(seq 1 100); do
	if pong; then
		echo "start-redis: redis ready on $HOST:$PORT"
		exit 0
	fi
	sleep 0.1
done
echo "start-redis: redis did not answer PING on $HOST:$PORT within 10s; see $CACHE/redis.log" >&2
exit 1
