#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a time budget on the stable toolchain.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# SECONDS_PER_TARGET defaults to 20; TARGETs default to every target (`cargo fuzz list`).
# Installs cargo-fuzz when it is missing, builds all targets once without a sanitizer
# (RUSTC_BOOTSTRAP=1 lets stable rustc take the flags cargo-fuzz passes; AddressSanitizer's
# runtime only ships with nightly, and Warden has no unsafe code for it to check), then runs
# each target's binary in turn with libFuzzer's options. Exits non-zero when any target finds a crash (a panic, an abort, an
# input slower than FUZZ_INPUT_TIMEOUT seconds, or more than FUZZ_RSS_LIMIT_MB of memory);
# the input is left in fuzz/artifacts/<target>/.
#
# Corpora: the committed seeds in fuzz/corpus/<target>/ and fuzz/regressions/<target>/ are
# read, never written; what a run learns goes to fuzz/target/corpus/<target>/ (ignored by git),
# so the next run starts from it and the tree stays clean. Every cargo invocation is niced.
# Works without a terminal (CI=true, stdin closed). See fuzz/README.md.
set -euo pipefail

cd "$(dirname "$0")/.."

seconds="${1:-20}"
if [[ ! "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
    echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]" >&2
    exit 2
fi
shift || true
input_timeout="${FUZZ_INPUT_TIMEOUT:-10}"
rss_limit_mb="${FUZZ_RSS_LIMIT_MB:-2048}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    nice -n 19 cargo install cargo-fuzz --locked </dev/null
fi

export RUSTC_BOOTSTRAP=1
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

echo "== building the fuzz targets (release, no sanitizer)"
build_started=$(date +%s)
nice -n 19 cargo fuzz build -s none </dev/null
echo "   built in $(( $(date +%s) - build_started )) s"

# cargo-fuzz builds for the host by default, into fuzz/target/<host triple>/release/.
bin_dir="fuzz/target/$(rustc -vV | sed -n 's/^host: //p')/release"

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(nice -n 19 cargo fuzz list </dev/null)
fi

logs="fuzz/target/fuzz-logs"
mkdir -p "$logs"
summary=()
failed=()
for target in "${targets[@]}"; do
    work="fuzz/target/corpus/$target"
    mkdir -p "$work" "fuzz/corpus/$target"
    corpora=("$work" "fuzz/corpus/$target")
    if [ -d "fuzz/regressions/$target" ]; then
        corpora+=("fuzz/regressions/$target")
    fi
    log="$logs/$target.log"
    mkdir -p "fuzz/artifacts/$target"
    echo "== $target: ${seconds} s"
    status=0
    # The binary just built, run directly: `cargo fuzz run` would rebuild first whenever a
    # source file changed since, and the budget is for fuzzing.
    nice -n 19 "$bin_dir/$target" -artifact_prefix="fuzz/artifacts/$target/" \
        -max_total_time="$seconds" -timeout="$input_timeout" -rss_limit_mb="$rss_limit_mb" \
        -print_final_stats=1 "${corpora[@]}" </dev/null >"$log" 2>&1 || status=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    corpus=$(grep -Eo 'corp: [0-9]+/[0-9]+[a-zA-Z]*' "$log" | tail -n 1 | sed 's/corp: //')
    if [ "$status" -eq 0 ]; then
        summary+=("$(printf '%-15s ok     %10s runs  corpus %s' "$target" "${runs:-?}" "${corpus:-?}")")
    else
        failed+=("$target")
        summary+=("$(printf '%-15s FAILED %10s runs  (exit %s; log %s)' "$target" "${runs:-?}" "$status" "$log")")
        # The panic and the input that caused it.
        grep -E "panicked at|^SUMMARY|Test unit written to|ERROR: libFuzzer" "$log" | head -n 10 >&2 || true
    fi
done

echo "== summary (${seconds} s per target)"
printf '%s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzzing found crashes in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
