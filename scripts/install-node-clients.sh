#!/usr/bin/env bash
# install-node-clients.sh — install the Node HTTP clients that the
# inspect-mode end-to-end test (internal/server, TestInspect*) drives
# through HTTPS_PROXY: https-proxy-agent and undici, at the versions pinned
# in scripts/node-clients/package-lock.json, under .cache/node-clients.
#
# Idempotent: does nothing when they are installed at the locked versions.
# Uses npm only (the npm registry); skips with a message when node or npm
# is missing (the test then skips too, unless PORTCULLIS_REQUIRE_SERVERS=1).
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.cache/node-clients
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
	echo "install-node-clients: node or npm not installed; the Node inspect test will skip"
	exit 0
fi
mkdir -p "$dest"
if [ -f "$dest/package-lock.json" ] && cmp -s scripts/node-clients/package-lock.json "$dest/package-lock.json" && [ -d "$dest/node_modules/undici" ]; then
	echo "install-node-clients: up to date in $dest"
	exit 0
fi
cp scripts/node-clients/package.json "$dest/"
if [ -f scripts/node-clients/package-lock.json ]; then
	cp scripts/node-clients/package-lock.json "$dest/"
	(cd "$dest" && npm ci --no-audit --no-fund --loglevel=error)
else
	(cd "$dest" && npm install --no-audit --no-fund --loglevel=error --omit-lockfile-registry-resolved)
	cp "$dest/package-lock.json" scripts/node-clients/
fi
echo "install-node-clients: $(cd "$dest" && node -e 'console.log(["https-proxy-agent","undici"].map(p=>p+"@"+require(p+"/package.json").version).join(" "))')"
