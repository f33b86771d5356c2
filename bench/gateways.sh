#!/usr/bin/env bash
# Gateway benchmark (issue #23): GET /v1/forward-auth (as nginx, Caddy or Traefik ask it: a
# route-table match, then the /v1/check pipeline) next to POST /v1/check and
# POST /access/v1/evaluation for the same decision (carol reads acme/roadmap), and GET /healthz
# as the HTTP floor, in one run. One server on the example pack with a SQLite store and the
# decision log on (durable), pinned to core 0; wrk (one thread, 32 connections) on core 1. Every
# request of a row is the same decision, so the decision cache answers after the first: the rows
# compare the entry points' own costs. $ROUNDS rounds of every row back to back; each row gives
# the median requests/s, p50 and p99 over the rounds and its ratio to the floor's median.
#
# Usage: bash bench/gateways.sh        (ROUNDS=3 DURATION=5s CONNECTIONS=32)
# Needs wrk (Debian package `wrk`) and taskset. Builds the release binary.
set -euo pipefail
cd "$(dirname "$0")/.."
export LC_ALL=C

ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-5s}"
CONNECTIONS="${CONNECTIONS:-32}"
PORT="${PORT:-18200}"
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 2; }

cargo build --release -q -p warden
WARDEN="${WARDEN_BIN:-target/release/warden}"
WORK="$(mktemp -d)"
PID=""
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$WORK"' EXIT

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
[storage]
url = "sqlite://$WORK/warden.db"
[peps]
credentials = ["sha256:$PEP_DIGEST"]
[rate_limits]
failed_auth_per_minute = 0
[[issuers]]
issuer = "https://bench.warden.local"
audiences = ["warden"]
algorithms = ["HS256"]
hs256_secret_env = "WARDEN_BENCH_HS256_SECRET"
[issuers.claims]
tenant = "org_id"
roles = "roles"
[audit]
dir = "$WORK/audit"
[[routes]]
method = "GET"
path = "/tenants/{tenant}/documents/{id}"
action = "read"
resource_type = "Document"
resource_id = "id"
tenant = "tenant"
TOML

RUST_LOG=warn taskset -c 0 "$WARDEN" serve --config "$WORK/warden.toml" > "$WORK/server.log" 2>&1 &
PID=$!
for _ in $(seq 1 200); do
  curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break
  sleep 0.1
done
curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null || { echo "the server did not start:" >&2; cat "$WORK/server.log" >&2; exit 1; }
TOKEN="$("$WARDEN" token mint --config "$WORK/warden.toml" --issuer https://bench.warden.local --sub carol --claim org_id=acme --ttl 86400)"
URI="/tenants/acme/documents/roadmap"
# The three decision rows must agree before they are timed.
fa="$(curl -s -o /dev/null -w '%{http_code}' -H 'X-Forwarded-Method: GET' -H "X-Forwarded-Uri: $URI" -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/v1/forward-auth")"
ck="$(curl -s -H 'Content-Type: application/json' -H "Authorization: Bearer $TOKEN" -d '{"action":"read","resource":{"type":"Document","id":"acme/roadmap"}}' "http://127.0.0.1:$PORT/v1/check" | sed -n 's/.*"decision":"\([a-z]*\)".*/\1/p')"
[ "$fa" = 200 ] && [ "$ck" = allow ] || { echo "forward-auth ($fa) and /v1/check ($ck) disagree or deny" >&2; exit 1; }

EVAL_BODY='{"subject":{"type":"User","id":"acme/carol"},"action":{"name":"read"},"resource":{"type":"Document","id":"acme/roadmap"}}'
CHECK_BODY='{"action":"read","resource":{"type":"Document","id":"acme/roadmap"}}'

# One measurement: "requests/s p50_ms p99_ms".
measure() { # row
  local out
  case "$1" in
    floor) out="$(taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency "http://127.0.0.1:$PORT/healthz")" ;;
    evaluation) out="$(BODY="$EVAL_BODY" TOKEN="$PEP_SECRET" taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency -s bench/post.lua "http://127.0.0.1:$PORT/access/v1/evaluation")" ;;
    check) out="$(BODY="$CHECK_BODY" TOKEN="$TOKEN" taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency -s bench/post.lua "http://127.0.0.1:$PORT/v1/check")" ;;
    forward-auth) out="$(URI="$URI" TOKEN="$TOKEN" taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency -s bench/forward_auth.lua "http://127.0.0.1:$PORT/v1/forward-auth")" ;;
  esac
  if printf '%s' "$out" | grep -q 'Non-2xx'; then
    echo "non-2xx answers in row $1:" >&2; printf '%s\n' "$out" >&2; exit 1
  fi
  printf '%s\n' "$out" | awk '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    /Requests\/sec/ {rps = $2} $1 == "50%" {p50 = ms($2)} $1 == "99%" {p99 = ms($2)}
    END {printf "%.0f %.3f %.3f\n", rps, p50, p99}'
}

ROWS=(floor evaluation check forward-auth)
declare -A RESULTS
for round in $(seq 1 "$ROUNDS"); do
  for row in "${ROWS[@]}"; do
    RESULTS["$row,$round"]="$(measure "$row")"
  done
done
median() { sort -g | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
floor_rps="$(for r in $(seq 1 "$ROUNDS"); do echo "${RESULTS[floor,$r]}" | cut -d' ' -f1; done | median)"
echo "gateways: $ROUNDS rounds of $DURATION per row, wrk -t1 -c$CONNECTIONS, server on core 0, decision log on (durable), $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "| Row | Requests/s (median) | / floor | p50 (ms) | p99 (ms) |"
echo "|---|---|---|---|---|"
for row in "${ROWS[@]}"; do
  rps="$(for r in $(seq 1 "$ROUNDS"); do echo "${RESULTS[$row,$r]}" | cut -d' ' -f1; done | median)"
  p50="$(for r in $(seq 1 "$ROUNDS"); do echo "${RESULTS[$row,$r]}" | cut -d' ' -f2; done | median)"
  p99="$(for r in $(seq 1 "$ROUNDS"); do echo "${RESULTS[$row,$r]}" | cut -d' ' -f3; done | median)"
  ratio="$(awk -v a="$rps" -v b="$floor_rps" 'BEGIN {printf "%.2f", a / b}')"
  printf '| %s | %s | %s | %s | %s |\n' "$row" "$rps" "$ratio" "$p50" "$p99"
done
