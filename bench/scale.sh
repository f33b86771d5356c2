#!/usr/bin/env bash
# Issue #20's scale benchmark: a million entities on PostgreSQL, two replicas (and a third
# started after the load), every figure printed in one run as a Markdown table (see
# bench/scale.py for what is measured and how). Bounded: every wait has a deadline.
#
# Usage: bash bench/scale.sh
#   ENTITIES=1000000 SEARCH_DOCS=100000 PARALLEL=2 (tenants imported at once) by default;
#   PG_BASE=postgres://postgres@127.0.0.1:5432 (a server where a database can be created).
set -euo pipefail
cd "$(dirname "$0")/.."

PG_BASE="${PG_BASE:-postgres://postgres@127.0.0.1:5432}"
DB="warden_scale_$$"
cargo build --release -q -p warden
psql "$PG_BASE/postgres" -qc "CREATE DATABASE $DB" >/dev/null
trap 'psql "$PG_BASE/postgres" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true' EXIT
WARDEN="$PWD/target/release/warden" PG_URL="$PG_BASE/$DB" python3 bench/scale.py
