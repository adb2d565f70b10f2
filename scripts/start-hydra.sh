#!/usr/bin/env bash
# start-hydra.sh — make sure a throwaway ORY Hydra v2.3.0 (a real OAuth 2.0
# authorization server) answers on 127.0.0.1:4444 (public) and
# 127.0.0.1:4445 (admin) for the credential tests.
#
# Idempotent: if Hydra already answers /health/ready on the admin port it
# exits at once. Otherwise it builds Hydra from tools/hydra (its own Go
# module, because Hydra needs a `replace` the main module must not carry)
# into .cache/bin/hydra unless a binary built from the same tools/hydra
# go.mod/go.sum is cached there (about 3 to 10 minutes on 2 cores; CGO for
# SQLite), starts `hydra serve all --dev` with an in-memory database, and
# waits until it is ready. Telemetry is opted out (no traffic leaves
# loopback). Log: .cache/hydra.log, pid: .cache/hydra.pid.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$REPO/.cache"
BIN="$CACHE/bin/hydra"
STAMP="$CACHE/bin/hydra.stamp"
PUBLIC_PORT="${PORTCULLIS_HYDRA_PUBLIC_PORT:-4444}"
ADMIN_PORT="${PORTCULLIS_HYDRA_ADMIN_PORT:-4445}"
HOST=127.0.0.1
mkdir -p "$CACHE/bin"

ready() {
	curl -fsS -o /dev/null --max-time 2 "http://$HOST:$ADMIN_PORT/health/ready" 2>/dev/null &&
		curl -fsS -o /dev/null --max-time 2 "http://$HOST:$PUBLIC_PORT/health/ready" 2>/dev/null
}

if ready; then
	echo "start-hydra: hydra already answering on $HOST:$PUBLIC_PORT and $HOST:$ADMIN_PORT"
	exit 0
fi

want_stamp="$(cat "$REPO/tools/hydra/go.mod" "$REPO/tools/hydra/go.sum" | sha256sum | cut -d' ' -f1)"
if [ ! -x "$BIN" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$want_stamp" ]; then
	if ! command -v gcc >/dev/null 2>&1; then
		echo "start-hydra: installing gcc for CGO (Debian package)"
		SUDO=""
		if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
		DEBIAN_FRONTEND=noninteractive $SUDO apt-get update -q
		DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends gcc libc6-dev
	fi
	echo "start-hydra: building ORY Hydra from tools/hydra (takes minutes; cached afterwards)"
	start=$(date +%s)
	(cd "$REPO/tools/hydra" && CGO_ENABLED=1 go build \
		-tags sqlite,sqlite_omit_load_extension -o "$BIN.tmp" github.com/ory/hydra/v2)
	mv "$BIN.tmp" "$BIN"
	echo "$want_stamp" >"$STAMP"
	echo "start-hydra: built in $(($(date +%s) - start))s"
fi

# A dev-mode server with an in-memory database: every start is a clean
# slate, so the system secret can be random.
secret="$(head -c 32 /dev/urandom | base64 | tr -d '/+=\n')"
(
	export DSN=memory
	export SERVE_PUBLIC_HOST="$HOST" SERVE_PUBLIC_PORT="$PUBLIC_PORT"
	export SERVE_ADMIN_HOST="$HOST" SERVE_ADMIN_PORT="$ADMIN_PORT"
	export URLS_SELF_ISSUER="http://$HOST:$PUBLIC_PORT"
	export SECRETS_SYSTEM="$secret"
	export SQA_OPT_OUT=true LOG_LEVEL=warn
	nohup "$BIN" serve all --dev --sqa-opt-out >"$CACHE/hydra.log" 2>&1 &
	echo $! >"$CACHE/hydra.pid"
)

for _ in $(seq 1 300); do
	if ready; then
		echo "start-hydra: hydra ready on $HOST:$PUBLIC_PORT (public) and $HOST:$ADMIN_PORT (admin)"
		exit 0
	fi
	if ! kill -0 "$(cat "$CACHE/hydra.pid")" 2>/dev/null; then
		echo "start-hydra: hydra exited; last log lines:" >&2
		tail -20 "$CACHE/hydra.log" >&2
		exit 1
	fi
	sleep 0.2
done
echo "start-hydra: hydra not ready within 60s; see $CACHE/hydra.log" >&2
exit 1
