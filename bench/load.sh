#!/usr/bin/env bash
# Load benchmark of the decision service on loopback, bounded in time.
#
# A server (pinned to core 0) on the example pack with the decision log off; wrk (pinned to
# core 1) drives, in turn, GET /healthz (the HTTP floor), POST /access/v1/evaluation and
# POST /v1/check, each for $DURATION with $CONNECTIONS connections: first the same input on
# every request (answered by the decision cache after the first), then a new input on every
# request (a support-ticket number that counts up: the uncached path). Then the same server
# configuration with the decision log on (JSON lines, durable: each response waits for its
# record to be written) for the two decision endpoints. Prints requests/s and p50/p99 per
# endpoint, the ratio to the floor and, for the logged runs, to the same endpoint unlogged, as
# a Markdown table. Needs wrk (Debian package `wrk`) and taskset.
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
write_config() { # file audit-section
cat > "$1" <<TOML
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
[audit]
$2
TOML
}
write_config "$WORK/warden.toml" "enabled = false"
write_config "$WORK/warden-audit.toml" "dir = \"$WORK/audit\"
durability = \"${AUDIT_DURABILITY:-durable}\""

start_server() { # config
  RUST_LOG=warn taskset -c 0 "$WARDEN" serve --config "$1" > "$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break
    sleep 0.1
  done
}
start_server "$WORK/warden.toml"
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

run_unique() { # name url body-prefix body-suffix token: every request a new input (cache misses)
  local out
  out="$(BODY_PREFIX="$3" BODY_SUFFIX="$4" TOKEN="$5" taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency -s bench/post_unique.lua "$2" 2>&1)"
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
# The same questions with a support ticket number that changes on every request: the decision
# cache never hits, so this is the cost of evaluating every decision.
EVAL_UNIQUE="$(run_unique "POST /access/v1/evaluation, every input new" "http://127.0.0.1:$PORT/access/v1/evaluation" '{"subject":{"type":"User","id":"acme/carol"},"action":{"name":"read"},"resource":{"type":"Document","id":"acme/roadmap"},"context":{"support_ticket":"T-' '"}}' "$PEP_SECRET")"
CHECK_UNIQUE="$(run_unique "POST /v1/check, every input new" "http://127.0.0.1:$PORT/v1/check" '{"action":"read","resource":{"type":"Document","id":"acme/roadmap"},"context":{"support_ticket":"T-' '"}}' "$USER_TOKEN")"
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
start_server "$WORK/warden-audit.toml"
EVAL_LOGGED="$(run "POST /access/v1/evaluation, decision log on" "http://127.0.0.1:$PORT/access/v1/evaluation" "$EVAL_BODY" "$PEP_SECRET")"
CHECK_LOGGED="$(run "POST /v1/check, decision log on" "http://127.0.0.1:$PORT/v1/check" "$CHECK_BODY" "$USER_TOKEN")"
RECORDS="$(cat "$WORK"/audit/decisions*.jsonl | wc -l)"

floor_rps="$(echo "$FLOOR" | cut -d'|' -f2)"
echo "wrk -t1 -c$CONNECTIONS -d$DURATION, server on core 0, wrk on core 1, $(date -u +%Y-%m-%d)"
echo
echo "| Endpoint | Requests/s | Ratio to floor | Ratio to unlogged | p50 | p99 | Non-2xx |"
echo "|---|---|---|---|---|---|---|"
eval_rps="$(echo "$EVAL" | cut -d'|' -f2)"
check_rps="$(echo "$CHECK" | cut -d'|' -f2)"
for line in "$FLOOR" "$EVAL" "$CHECK" "$EVAL_UNIQUE" "$CHECK_UNIQUE" "$EVAL_LOGGED" "$CHECK_LOGGED"; do
  IFS='|' read -r name rps p50 p99 errors <<<"$line"
  ratio="$(awk -v a="$rps" -v b="$floor_rps" 'BEGIN {printf "%.2f", a / b}')"
  case "$line" in
    *"every input new"*) logged="" ;;
    *evaluation,*) logged="$(awk -v a="$rps" -v b="$eval_rps" 'BEGIN {printf "%.2f", a / b}')" ;;
    *check,*) logged="$(awk -v a="$rps" -v b="$check_rps" 'BEGIN {printf "%.2f", a / b}')" ;;
    *) logged="" ;;
  esac
  echo "| $name | $rps | $ratio | $logged | $p50 | $p99 | $errors |"
done
echo
echo "decision-log lines written in the logged runs: $RECORDS"
