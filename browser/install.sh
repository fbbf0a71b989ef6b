#!/usr/bin/env bash
# Installs what the browser tests need: Debian's chromium (/usr/bin/chromium; playwright-core
# drives it, it never downloads a browser of its own), playwright-core exactly as locked, and
# the interop suite's npm packages (the real @deepstream/client the tests use). Idempotent.
set -euo pipefail
cd "$(dirname "$0")"

if [ ! -x /usr/bin/chromium ]; then
  echo "browser/install.sh: installing Debian's chromium (apt-get)" >&2
  if [ "$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >&2
fi

command -v npm >/dev/null || { echo "browser/install.sh: npm is not installed (need Node >= 18)" >&2; exit 1; }
stamp=node_modules/.browser-install-stamp
want=$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)
if ! { [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -f node_modules/playwright-core/package.json ]; }; then
  echo "browser/install.sh: installing npm dependencies (npm ci)" >&2
  # playwright-core has no install step: nothing is downloaded besides the package
  npm ci --no-audit --no-fund --loglevel=error >&2
  echo "$want" > "$stamp"
fi

../interop/install.sh
