#!/usr/bin/env bash
# Load benchmark of the decision service on loopback, bounded in time.
#
# One server (pinned to core 0) on the example pack; wrk (pinned to core 1) drives, in turn,
# GET /healthz (the HTTP floor), POST /access/v1/evaluation and POST /v1/check, each for
# $DURATION with $CONNECTIONS connections. Prints requests/s and p50/p99 per endpoint and the
# ratio to the floor, as a Markdown table. Needs wrk (Debian package `wrk`) and taskset.
#
# Usage: bash bench/load.sh            (DURATION=10s CONNECTIONS=32 by default)
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-32}"
PORT="${PORT:-18180}"
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 2; }

cargo build --release -q -p warden
WARDEN=target/release/warden
WORK="$(mktemp -d)"
trap 'kill "$SERVER_PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT

PEP_SECRET="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
PEP_DIGEST="$(printf '%s' "$PEP_SECRET" | sha256sum | cut -d' ' -f1)"
export WARDEN_BENCH_HS256_SECRET="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
cat > "$WORK/warden.toml" <<TOML
[server]
listen = "127.0.0.1:$PORT"
[policy]
dir = "$PWD/examples/saas"
entities_file = "$PWD/examples/saas/entities.json"
watch = false
[peps]
credentials = ["sha256:$PEP_DIGEST"]
[[issuers]]
issuer = "https://bench.warden.local"
audiences = ["warden"]
algorithms = ["HS256"]
hs256_secret_env = "WARDEN_BENCH_HS256_SECRET"
[issuers.claims]
tenant = "org_id"
roles = "roles"
TOML

RUST_LOG=warn taskset -c 0 "$WARDEN" serve --config "$WORK/warden.toml" > "$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break
  sleep 0.1
done
USER_TOKEN="$("$WARDEN" token mint --config "$WORK/warden.toml" --issuer https://bench.warden.local --sub carol --claim org_id=acme --ttl 3600)"

run() { # name url body token
  local out
  if [ -z "$3" ]; then
    out="$(taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency "$2" 2>&1)"
  else
    out="$(BODY="$3" TOKEN="$4" taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency -s bench/post.lua "$2" 2>&1)"
  fi
  local rps p50 p99 errors
  rps="$(echo "$out" | awk '/Requests\/sec/ {print $2}')"
  p50="$(echo "$out" | awk '$1=="50%" {print $2}')"
  p99="$(echo "$out" | awk '$1=="99%" {print $2}')"
  errors="$(echo "$out" | awk '/Non-2xx/ {print $5}')"
  echo "$1|$rps|$p50|$p99|${errors:-0}"
}

EVAL_BODY='{"subject":{"type":"User","id":"acme/carol"},"action":{"name":"read"},"resource":{"type":"Document","id":"acme/roadmap"}}'
CHECK_BODY='{"action":"read","resource":{"type":"Document","id":"acme/roadmap"}}'

FLOOR="$(run "GET /healthz (floor)" "http://127.0.0.1:$PORT/healthz" "" "")"
EVAL="$(run "POST /access/v1/evaluation" "http://127.0.0.1:$PORT/access/v1/evaluation" "$EVAL_BODY" "$PEP_SECRET")"
CHECK="$(run "POST /v1/check" "http://127.0.0.1:$PORT/v1/check" "$CHECK_BODY" "$USER_TOKEN")"

floor_rps="$(echo "$FLOOR" | cut -d'|' -f2)"
echo "wrk -t1 -c$CONNECTIONS -d$DURATION, server on core 0, wrk on core 1, $(date -u +%Y-%m-%d)"
echo
echo "| Endpoint | Requests/s | Ratio to floor | p50 | p99 | Non-2xx |"
echo "|---|---|---|---|---|---|"
for line in "$FLOOR" "$EVAL" "$CHECK"; do
  IFS='|' read -r name rps p50 p99 errors <<<"$line"
  ratio="$(awk -v a="$rps" -v b="$floor_rps" 'BEGIN {printf "%.2f", a / b}')"
  echo "| $name | $rps | $ratio | $p50 | $p99 | $errors |"
done
