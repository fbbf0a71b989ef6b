#!/usr/bin/env bash
# Fuzzes the REST API (/v1) against its own OpenAPI document with schemathesis: a fresh
# recordsync on the memory store and an ephemeral port, then every operation of
# /v1/openapi.json with generated valid and invalid requests. It fails on any 5xx, on
# answers that do not match the document (status, content type, headers, body schema),
# and if the server crashes.
#
#   scripts/fuzz-rest.sh [extra schemathesis arguments...]
#
# schemathesis (pinned below) is installed from PyPI into .venv/ (ignored by git) the
# first time. FUZZ_REST_EXAMPLES bounds the examples per operation (default 200: under a
# minute on a debug build, well under the two minutes it may take); FUZZ_REST_STORAGE
# runs the server on another store (a postgres:// URL, say; default: memory). The server's log is kept in target/fuzz-rest.log.
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
venv=.venv
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  echo "scripts/fuzz-rest.sh: installing schemathesis $SCHEMATHESIS_VERSION into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

cargo build --workspace --locked --quiet
target_dir="${CARGO_TARGET_DIR:-target}"
bin="$target_dir/debug/recordsync"
log="$target_dir/fuzz-rest.log"
mkdir -p "$target_dir"

"$bin" serve --port 0 --storage "${FUZZ_REST_STORAGE:-memory}" --log-format json >"$log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
addr=""
for _ in $(seq 1 100); do
  addr=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$log" | head -1 | sed 's/listening on //' || true)
  [ -n "$addr" ] && break
  kill -0 "$server" 2>/dev/null || { cat "$log" >&2; echo "scripts/fuzz-rest.sh: the server did not start" >&2; exit 1; }
  sleep 0.1
done
[ -n "$addr" ] || { echo "scripts/fuzz-rest.sh: the server did not say where it listens" >&2; exit 1; }
echo "scripts/fuzz-rest.sh: fuzzing http://$addr/v1 (server log: $log)" >&2

status=0
"$venv/bin/schemathesis" run "http://$addr/v1/openapi.json" \
  --url "http://$addr" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
  --phases examples,coverage,fuzzing \
  --max-examples "${FUZZ_REST_EXAMPLES:-200}" \
  --request-timeout 10 \
  --workers 2 \
  --seed 1 \
  --suppress-health-check all \
  "$@" || status=$?

if ! kill -0 "$server" 2>/dev/null; then
  echo "scripts/fuzz-rest.sh: the server died during the run; its log:" >&2
  tail -50 "$log" >&2
  exit 1
fi
# the server answers still, and never panicked
curl -sf "http://$addr/health-check" >/dev/null || { echo "scripts/fuzz-rest.sh: the server stopped answering" >&2; exit 1; }
if grep -q '"panicked\|panicked at' "$log"; then
  echo "scripts/fuzz-rest.sh: the server panicked:" >&2
  grep -m5 'panicked' "$log" >&2
  exit 1
fi
exit "$status"
