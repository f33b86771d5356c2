#!/usr/bin/env bash
# Load benchmark of the decision service on loopback, bounded in time.
#
# Two servers on the example pack, both pinned to core 0 (only the one under load works): one
# with the decision log off, one with it on (JSON lines, durable by default: each response
# waits for its record to be written; AUDIT_DURABILITY=buffered|synced to change). wrk (pinned
# to core 1) drives, in turn:
#   - GET /healthz on the unlogged server (the HTTP floor);
#   - POST /access/v1/evaluation and POST /v1/check with the same input on every request
#     (answered by the decision cache after the first);
#   - the same two with a new input on every request (a support-ticket number that counts up,
#     bench/post_unique.lua: the uncached path);
#   - the two decision endpoints on the logged server;
#   - the uncached evaluation on a bare axum+Cedar server (crates/warden-server/examples/
#     bare_cedar.rs: the same pack and entities, every policy evaluated, no authentication,
#     guard, ids, logs or metrics), also on core 0: the baseline of Warden's own per-request
#     cost (issue #19).
# That sequence is one round; $ROUNDS rounds run back to back, so every row is measured at the
# same moments of this (noisy, shared) machine as the floor. Each row reports the median over
# the rounds of requests/s, p50 and p99, its ratio to the floor's median, and the lowest and
# highest per-round ratio to the floor of the same round. Prints a Markdown table. Needs wrk
# (Debian package `wrk`) and taskset.
#
# Usage: bash bench/load.sh        (ROUNDS=3 DURATION=5s CONNECTIONS=32 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
export LC_ALL=C # printf, sort -g and awk read and write numbers with a decimal point

ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-5s}"
CONNECTIONS="${CONNECTIONS:-32}"
PORT="${PORT:-18180}"
LOGGED_PORT="$((PORT + 1))"
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 2; }

cargo build --release -q -p warden
cargo build --release -q -p warden-server --example bare_cedar
WARDEN=target/release/warden
BARE=target/release/examples/bare_cedar
BARE_PORT="$((PORT + 2))"
WORK="$(mktemp -d)"
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true; rm -rf "$WORK"' EXIT

PEP_SECRET="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
PEP_DIGEST="$(printf '%s' "$PEP_SECRET" | sha256sum | cut -d' ' -f1)"
export WARDEN_BENCH_HS256_SECRET="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
write_config() { # file port audit-section
cat > "$1" <<TOML
[server]
listen = "127.0.0.1:$2"
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
$3
TOML
}
write_config "$WORK/warden.toml" "$PORT" "enabled = false"
write_config "$WORK/warden-audit.toml" "$LOGGED_PORT" "dir = \"$WORK/audit\"
durability = \"${AUDIT_DURABILITY:-durable}\""

start_server() { # config port log
  RUST_LOG=warn taskset -c 0 "$WARDEN" serve --config "$1" > "$3" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$2/readyz" >/dev/null && return 0
    sleep 0.1
  done
  echo "the server on port $2 did not start:" >&2; cat "$3" >&2; exit 1
}
start_server "$WORK/warden.toml" "$PORT" "$WORK/server.log"
start_server "$WORK/warden-audit.toml" "$LOGGED_PORT" "$WORK/server-audit.log"
taskset -c 0 "$BARE" examples/saas examples/saas/entities.json "$BARE_PORT" > "$WORK/bare.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do
  curl -s -o /dev/null -X POST -H 'Content-Type: application/json' -d '{}' "http://127.0.0.1:$BARE_PORT/access/v1/evaluation" && break
  sleep 0.1
done
USER_TOKEN="$("$WARDEN" token mint --config "$WORK/warden.toml" --issuer https://bench.warden.local --sub carol --claim org_id=acme --ttl 3600)"

EVAL_BODY='{"subject":{"type":"User","id":"acme/carol"},"action":{"name":"read"},"resource":{"type":"Document","id":"acme/roadmap"}}'
CHECK_BODY='{"action":"read","resource":{"type":"Document","id":"acme/roadmap"}}'
EVAL_PREFIX='{"subject":{"type":"User","id":"acme/carol"},"action":{"name":"read"},"resource":{"type":"Document","id":"acme/roadmap"},"context":{"support_ticket":"T-'
CHECK_PREFIX='{"action":"read","resource":{"type":"Document","id":"acme/roadmap"},"context":{"support_ticket":"T-'

ROWS=(floor eval check eval_new check_new bare_new eval_logged check_logged)
declare -A NAME=(
  [floor]="GET /healthz (floor)"
  [eval]="POST /access/v1/evaluation"
  [check]="POST /v1/check"
  [eval_new]="POST /access/v1/evaluation, every input new"
  [check_new]="POST /v1/check, every input new"
  [bare_new]="bare axum+Cedar evaluation, every input new (baseline)"
  [eval_logged]="POST /access/v1/evaluation, decision log on"
  [check_logged]="POST /v1/check, decision log on"
)

# Runs wrk; prints "requests/s p50_ms p99_ms non2xx" (a run that failed prints zeros, and wrk's
# socket errors go to stderr).
drive() { # url [wrk args…]
  local url="$1"; shift
  taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency "$@" "$url" 2>&1 | awk '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    /Requests\/sec/ {rps = $2} $1 == "50%" {p50 = ms($2)} $1 == "99%" {p99 = ms($2)} /Non-2xx/ {errors = $5}
    /Socket errors/ {print "wrk: " $0 > "/dev/stderr"}
    END {printf "%s %.3f %.3f %d\n", (rps == "" ? 0 : rps), p50, p99, errors}'
}

measure() { # row round
  local base="http://127.0.0.1:$PORT" logged="http://127.0.0.1:$LOGGED_PORT"
  case "$1" in
    floor) drive "$base/healthz" ;;
    eval) BODY="$EVAL_BODY" TOKEN="$PEP_SECRET" drive "$base/access/v1/evaluation" -s bench/post.lua ;;
    check) BODY="$CHECK_BODY" TOKEN="$USER_TOKEN" drive "$base/v1/check" -s bench/post.lua ;;
    # The round number keeps each round's inputs new to the cache too.
    eval_new) BODY_PREFIX="${EVAL_PREFIX}r$2-" BODY_SUFFIX='"}}' TOKEN="$PEP_SECRET" drive "$base/access/v1/evaluation" -s bench/post_unique.lua ;;
    check_new) BODY_PREFIX="${CHECK_PREFIX}r$2-" BODY_SUFFIX='"}}' TOKEN="$USER_TOKEN" drive "$base/v1/check" -s bench/post_unique.lua ;;
    bare_new) BODY_PREFIX="${EVAL_PREFIX}b$2-" BODY_SUFFIX='"}}' drive "http://127.0.0.1:$BARE_PORT/access/v1/evaluation" -s bench/post_unique.lua ;;
    eval_logged) BODY="$EVAL_BODY" TOKEN="$PEP_SECRET" drive "$logged/access/v1/evaluation" -s bench/post.lua ;;
    check_logged) BODY="$CHECK_BODY" TOKEN="$USER_TOKEN" drive "$logged/v1/check" -s bench/post.lua ;;
  esac
}

declare -A RESULT # [row,round] = "rps p50 p99 errors"
for round in $(seq 1 "$ROUNDS"); do
  for row in "${ROWS[@]}"; do
    RESULT[$row,$round]="$(measure "$row" "$round")"
  done
  echo "round $round of $ROUNDS done" >&2
done
RECORDS="$(cat "$WORK"/audit/decisions*.jsonl | wc -l)"

median() { sort -g | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
column() { # row field(1-4)
  for round in $(seq 1 "$ROUNDS"); do echo "${RESULT[$1,$round]}" | cut -d' ' -f"$2"; done
}
FLOOR_RPS="$(column floor 1 | median)"
UNLOGGED_EVAL="$(column eval 1 | median)"
UNLOGGED_CHECK="$(column check 1 | median)"

echo "wrk -t1 -c$CONNECTIONS -d$DURATION, $ROUNDS rounds, server on core 0, wrk on core 1, $(date -u +%Y-%m-%d)"
echo
echo "| Endpoint | Requests/s (median) | Ratio to floor | Per-round ratio, min–max | Ratio to unlogged | p50 | p99 | Non-2xx |"
echo "|---|---|---|---|---|---|---|---|"
for row in "${ROWS[@]}"; do
  rps="$(column "$row" 1 | median)"
  p50="$(column "$row" 2 | median)"
  p99="$(column "$row" 3 | median)"
  errors="$(column "$row" 4 | awk '{s += $1} END {print s}')"
  ratio="$(awk -v a="$rps" -v b="$FLOOR_RPS" 'BEGIN {printf "%.2f", a / b}')"
  spread="$(for round in $(seq 1 "$ROUNDS"); do
      awk -v a="$(echo "${RESULT[$row,$round]}" | cut -d' ' -f1)" -v b="$(echo "${RESULT[floor,$round]}" | cut -d' ' -f1)" 'BEGIN {printf "%.3f\n", a / b}'
    done | sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END {printf "%.2f–%.2f", lo, hi}')"
  case "$row" in
    eval_logged) logged="$(awk -v a="$rps" -v b="$UNLOGGED_EVAL" 'BEGIN {printf "%.2f", a / b}')" ;;
    check_logged) logged="$(awk -v a="$rps" -v b="$UNLOGGED_CHECK" 'BEGIN {printf "%.2f", a / b}')" ;;
    *) logged="" ;;
  esac
  printf '| %s | %.0f | %s | %s | %s | %.2f ms | %.2f ms | %s |\n' "${NAME[$row]}" "$rps" "$ratio" "$spread" "$logged" "$p50" "$p99" "$errors"
done
echo
echo "decision-log lines written in the logged runs: $RECORDS"
BARE_RPS="$(column bare_new 1 | median)"
EVAL_NEW_RPS="$(column eval_new 1 | median)"
echo "uncached AuthZEN evaluation, Warden against the bare axum+Cedar server: $(awk -v a="$EVAL_NEW_RPS" -v b="$BARE_RPS" 'BEGIN {printf "%.2f", a / b}') (per round: $(for round in $(seq 1 "$ROUNDS"); do
  awk -v a="$(echo "${RESULT[eval_new,$round]}" | cut -d' ' -f1)" -v b="$(echo "${RESULT[bare_new,$round]}" | cut -d' ' -f1)" 'BEGIN {printf "%.2f ", a / b}'
done))"
