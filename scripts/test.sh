#!/usr/bin/env bash
# Runs Warden's whole test suite: formatting, lints, and every Rust test.
# Fails on the first failure. Used by `.ci/run` and by developers alike.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all --check

echo "== cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --quiet -- -D warnings

echo "== cargo test"
cargo test --workspace --quiet
