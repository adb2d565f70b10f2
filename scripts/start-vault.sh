#!/usr/bin/env bash
# start-vault.sh — make sure a throwaway HashiCorp Vault v1.21.1 dev server
# (in memory, unsealed, KV v2 mounted at secret/) answers on
# 127.0.0.1:$PORTCULLIS_VAULT_PORT (default 8209; its cluster listener takes
# the next port) for the credential tests.
#
# Idempotent: if Vault already answers /v1/sys/health on that port and its
# root token is in .cache/vault.token, it exits at once. Otherwise it builds
# Vault from tools/vault (its own Go module: Vault's go.mod has replace
# directives, so `go install` refuses it and the main module must not carry
# them) into .cache/bin/vault unless a binary built from the same tools/vault
# go.mod/go.sum is cached there (CGO off; a cold build takes long, see
# docs/credentials.md), starts `vault server -dev` with a random root token,
# and waits until it is ready. The token is written to .cache/vault.token
# (mode 0600) and not to ~/.vault-token. The community edition sends no
# usage reports (license reporting is Enterprise-only), so there is nothing
# to opt out of; the listeners are loopback only. Log: .cache/vault.log, pid: .cache/vault.pid.
#
# Prints nothing to stdout but progress lines; scripts/test.sh reads the
# address and the token from the files and exports VAULT_ADDR/VAULT_TOKEN.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$REPO/.cache"
BIN="$CACHE/bin/vault"
STAMP="$CACHE/bin/vault.stamp"
TOKEN_FILE="$CACHE/vault.token"
PORT="${PORTCULLIS_VAULT_PORT:-8209}"
HOST=127.0.0.1
mkdir -p "$CACHE/bin"

# sys/health answers 200 only when initialized, unsealed and active.
ready() {
	curl -fsS -o /dev/null --max-time 2 "http://$HOST:$PORT/v1/sys/health" 2>/dev/null
}

if ready && [ -s "$TOKEN_FILE" ]; then
	echo "start-vault: vault already answering on $HOST:$PORT"
	exit 0
fi
if ready; then
	echo "start-vault: something answers on $HOST:$PORT but $TOKEN_FILE is missing; stop it or set PORTCULLIS_VAULT_PORT" >&2
	exit 1
fi

want_stamp="$(cat "$REPO/tools/vault/go.mod" "$REPO/tools/vault/go.sum" | sha256sum | cut -d' ' -f1)"
if [ ! -x "$BIN" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$want_stamp" ]; then
	echo "start-vault: building HashiCorp Vault from tools/vault (takes many minutes; cached afterwards)"
	start=$(date +%s)
	(cd "$REPO/tools/vault" && CGO_ENABLED=0 go build -o "$BIN.tmp" github.com/hashicorp/vault)
	mv "$BIN.tmp" "$BIN"
	echo "$want_stamp" >"$STAMP"
	echo "start-vault: built in $(($(date +%s) - start))s"
fi

# A dev server keeps everything in memory: every start is a clean slate, so
# the root token can be random. -dev-no-store-token keeps it out of the
# token helper (~/.vault-token).
token="pcs-$(head -c 24 /dev/urandom | base64 | tr -d '/+=\n')"
umask 077
printf '%s\n' "$token" >"$TOKEN_FILE.tmp"
(
	unset VAULT_ADDR VAULT_TOKEN
	nohup "$BIN" server -dev -dev-no-store-token \
		-dev-root-token-id="$token" -dev-listen-address="$HOST:$PORT" \
		-log-level=warn >"$CACHE/vault.log" 2>&1 &
	echo $! >"$CACHE/vault.pid"
)

start=$(date +%s%N)
for _ in $(seq 1 300); do
	if ready; then
		mv "$TOKEN_FILE.tmp" "$TOKEN_FILE"
		echo "start-vault: vault ready on $HOST:$PORT in $((($(date +%s%N) - start) / 1000000))ms"
		exit 0
	fi
	if ! kill -0 "$(cat "$CACHE/vault.pid")" 2>/dev/null; then
		echo "start-vault: vault exited; last log lines:" >&2
		tail -20 "$CACHE/vault.log" >&2
		rm -f "$TOKEN_FILE.tmp"
		exit 1
	fi
	sleep 0.2
done
echo "start-vault: vault not ready within 60s; see $CACHE/vault.log" >&2
exit 1
