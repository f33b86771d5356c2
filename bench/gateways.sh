#!/usr/bin/env bash
# Gateway benchmark (issue #23): GET /v1/forward-auth (as nginx, Caddy or Traefik ask it: a
# route-table match, then the /v1/check pipeline) and Envoy ext_authz over gRPC
# (envoy.service.auth.v3.Authorization/Check, the same decision path) next to POST /v1/check and
# POST /access/v1/evaluation (the AuthZEN endpoint) for the same decision (carol reads
# acme/roadmap), with GET /healthz and grpc.health.v1 Check as the HTTP and gRPC floors, in one
# run. Two servers on the example pack, each with a SQLite store and the decision log on
# (durable), pinned to core 0: "ctx" signs a context token on every gateway allow
# ([context_token]), "plain" does not. Load on core 1: wrk (one thread, 32 connections) for HTTP,
# the grpc_load example (one thread, 32 HTTP/2 connections, one call in flight on each) for gRPC.
# Every request of a row is the same decision, so the decision cache answers after the first
# (the context token is signed anew on every allow): the rows compare the entry points' own
# costs. $ROUNDS rounds of every row back to back; each row gives the median requests/s, p50 and
# p99 over the rounds and its ratio to its floor's median (HTTP rows to /healthz, gRPC rows to
# the gRPC health check).
#
# Usage: bash bench/gateways.sh        (ROUNDS=3 DURATION=5s CONNECTIONS=32)
# Needs wrk (Debian package `wrk`) and taskset. Builds the release binary and the load example.
set -euo pipefail
cd "$(dirname "$0")/.."
export LC_ALL=C

ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-5s}"
CONNECTIONS="${CONNECTIONS:-32}"
PORT="${PORT:-18200}"
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 2; }

cargo build --release -q -p warden
cargo build --release -q -p warden-server --example grpc_load
WARDEN="${WARDEN_BIN:-target/release/warden}"
GRPC_LOAD=target/release/examples/grpc_load
WORK="$(mktemp -d)"
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$WORK"' EXIT
PLAIN_PORT=$((PORT + 1))
GRPC_PORT=$((PORT + 2))
PLAIN_GRPC_PORT=$((PORT + 3))
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$WORK/kek"

PEP_SECRET="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
PEP_DIGEST="$(printf '%s' "$PEP_SECRET" | sha256sum | cut -d' ' -f1)"
export WARDEN_BENCH_HS256_SECRET="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
# The server's configuration: $1 = name, $2 = HTTP port, $3 = gRPC port, $4 = extra TOML.
write_config() {
  mkdir -p "$WORK/$1"
  cat > "$WORK/$1/warden.toml" <<TOML
[server]
listen = "127.0.0.1:$2"
[grpc]
listen = "127.0.0.1:$3"
[policy]
dir = "$PWD/examples/saas"
entities_file = "$PWD/examples/saas/entities.json"
watch = false
[storage]
url = "sqlite://$WORK/$1/warden.db"
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
dir = "$WORK/$1/audit"
[[routes]]
method = "GET"
path = "/tenants/{tenant}/documents/{id}"
action = "read"
resource_type = "Document"
resource_id = "id"
tenant = "tenant"
$4
TOML
}
write_config ctx "$PORT" "$GRPC_PORT" "[tokens]
issuer = \"http://127.0.0.1:$PORT\"
key_encryption_key_file = \"$WORK/kek\"
[context_token]
audience = \"docs-app\""
write_config plain "$PLAIN_PORT" "$PLAIN_GRPC_PORT" ""

for name in ctx plain; do
  RUST_LOG=warn taskset -c 0 "$WARDEN" serve --config "$WORK/$name/warden.toml" > "$WORK/$name/server.log" 2>&1 &
  PIDS+=($!)
done
for port in "$PORT" "$PLAIN_PORT"; do
  for _ in $(seq 1 200); do
    curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break
    sleep 0.1
  done
  curl -sf "http://127.0.0.1:$port/readyz" >/dev/null || { echo "a server did not start:" >&2; cat "$WORK"/*/server.log >&2; exit 1; }
done
TOKEN="$("$WARDEN" token mint --config "$WORK/plain/warden.toml" --issuer https://bench.warden.local --sub carol --claim org_id=acme --ttl 86400)"
URI="/tenants/acme/documents/roadmap"
# The three decision rows must agree before they are timed.
fa="$(curl -s -o /dev/null -w '%{http_code}' -H 'X-Forwarded-Method: GET' -H "X-Forwarded-Uri: $URI" -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/v1/forward-auth")"
ck="$(curl -s -H 'Content-Type: application/json' -H "Authorization: Bearer $TOKEN" -d '{"action":"read","resource":{"type":"Document","id":"acme/roadmap"}}' "http://127.0.0.1:$PORT/v1/check" | sed -n 's/.*"decision":"\([a-z]*\)".*/\1/p')"
[ "$fa" = 200 ] && [ "$ck" = allow ] || { echo "forward-auth ($fa) and /v1/check ($ck) disagree or deny" >&2; exit 1; }
ctx="$(curl -s -D - -o /dev/null -H 'X-Forwarded-Method: GET' -H "X-Forwarded-Uri: $URI" -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/v1/forward-auth" | grep -ci '^x-warden-context:' || true)"
[ "$ctx" = 1 ] || { echo "the ctx server sent no context token" >&2; exit 1; }
"$GRPC_LOAD" --address "127.0.0.1:$GRPC_PORT" --token "$TOKEN" --path "$URI" --connections 1 --seconds 1 >/dev/null \
  || { echo "ext_authz does not allow the request" >&2; exit 1; }

EVAL_BODY='{"subject":{"type":"User","id":"acme/carol"},"action":{"name":"read"},"resource":{"type":"Document","id":"acme/roadmap"}}'
CHECK_BODY='{"action":"read","resource":{"type":"Document","id":"acme/roadmap"}}'

# One measurement: "requests/s p50_ms p99_ms".
measure() { # row
  local out
  case "$1" in
    floor) out="$(taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency "http://127.0.0.1:$PORT/healthz")" ;;
    evaluation) out="$(BODY="$EVAL_BODY" TOKEN="$PEP_SECRET" taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency -s bench/post.lua "http://127.0.0.1:$PORT/access/v1/evaluation")" ;;
    check) out="$(BODY="$CHECK_BODY" TOKEN="$TOKEN" taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency -s bench/post.lua "http://127.0.0.1:$PORT/v1/check")" ;;
    forward-auth) out="$(URI="$URI" TOKEN="$TOKEN" taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency -s bench/forward_auth.lua "http://127.0.0.1:$PLAIN_PORT/v1/forward-auth")" ;;
    forward-auth+ctx) out="$(URI="$URI" TOKEN="$TOKEN" taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency -s bench/forward_auth.lua "http://127.0.0.1:$PORT/v1/forward-auth")" ;;
    grpc-floor) taskset -c 1 "$GRPC_LOAD" --call health --address "127.0.0.1:$GRPC_PORT" --connections "$CONNECTIONS" --seconds "${DURATION%s}"; return ;;
    ext_authz) taskset -c 1 "$GRPC_LOAD" --address "127.0.0.1:$PLAIN_GRPC_PORT" --token "$TOKEN" --path "$URI" --connections "$CONNECTIONS" --seconds "${DURATION%s}"; return ;;
    ext_authz+ctx) taskset -c 1 "$GRPC_LOAD" --address "127.0.0.1:$GRPC_PORT" --token "$TOKEN" --path "$URI" --connections "$CONNECTIONS" --seconds "${DURATION%s}"; return ;;
  esac
  if printf '%s' "$out" | grep -q 'Non-2xx'; then
    echo "non-2xx answers in row $1:" >&2; printf '%s\n' "$out" >&2; exit 1
  fi
  printf '%s\n' "$out" | awk '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    /Requests\/sec/ {rps = $2} $1 == "50%" {p50 = ms($2)} $1 == "99%" {p99 = ms($2)}
    END {printf "%.0f %.3f %.3f\n", rps, p50, p99}'
}

ROWS=(floor evaluation check forward-auth forward-auth+ctx grpc-floor ext_authz ext_authz+ctx)
declare -A RESULTS
for round in $(seq 1 "$ROUNDS"); do
  for row in "${ROWS[@]}"; do
    RESULTS["$row,$round"]="$(measure "$row")"
  done
done
median() { sort -g | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
floor_rps="$(for r in $(seq 1 "$ROUNDS"); do echo "${RESULTS[floor,$r]}" | cut -d' ' -f1; done | median)"
grpc_floor_rps="$(for r in $(seq 1 "$ROUNDS"); do echo "${RESULTS[grpc-floor,$r]}" | cut -d' ' -f1; done | median)"
echo "gateways: $ROUNDS rounds of $DURATION per row, wrk -t1 -c$CONNECTIONS and grpc_load ($CONNECTIONS HTTP/2 connections), servers on core 0, decision log on (durable), $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "| Row | Requests/s (median) | / its floor | p50 (ms) | p99 (ms) |"
echo "|---|---|---|---|---|"
for row in "${ROWS[@]}"; do
  rps="$(for r in $(seq 1 "$ROUNDS"); do echo "${RESULTS[$row,$r]}" | cut -d' ' -f1; done | median)"
  p50="$(for r in $(seq 1 "$ROUNDS"); do echo "${RESULTS[$row,$r]}" | cut -d' ' -f2; done | median)"
  p99="$(for r in $(seq 1 "$ROUNDS"); do echo "${RESULTS[$row,$r]}" | cut -d' ' -f3; done | median)"
  base="$floor_rps"
  case "$row" in grpc-floor|ext_authz*) base="$grpc_floor_rps" ;; esac
  ratio="$(awk -v a="$rps" -v b="$base" 'BEGIN {printf "%.2f", a / b}')"
  printf '| %s | %s | %s | %s | %s |\n' "$row" "$rps" "$ratio" "$p50" "$p99"
done
