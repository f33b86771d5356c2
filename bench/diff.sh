#!/usr/bin/env bash
# `warden diff` at scale (issue #24): a decision log seeded through the real server with
# AuthZEN evaluations that are all distinct (carol reads acme/doc-N, N counting up, so the
# replay's dedupe never helps: the worst case), then `warden diff --json` against the example
# pack without its `viewers-read` permit, timed, with its peak memory. Prints one line:
#   records read, replayed, distinct requests, replay ms, total seconds, peak RSS (MiB).
#
# Usage: bash bench/diff.sh        (SEED=10s: how long wrk seeds the log)
# Needs wrk (Debian package `wrk`) and GNU time (/usr/bin/time). Builds the release binary.
set -euo pipefail
cd "$(dirname "$0")/.."
export LC_ALL=C

SEED="${SEED:-10s}"
PORT="${PORT:-18300}"
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "GNU time is needed: apt-get install time" >&2; exit 2; }

cargo build --release -q -p warden
WARDEN="${WARDEN_BIN:-target/release/warden}"
WORK="$(mktemp -d)"
PID=""
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$WORK"' EXIT

cat > "$WORK/warden.toml" <<TOML
[server]
listen = "127.0.0.1:$PORT"
[policy]
dir = "$PWD/examples/saas"
entities_file = "$PWD/examples/saas/entities.json"
watch = false
[peps]
allow_unauthenticated = true
[rate_limits]
failed_auth_per_minute = 0
[audit]
dir = "$WORK/audit"
durability = "buffered"
TOML

RUST_LOG=warn "$WARDEN" serve --config "$WORK/warden.toml" > "$WORK/server.log" 2>&1 &
PID=$!
for _ in $(seq 1 200); do
  curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break
  sleep 0.1
done
BODY_PREFIX='{"subject":{"type":"User","id":"acme/carol"},"action":{"name":"read"},"resource":{"type":"Document","id":"acme/doc-' \
BODY_SUFFIX='"}}' wrk -t1 -c16 -d"$SEED" -s bench/post_unique.lua "http://127.0.0.1:$PORT/access/v1/evaluation" > "$WORK/wrk.txt"
kill -TERM "$PID"
wait "$PID" 2>/dev/null || true
PID=""

mkdir -p "$WORK/candidate"
cp -r examples/saas/. "$WORK/candidate/"
python3 - "$WORK/candidate/documents.cedar" <<'PY'
import sys
path = sys.argv[1]
text = open(path).read()
start = text.index('@id("viewers-read")')
end = text.index("};", start) + 2
open(path, "w").write(text[:start] + text[end:])
PY

start=$(date +%s.%N)
/usr/bin/time -v -o "$WORK/time.txt" "$WARDEN" diff --config "$WORK/warden.toml" --policies "$WORK/candidate" --json > "$WORK/diff.json" || true
end=$(date +%s.%N)
python3 - "$WORK/diff.json" "$WORK/time.txt" "$start" "$end" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))["report"]
rss_kb = next(int(l.split(":")[1]) for l in open(sys.argv[2]) if "Maximum resident set size" in l)
total = float(sys.argv[4]) - float(sys.argv[3])
print(f"read {report['read']}, replayed {report['replayed']}, distinct {report['distinct_requests']}, "
      f"replay {report['elapsed_ms']} ms, total {total:.1f} s, peak RSS {rss_kb / 1024:.0f} MiB")
PY
