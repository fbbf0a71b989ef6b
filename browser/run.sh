#!/usr/bin/env bash
# Runs the web console's browser tests: Debian's chromium (headless, driven by playwright-core)
# opens /console on recordsync and is checked against the real deepstream client and the
# recordsync CLI. Needs the binary built: $RECORDSYNC_BIN, or debug/recordsync in
# $CARGO_TARGET_DIR (else <repo>/target). Installs what it needs (install.sh).
# Extra arguments go to `node --test` (e.g. --test-name-pattern=conflict).
# CONSOLE_SCREENSHOT=docs/console.png: the first test also saves a screenshot of the console there.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

"$here/install.sh"

bin="${RECORDSYNC_BIN:-${CARGO_TARGET_DIR:-$here/../target}/debug/recordsync}"
if [ ! -x "$bin" ]; then
  echo "browser/run.sh: recordsync binary not found at $bin (build it with 'cargo build' or set RECORDSYNC_BIN)" >&2
  exit 1
fi
export RECORDSYNC_BIN="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
export INTEROP_TARGET=recordsync
if [ -n "${CONSOLE_SCREENSHOT:-}" ]; then
  export CONSOLE_SCREENSHOT="$(cd "$(dirname "$CONSOLE_SCREENSHOT")" && pwd)/$(basename "$CONSOLE_SCREENSHOT")"
fi

cd "$here"
exec node --test --test-reporter=tap --test-concurrency=1 "$@" test/*.test.mjs
