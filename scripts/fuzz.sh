#!/usr/bin/env bash
# Runs the cargo-fuzz targets of fuzz/ (issue 6): the poll2 decoder, the content decoder, the
# ptuiCB and ptui_checkVC parsers and the appservice transaction parser.
#
# Usage: scripts/fuzz.sh [SECONDS] [--jobs N] [--targets a,b,...] [--save-corpus]
#   SECONDS        run time per target (default 600)
#   --jobs N       run N targets at a time (default 1: one after another)
#   --targets LIST only these targets (default: all of fuzz/Cargo.toml's)
#   --save-corpus  merge the inputs that found new coverage into fuzz/corpus/<target>/
#                  (libFuzzer -merge=1: only inputs that add coverage, so the corpus stays small)
#
# Environment: FUZZ_TARGET_DIR, the cargo target dir of the instrumented build (default
# target/fuzz); FUZZ_RSS_MB, libFuzzer's memory limit (default 2048).
#
# Builds once (cargo fuzz build, no sanitizer: the code under test is safe Rust, and overflow
# checks are on in fuzz/Cargo.toml's profile), then runs each target binary on a scratch copy of
# its corpus, so the committed seeds change only with --save-corpus. Prints executions, exec/s
# and crashes per target; crashing inputs land in fuzz/artifacts/<target>/. Exits 1 on any
# crash, timeout or out-of-memory.
set -euo pipefail

cd "$(dirname "$0")/.."
SCRIPT_NAME=fuzz.sh
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

seconds=600
jobs=1
targets=""
save=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --jobs) jobs="${2:?--jobs needs a number}"; shift 2 ;;
        --targets) targets="${2:?--targets needs a list}"; shift 2 ;;
        --save-corpus) save=1; shift ;;
        -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
        *)
            [[ "$1" =~ ^[0-9]+$ ]] || die "usage: $0 [SECONDS] [--jobs N] [--targets a,b] [--save-corpus]"
            seconds="$1"; shift ;;
    esac
done
[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || die "--jobs must be a positive number"

need_cmd cargo "install Rust"
cargo fuzz --version >/dev/null 2>&1 || die "cargo-fuzz is missing: cargo install cargo-fuzz"

target_dir="$(realpath -m "${FUZZ_TARGET_DIR:-target/fuzz}")"
all_targets="$(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^qqbridge-fuzz$')"
if [[ -z "$targets" ]]; then
    targets="$(echo "$all_targets" | tr '\n' ' ')"
else
    targets="${targets//,/ }"
    for t in $targets; do
        grep -qx "$t" <<<"$all_targets" || die "no fuzz target '$t' (have: $(echo $all_targets))"
    done
fi

# The same flags on every build, so a second run reuses the first one's build.
build_flags=(-O --sanitizer none --codegen-units 16 --target-dir "$target_dir")
say "building the fuzz targets into $target_dir"
cargo fuzz build "${build_flags[@]}" || die "cargo fuzz build failed"
triple="$(rustc -vV | sed -n 's/^host: //p')"
bin_dir="$target_dir/$triple/release"

work="$(mktemp -d "${TMPDIR:-/tmp}/qqbridge-fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# run_target NAME: fuzzes NAME for $seconds; writes $work/NAME.result as
# "execs exec_per_s crashes new_units status".
run_target() {
    local t="$1" scratch="$work/$t.corpus" log="$work/$t.log" artifacts="fuzz/artifacts/$t"
    mkdir -p "$scratch" "$artifacts"
    local before status=0
    before="$(find "$artifacts" -type f | wc -l)"
    "$bin_dir/$t" "$scratch" "fuzz/corpus/$t" \
        -max_total_time="$seconds" -print_final_stats=1 -timeout=10 \
        -rss_limit_mb="${FUZZ_RSS_MB:-2048}" -artifact_prefix="$artifacts/" \
        >"$log" 2>&1 || status=$?
    local execs rate crashes units
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
    rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)"
    crashes=$(( $(find "$artifacts" -type f | wc -l) - before ))
    units="$(find "$scratch" -type f | wc -l)"
    if [[ "$save" -eq 1 && "$status" -eq 0 && "$units" -gt 0 ]]; then
        "$bin_dir/$t" -merge=1 "fuzz/corpus/$t" "$scratch" >>"$log" 2>&1 || status=$?
    fi
    if [[ "$status" -ne 0 ]]; then
        cp "$log" "$artifacts/last-failure.log"
        [[ "$crashes" -gt 0 ]] || crashes=1
    fi
    echo "${execs:-0} ${rate:-0} $crashes $units $status" >"$work/$t.result"
}

targets="$(echo $targets)"
say "fuzzing: $targets (${seconds}s each, $jobs at a time)"
running=0
for t in $targets; do
    if [[ "$running" -ge "$jobs" ]]; then
        wait -n || true
        running=$((running - 1))
    fi
    run_target "$t" &
    running=$((running + 1))
done
wait || true

failed=0
printf '%-12s %8s %12s %10s %8s %10s %14s\n' \
    target seconds executions 'exec/s' crashes new-units 'corpus files/KB'

for t in $targets; do
    read -r execs rate crashes units status <"$work/$t.result"
    corpus="$(find "fuzz/corpus/$t" -type f | wc -l)/$(du -sk --apparent-size "fuzz/corpus/$t" | cut -f1)"
    printf '%-12s %8s %12s %10s %8s %10s %14s\n' \
        "$t" "$seconds" "$execs" "$rate" "$crashes" "$units" "$corpus"
    if [[ "$crashes" -gt 0 || "$status" -ne 0 ]]; then
        failed=1
        say "$t failed (exit $status): see fuzz/artifacts/$t/last-failure.log"
    fi
done
exit "$failed"
