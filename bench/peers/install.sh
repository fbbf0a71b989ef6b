#!/usr/bin/env bash
# Installs the benchmark's peer servers from npm exactly as locked: the real
# @deepstream/server 7 (in memory) and ShareDB 7 on PostgreSQL (sharedb-postgres) and in
# memory (sharedb-mingo-memory), plus the clients the scenarios drive them with.
# Idempotent: runs `npm ci` only when node_modules is missing or was installed from a
# different package.json / package-lock.json.
set -euo pipefail
cd "$(dirname "$0")"

command -v node >/dev/null || { echo "bench/peers/install.sh: node is not installed (need Node >= 18)" >&2; exit 1; }
command -v npm >/dev/null || { echo "bench/peers/install.sh: npm is not installed" >&2; exit 1; }

stamp=node_modules/.bench-install-stamp
want=$(cat package.json package-lock.json stubs/uWebSockets.js/package.json | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
   && [ -f node_modules/@deepstream/server/dist/bin/deepstream ] \
   && [ -f node_modules/sharedb-postgres/index.js ] \
   && [ -d node_modules/sharedb-mingo-memory ]; then
  exit 0
fi

echo "bench/peers/install.sh: installing npm dependencies (npm ci)" >&2
npm ci --no-audit --no-fund --loglevel=error >&2
echo "$want" > "$stamp"
