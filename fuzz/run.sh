#!/usr/bin/env bash
# Builds the fuzz targets and runs each for SECONDS (default 60), one after the other; prints
# a table of executions and crashes per target. Crash inputs are kept under
# target/fuzz/artifacts/TARGET/ (reproduce: the target's binary with the file as argument);
# the corpus grows under target/fuzz/corpus/TARGET/, seeded from fuzz/seeds/TARGET/.
#
#   fuzz/run.sh [SECONDS] [TARGET...]
#
# Needs only stable cargo and a C++ compiler (libfuzzer-sys builds libFuzzer): the targets
# get coverage instrumentation through RUSTFLAGS, as `cargo fuzz build --sanitizer none`
# would, without cargo-fuzz or nightly. Exit status 1 if any target crashed.
# Env: FUZZ_PROFILE (cargo profile, default release; CI uses fuzz-ci, quicker to build),
# FUZZ_RUNS (stop a target after this many executions, SECONDS still the limit),
# FUZZ_JOBS (cargo -j), FUZZ_NICE (default 15), FUZZ_MAX_LEN (libFuzzer -max_len),
# FUZZ_TARGET_DIR (default target/fuzz at the repository root).
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_PER_TARGET=${1:-60}
shift || true
root=$(cd .. && pwd)
tdir=${FUZZ_TARGET_DIR:-$root/target/fuzz}
triple=$(rustc -vV | sed -n 's/^host: //p')
all=$(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v '^warren-fuzz$')
targets=${*:-$all}

# Flags as cargo-fuzz sets them. An explicit --target keeps them off build scripts and proc
# macros, which must not be instrumented.
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Cllvm-args=-sanitizer-coverage-stack-depth \
--cfg fuzzing"
profile=${FUZZ_PROFILE:-release}
nice -n "${FUZZ_NICE:-15}" cargo build --locked --profile "$profile" --target "$triple" \
    --target-dir "$tdir" ${FUZZ_JOBS:+-j "$FUZZ_JOBS"} --bins
bin=$tdir/$triple/$profile

results=()
failed=0
for t in $targets; do
    corpus=$tdir/corpus/$t
    artifacts=$tdir/artifacts/$t
    mkdir -p "$corpus" "$artifacts"
    log=$tdir/logs/$t.log
    mkdir -p "$(dirname "$log")"
    before=$(find "$artifacts" -type f | wc -l)
    start=$(date +%s)
    status=0
    nice -n "${FUZZ_NICE:-15}" "$bin/$t" "$corpus" "seeds/$t" \
        -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 \
        -artifact_prefix="$artifacts/" ${FUZZ_MAX_LEN:+-max_len="$FUZZ_MAX_LEN"} \
        ${FUZZ_RUNS:+-runs="$FUZZ_RUNS"} \
        >"$log" 2>&1 || status=$?
    secs=$(( $(date +%s) - start ))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    crashes=$(( $(find "$artifacts" -type f | wc -l) - before ))
    if [ "$status" -ne 0 ] && [ "$crashes" -eq 0 ]; then
        crashes=1 # died without writing an artifact (e.g. out of memory): see the log
    fi
    if [ "$crashes" -ne 0 ]; then
        failed=1
        echo "== $t crashed; log $log, inputs in $artifacts:" >&2
        grep -m5 -E "panicked|ERROR|SUMMARY" "$log" >&2 || tail -20 "$log" >&2
    fi
    results+=("$(printf '%-14s %14s %9s %8s' "$t" "${execs:-?}" "$secs" "$crashes")")
done

printf '%-14s %14s %9s %8s\n' target executions seconds crashes
printf '%s\n' "${results[@]}"
exit $failed
