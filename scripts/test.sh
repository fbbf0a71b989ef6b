#!/usr/bin/env bash
# Runs recordsync's whole test suite, on a fresh clone or an old checkout alike:
#   0. the checks the code must pass: rustfmt, clippy with the workspace's lints
#      (`[workspace.lints]` in Cargo.toml) and -D warnings, rustdoc without warnings;
#   1. the Rust workspace: unit, property, black-box and crash tests (cargo nextest, or
#      cargo test where nextest is not installed); the json0 differential test among them
#      runs node and installs its npm package itself
#      (crates/core/tests/json0-differential/install.sh);
#   2. the REST API fuzzed against its OpenAPI document with schemathesis
#      (scripts/fuzz-rest.sh, which installs it from PyPI into .venv/);
#   3. the interop suites with the real npm deepstream and sharedb clients, each first
#      against the real peer server (proving each test encodes what the peer does), then
#      against recordsync;
#   4. the web console in headless chromium (browser/run.sh: Debian's chromium driven by
#      playwright-core, with the real deepstream client and the CLI).
# It installs what it needs (npm packages via interop/install.sh and browser/install.sh,
# Debian's chromium via browser/install.sh), starts PostgreSQL, Redis
# and NATS when they are down (scripts/services.sh), and prints a summary.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n=== %s\n' "$*" >&2; }

step "services"
scripts/services.sh

step "format"
cargo fmt --all -- --check

step "build"
cargo build --workspace --all-targets --locked

step "lints"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "docs"
RUSTDOCFLAGS=-Dwarnings cargo doc --workspace --no-deps --locked

step "rust tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi

step "REST API fuzzed against its OpenAPI document (schemathesis)"
scripts/fuzz-rest.sh

step "interop: the real deepstream client against the real deepstream server"
interop/run.sh deepstream

step "interop: the real deepstream client against recordsync"
interop/run.sh recordsync

step "interop: the real sharedb client against the real ShareDB server"
interop/run.sh sharedb-peer

step "interop: the real sharedb client against recordsync"
interop/run.sh sharedb-recordsync

step "interop: the real sharedb client against recordsync on PostgreSQL"
interop/run.sh sharedb-recordsync-postgres

step "browser: the web console in headless chromium"
browser/run.sh
