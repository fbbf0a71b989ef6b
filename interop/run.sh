#!/usr/bin/env bash
# Runs the interop suite with the real @deepstream/client against a server under test.
#
#   interop/run.sh [recordsync|deepstream|sharedb-peer|sharedb-recordsync]   (default: recordsync)
#
# deepstream: the real @deepstream/server 7 from node_modules (in memory). Run this first when
#             changing a test: it proves the test encodes what the real peer does.
# recordsync: the binary at $RECORDSYNC_BIN (default: debug/recordsync in $CARGO_TARGET_DIR, else in
#             <repo>/target), which must
#             already be built (the project's test command builds it first).
# sharedb-peer:       the ShareDB suite (test/sharedb/) with the real npm `sharedb` 7 client against
#                     the reference ShareDB 7 server (peers/sharedb-server.js). Run this first when
#                     changing a ShareDB test.
# sharedb-recordsync-postgres: the same, with recordsync on PostgreSQL (a schema of its own)
# sharedb-recordsync: the same ShareDB suite against recordsync's ws://127.0.0.1:PORT/sharedb door
#                     (binary as for `recordsync`), plus the cross-protocol tests.
# Extra arguments after the target go to `node --test` (e.g. --test-name-pattern=listen).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
target="${1:-recordsync}"
[ $# -gt 0 ] && shift

case "$target" in
  deepstream|recordsync|sharedb-peer|sharedb-recordsync) ;;
  sharedb-recordsync-postgres)
    # the ShareDB suite against recordsync on PostgreSQL (127.0.0.1:5432, database test), in a
    # schema of its own, dropped afterwards
    schema="interop_sharedb_$$"
    export RECORDSYNC_STORAGE="postgres://postgres@127.0.0.1:5432/test?schema=$schema"
    trap 'psql -q -h 127.0.0.1 -U postgres test -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true' EXIT
    target=sharedb-recordsync ;;
  *) echo "usage: interop/run.sh [recordsync|deepstream|sharedb-peer|sharedb-recordsync|sharedb-recordsync-postgres] [node --test args...]" >&2; exit 2 ;;
esac

"$here/install.sh"

if [ "$target" = recordsync ] || [ "$target" = sharedb-recordsync ]; then
  bin="${RECORDSYNC_BIN:-${CARGO_TARGET_DIR:-$here/../target}/debug/recordsync}"
  if [ ! -x "$bin" ]; then
    echo "interop/run.sh: recordsync binary not found at $bin (build it with 'cargo build' or set RECORDSYNC_BIN)" >&2
    exit 1
  fi
  export RECORDSYNC_BIN="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
fi

cd "$here"
case "$target" in
  sharedb-peer|sharedb-recordsync)
    # one server for the whole ShareDB suite (tests use their own collections); see lib/sharedb.mjs
    echo "interop: running the ShareDB suite against ${target#sharedb-}" >&2
    # not exec: the postgres target's EXIT trap drops its schema afterwards
    status=0
    node tools/sharedb-target.mjs "${target#sharedb-}" -- \
      node --test --test-reporter=tap --test-concurrency=1 "$@" test/sharedb/*.test.mjs || status=$?
    exit "$status"
    ;;
esac

export INTEROP_TARGET="$target"
files=(test/*.test.mjs)
if [ "$target" = deepstream ]; then
  # the reference deepstream runs in memory: it has no durability tests (see that file)
  files=("${files[@]/test\/durability.test.mjs}")
fi
echo "interop: running against $target" >&2
exec node --test --test-reporter=tap --test-concurrency=1 "$@" ${files[@]}
