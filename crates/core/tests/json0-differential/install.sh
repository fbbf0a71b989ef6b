#!/usr/bin/env bash
# Installs the json0 differential test's npm dependency (ot-json0) exactly as locked.
# Idempotent: runs `npm ci` only when node_modules is missing or was installed from a
# different package.json / package-lock.json. Called by tests/json0_differential.rs.
set -euo pipefail
cd "$(dirname "$0")"

command -v node >/dev/null || { echo "json0-differential/install.sh: node is not installed (need Node 20 or later)" >&2; exit 1; }
command -v npm >/dev/null || { echo "json0-differential/install.sh: npm is not installed" >&2; exit 1; }

stamp=node_modules/.json0-differential-install-stamp
want=$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -f node_modules/ot-json0/lib/json0.js ]; then
  exit 0
fi

echo "json0-differential/install.sh: installing npm dependencies (npm ci)" >&2
npm ci --no-audit --no-fund --loglevel=error >&2
echo "$want" > "$stamp"
