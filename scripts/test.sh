#!/usr/bin/env bash
# Runs Warden's whole test suite: formatting, lints, every Rust test, and the Python SDK's
# tests against the real server.
# Fails on the first failure. Used by `.ci/run` and by developers alike.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all --check

echo "== cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --quiet -- -D warnings

echo "== cargo test"
if [ -z "${WARDEN_TEST_POSTGRES_URL:-}" ]; then
  echo "note: WARDEN_TEST_POSTGRES_URL is not set: the PostgreSQL store tests are skipped (.ci/run sets it)"
fi
cargo test --workspace --quiet

echo "== Python SDK and the FastAPI example (against target/debug/warden, built by cargo test)"
WARDEN_BIN="${WARDEN_BIN:-$PWD/target/debug/warden}" bash scripts/test-python.sh
