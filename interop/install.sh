#!/usr/bin/env bash
# Installs the interop suite's npm dependencies (the real @deepstream/client and
# @deepstream/server; the real sharedb 7 with its in-memory Mongo-style database
# sharedb-mingo-memory) exactly as locked. Idempotent: runs `npm ci` only when node_modules is
# missing or was installed from a different package.json / package-lock.json.
set -euo pipefail
cd "$(dirname "$0")"

command -v node >/dev/null || { echo "interop/install.sh: node is not installed (need Node >= 18)" >&2; exit 1; }
command -v npm >/dev/null || { echo "interop/install.sh: npm is not installed" >&2; exit 1; }

stamp=node_modules/.interop-install-stamp
want=$(cat package.json package-lock.json stubs/uWebSockets.js/package.json | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
   && [ -f node_modules/@deepstream/client/package.json ] \
   && [ -f node_modules/@deepstream/server/dist/bin/deepstream ] \
   && [ -f node_modules/sharedb/package.json ] && [ -f node_modules/sharedb-mingo-memory/package.json ]; then
  exit 0
fi

echo "interop/install.sh: installing npm dependencies (npm ci)" >&2
npm ci --no-audit --no-fund --loglevel=error >&2
echo "$want" > "$stamp"
