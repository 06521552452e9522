#!/usr/bin/env bash
# The emulator holding N concurrent long polls: RSS and CPU while idle (benches/emulator_polls.rs).
#
# Usage: scripts/bench-emulator.sh [N] [bench options…]    (N defaults to 10000)
#   bench options: --concurrency C (200), --window SECS (10), --repeats R (3),
#                  --timeout SECS (300), --poll-hold SECS (60),
#                  --wave (also measure the re-poll wave after the hold),
#                  --spread SECS (start the first polls over SECS seconds; use ~30 with --wave
#                  at N >= 5000, see benches/emulator_polls.rs), --one-port
# Builds the release binary, raises the open-files limit as far as the hard limit allows (each
# held poll is one socket in the emulator and one in the load generator), then runs the bench.
set -euo pipefail

cd "$(dirname "$0")/.."

n="${1:-10000}"
if [[ $# -gt 0 ]]; then shift; fi
if ! [[ "$n" =~ ^[0-9]+$ ]] || [[ "$n" -eq 0 ]]; then
    echo "usage: $0 [N] [--concurrency C] [--window SECS] [--repeats R] [--timeout SECS]" \
        "[--poll-hold SECS] [--wave] [--spread SECS] [--one-port]" >&2
    exit 2
fi

# Per process: one descriptor per held poll, about six per login in flight, and some spare.
concurrency=200
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    if [[ "${args[$i]}" == "--concurrency" ]] && ((i + 1 < ${#args[@]})); then
        concurrency="${args[$((i + 1))]}"
    fi
done
need=$((n + concurrency * 6 + 128))

hard="$(ulimit -Hn)"
if [[ "$hard" == "unlimited" ]]; then
    target="$need"
elif ((need > hard)); then
    target="$hard"
else
    target="$need"
fi
soft="$(ulimit -Sn)"
if [[ "$soft" != "unlimited" ]] && ((soft < target)); then
    ulimit -Sn "$target"
fi
echo "open-files limit: $(ulimit -Sn) (hard $hard); N=$n needs about $need"
if [[ "$hard" != "unlimited" ]] && ((need > hard)); then
    fits=$((hard - concurrency * 6 - 128))
    echo "N=$n cannot fit under the hard limit of $hard open files: at most N≈$fits." >&2
    echo "Raise the hard limit (e.g. /etc/security/limits.conf, or run as root) or lower N." >&2
    exit 1
fi

cargo build --release --bin qqbridge
# The bench starts this binary as the emulator child (its own process, measured apart).
export QQBRIDGE_BIN="${CARGO_TARGET_DIR:-target}/release/qqbridge"
exec cargo bench --bench emulator_polls -- "$n" "$@"
