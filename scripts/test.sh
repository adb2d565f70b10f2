#!/usr/bin/env bash
# The test command (README): installs and starts every real server the tests
# need, on loopback, then runs the whole suite. Safe to run again: each
# start script reuses what is already installed or running.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
mkdir -p .cache

echo "== starting test servers (Redis, ORY Hydra, HashiCorp Vault), installing Chromium and the Node clients, fetching vendor specs"
for s in scripts/start-redis.sh scripts/start-hydra.sh scripts/start-vault.sh scripts/fetch-specs.sh scripts/install-chromium.sh scripts/install-node-clients.sh; do
  if [ -x "$s" ]; then "$s"; fi
done

export PORTCULLIS_REDIS_URL=redis://127.0.0.1:6390/0
export PORTCULLIS_HYDRA_PUBLIC=http://127.0.0.1:4444
export PORTCULLIS_HYDRA_ADMIN=http://127.0.0.1:4445
export PORTCULLIS_SPECS_DIR="$root/.cache/specs"
export VAULT_ADDR="http://127.0.0.1:${PORTCULLIS_VAULT_PORT:-8209}"
VAULT_TOKEN="$(cat .cache/vault.token)"
export VAULT_TOKEN
export PORTCULLIS_REQUIRE_SERVERS=1

echo "== go vet"
go vet ./...
echo "== go test"
go test -race -shuffle=on -timeout 15m ./... "$@"
