#!/usr/bin/env bash
# Soak: the decision service at saturation for a bounded time, with every input new (the
# uncached path), the decision log on (durable) and a SQLite store. Prints one line per window
# and a verdict; exits 1 when a criterion fails (issue #22):
#   - 0 errors (non-2xx answers and wrk socket errors) in every window;
#   - RSS at the end within 10% of RSS after the warm-up;
#   - p99 stable: no window's p99 above 2x the median window p99.
#
# The server runs on core 0, wrk on core 1 (64 connections, one thread). Requests alternate by
# window between POST /access/v1/evaluation (PEP credential) and POST /v1/check (an end user's
# token), each with a counter in the context so no two requests are the same.
#
# Usage: bash bench/soak.sh                 (SOAK_MINUTES=10 WARMUP_SECONDS=60 WINDOW_SECONDS=60)
# Needs wrk (Debian package `wrk`) and taskset. Builds the release binary.
set -euo pipefail
cd "$(dirname "$0")/.."
export LC_ALL=C

SOAK_MINUTES="${SOAK_MINUTES:-10}"
WARMUP_SECONDS="${WARMUP_SECONDS:-60}"
WINDOW_SECONDS="${WINDOW_SECONDS:-60}"
CONNECTIONS="${CONNECTIONS:-64}"
PORT="${PORT:-18190}"
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 2; }

cargo build --release -q -p warden
WARDEN="${WARDEN_BIN:-target/release/warden}"
WORK="$(mktemp -d)"
PID=""
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$WORK"' EXIT

PEP_SECRET="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
PEP_DIGEST="$(printf '%s' "$PEP_SECRET" | sha256sum | cut -d' ' -f1)"
export WARDEN_SOAK_HS256_SECRET="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
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
issuer = "https://soak.warden.local"
audiences = ["warden"]
algorithms = ["HS256"]
hs256_secret_env = "WARDEN_SOAK_HS256_SECRET"
[issuers.claims]
tenant = "org_id"
roles = "roles"
[audit]
dir = "$WORK/audit"
TOML

RUST_LOG=warn taskset -c 0 "$WARDEN" serve --config "$WORK/warden.toml" > "$WORK/server.log" 2>&1 &
PID=$!
for _ in $(seq 1 200); do
  curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break
  sleep 0.1
done
curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null || { echo "the server did not start:" >&2; cat "$WORK/server.log" >&2; exit 1; }
USER_TOKEN="$("$WARDEN" token mint --config "$WORK/warden.toml" --issuer https://soak.warden.local --sub carol --claim org_id=acme --ttl 86400)"

EVAL_PREFIX='{"subject":{"type":"User","id":"acme/carol"},"action":{"name":"read"},"resource":{"type":"Document","id":"acme/roadmap"},"context":{"support_ticket":"T-'
CHECK_PREFIX='{"action":"read","resource":{"type":"Document","id":"acme/roadmap"},"context":{"support_ticket":"T-'

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$PID/status"; }

# One window of load; prints "requests/s p50_ms p99_ms errors".
window() { # seconds tag index
  local url body_prefix token
  if [ $(( $3 % 2 )) -eq 0 ]; then
    url="http://127.0.0.1:$PORT/access/v1/evaluation"; body_prefix="$EVAL_PREFIX"; token="$PEP_SECRET"
  else
    url="http://127.0.0.1:$PORT/v1/check"; body_prefix="$CHECK_PREFIX"; token="$USER_TOKEN"
  fi
  BODY_PREFIX="${body_prefix}$2-$3-" BODY_SUFFIX='"}}' TOKEN="$token" \
    taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"$1s" --latency -s bench/post_unique.lua "$url" 2>&1 | awk '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    /Requests\/sec/ {rps = $2} $1 == "50%" {p50 = ms($2)} $1 == "99%" {p99 = ms($2)}
    /Non-2xx/ {errors += $5}
    /Socket errors/ {for (i = 3; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) errors += $i + 0}
    END {printf "%.0f %.3f %.3f %d\n", rps, p50, p99, errors}'
}

echo "soak: $SOAK_MINUTES windows of ${WINDOW_SECONDS}s after ${WARMUP_SECONDS}s warm-up, wrk -t1 -c$CONNECTIONS, server on core 0, $(date -u +%Y-%m-%dT%H:%MZ)"
# The warm-up runs both endpoints (half its time each), so the caches and pools of both
# paths are in RSS_WARM: the soak then measures growth, not the first use of a path.
warm_eval="$(window $(( WARMUP_SECONDS / 2 )) warm 0)"
warm_check="$(window $(( WARMUP_SECONDS - WARMUP_SECONDS / 2 )) warm 1)"
RSS_WARM="$(rss_kib)"
echo "warm-up: evaluation $warm_eval, check $warm_check (requests/s p50 p99 errors); RSS after warm-up ${RSS_WARM} KiB"
echo
echo "| Window | Endpoint | Requests/s | p50 (ms) | p99 (ms) | Errors | RSS (KiB) |"
echo "|---|---|---|---|---|---|---|"
P99S=()
ERRORS=0
RSS=0
for index in $(seq 1 "$SOAK_MINUTES"); do
  kill -0 "$PID" 2>/dev/null || { echo "the server died in window $index" >&2; cat "$WORK/server.log" >&2; exit 1; }
  read -r rps p50 p99 errors <<< "$(window "$WINDOW_SECONDS" soak "$index")"
  RSS="$(rss_kib)"
  endpoint=$([ $(( index % 2 )) -eq 0 ] && echo "/access/v1/evaluation" || echo "/v1/check")
  printf '| %d | %s | %s | %s | %s | %s | %s |\n' "$index" "$endpoint" "$rps" "$p50" "$p99" "$errors" "$RSS"
  P99S+=("$p99")
  ERRORS=$((ERRORS + errors))
done
RECORDS="$(cat "$WORK"/audit/*.jsonl 2>/dev/null | wc -l)"
MEDIAN_P99="$(printf '%s\n' "${P99S[@]}" | sort -g | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}')"
MAX_P99="$(printf '%s\n' "${P99S[@]}" | sort -g | tail -1)"
RSS_RATIO="$(awk -v a="$RSS" -v b="$RSS_WARM" 'BEGIN {printf "%.3f", a / b}')"
P99_RATIO="$(awk -v a="$MAX_P99" -v b="$MEDIAN_P99" 'BEGIN {printf "%.2f", a / b}')"
echo
echo "errors: $ERRORS; RSS end/after warm-up: $RSS_RATIO ($RSS_WARM -> $RSS KiB); p99 max/median: $P99_RATIO ($MAX_P99 / $MEDIAN_P99 ms); decision-log lines: $RECORDS"
verdict=0
[ "$ERRORS" -eq 0 ] || { echo "FAIL: $ERRORS errors"; verdict=1; }
awk -v r="$RSS_RATIO" 'BEGIN {exit !(r <= 1.10)}' || { echo "FAIL: RSS grew by more than 10%"; verdict=1; }
awk -v r="$P99_RATIO" 'BEGIN {exit !(r <= 2.0)}' || { echo "FAIL: p99 not stable"; verdict=1; }
[ "$verdict" -eq 0 ] && echo "PASS"
exit "$verdict"
