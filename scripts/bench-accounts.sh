#!/usr/bin/env bash
# The bridge (`qqbridge run`) with N password accounts against the emulator, both release
# processes: RSS per idle account, CPU while idle, restore time of stored sessions
# (benches/accounts.rs).
#
# Usage: scripts/bench-accounts.sh [N] [bench options…]    (N defaults to 1000)
#   bench options: --window SECS (10), --repeats R (3), --timeout SECS (1200),
#                  --connect-timeout SECS (400), --poll-hold SECS (60),
#                  --aggregate-metrics (metrics.per_account: false)
# Builds the release binary, raises the open-files limit as far as the hard limit allows (each
# account holds at least one connection in the bridge and one in the emulator, more while it
# logs in), then runs the bench.
set -euo pipefail

cd "$(dirname "$0")/.."

n="${1:-1000}"
if [[ $# -gt 0 ]]; then shift; fi
if ! [[ "$n" =~ ^[0-9]+$ ]] || [[ "$n" -eq 0 ]]; then
    echo "usage: $0 [N] [--window SECS] [--repeats R] [--timeout SECS]" \
        "[--connect-timeout SECS] [--poll-hold SECS] [--aggregate-metrics]" >&2
    exit 2
fi

# Per process: one descriptor per idle account (its poll), and some spare. Logins in flight
# need more; the bench reports the descriptors the bridge holds as it goes.
need=$((n + 256))
hard="$(ulimit -Hn)"
if [[ "$hard" == "unlimited" ]]; then
    target=$((n * 4 + 256))
else
    target="$hard"
fi
soft="$(ulimit -Sn)"
if [[ "$soft" != "unlimited" ]] && ((soft < target)); then
    ulimit -Sn "$target"
fi
echo "open-files limit: $(ulimit -Sn) (hard $hard); N=$n needs at least $need"
if [[ "$hard" != "unlimited" ]] && ((need > hard)); then
    echo "N=$n cannot fit under the hard limit of $hard open files: at most N≈$((hard - 256))." >&2
    exit 1
fi

cargo build --release --bin qqbridge
# The bench starts this binary for both children (emulator and bridge), each measured apart.
export QQBRIDGE_BIN="${CARGO_TARGET_DIR:-target}/release/qqbridge"
# The driver itself only reads /proc and /metrics: it runs from the dev profile, whose
# dependencies `cargo test` has built already (`cargo bench` would build every dependency a
# second time in release with the dev-dependencies' features, ~20 min on two cores). `--bench`
# tells it to run the full bench rather than the smoke run `cargo test` makes.
exec cargo test --bench accounts -- --bench "$n" "$@"
