#!/usr/bin/env bash
# Issue #19's policy-scale benchmark: the example pack plus 100, 10,000 and 100,000 tenant
# policies, each served in turn; prints compile time (time to ready), RSS, evaluation p50 with
# new inputs against /healthz, and evaluation throughput with new inputs next to /healthz
# (wrk, when installed: apt-get install wrk), in one Markdown table. See bench/policies.py.
#
# Usage: bash bench/policies.sh   (SIZES=100,10000,100000 ROUNDS=3 REQUESTS=1500 DURATION=5s)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p warden
WARDEN="$PWD/target/release/warden" python3 bench/policies.py
