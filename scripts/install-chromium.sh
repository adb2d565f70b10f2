#!/usr/bin/env bash
# install-chromium.sh — make sure headless Chromium is available for the
# dashboard's browser tests (internal/dashboard).
#
# Idempotent: does nothing when the browser is already there
# ($PORTCULLIS_CHROMIUM, default /usr/bin/chromium); otherwise installs
# Debian's `chromium` package (about 20 s). Nothing is downloaded outside the
# distribution's package manager: no browser build of its own, no CDN.
# Prints the browser's path and version, and exits 0 when it runs.
set -euo pipefail

CHROMIUM="${PORTCULLIS_CHROMIUM:-/usr/bin/chromium}"

if [ ! -x "$CHROMIUM" ]; then
	echo "install-chromium: installing Debian's chromium package"
	export DEBIAN_FRONTEND=noninteractive
	SUDO=""
	if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
	$SUDO apt-get update -q
	$SUDO apt-get install -y -q chromium
fi

if [ ! -x "$CHROMIUM" ]; then
	echo "install-chromium: $CHROMIUM is still missing after the install" >&2
	exit 1
fi
echo "install-chromium: $("$CHROMIUM" --headless --no-sandbox --disable-gpu --version 2>/dev/null || echo "$CHROMIUM")"
