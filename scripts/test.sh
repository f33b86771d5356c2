#!/usr/bin/env bash
# Runs Warden's whole test suite: formatting, lints, every Rust test, the Python SDK's tests
# and the fault tests against the real server, the console's browser tests (Debian's Chromium,
# installed with apt-get when missing), schemathesis against the served OpenAPI
# document, and every fuzz target for a short budget (FUZZ_SECONDS per target, default 15).
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

echo "== the web console in Debian's Chromium (Playwright; screenshots in target/test-artifacts/console)"
WARDEN_BIN="${WARDEN_BIN:-$PWD/target/debug/warden}" bash scripts/test-console.sh

echo "== schemathesis against the served OpenAPI document (0 server errors)"
WARDEN_BIN="${WARDEN_BIN:-$PWD/target/debug/warden}" bash scripts/schemathesis.sh

echo "== fuzz targets on the stable toolchain, ${FUZZ_SECONDS:-15} s each"
bash scripts/fuzz.sh "${FUZZ_SECONDS:-15}"
