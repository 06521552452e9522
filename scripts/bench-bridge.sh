#!/usr/bin/env bash
# The Matrix bridge's benchmarks (benches/bridge/): QQ → Matrix throughput against direct
# appservice sends, bridge-added latency, Matrix → QQ throughput, and the bridge core against a
# null homeserver (messages per CPU-second). Medians of R repeats, references in the same run.
#
# Usage: scripts/bench-bridge.sh [bench options…]
#   --repeats R (3)          --messages N (1000, QQ → Matrix and Matrix → QQ, per repeat)
#   --portals K (8)          --latency-samples L (200 bridged + 200 direct, per repeat)
#   --core-messages M (20000, the null-homeserver measure)
#   --send-interval-ms MS (0: the account's sender unpaced; production default 3000)
#   --timeout SECS (3600)    --core-only (skip Synapse: measure 4 alone)
#
# Installs Synapse into its venv if needed (scripts/synapse.sh install; SYNAPSE_VENV picks an
# existing one), then builds and runs the bench in the release profile: measure 4 runs the
# bridge core inside the bench process, so the bench itself must be optimised, and the emulator
# and bridge children are the release `qqbridge` built by the same command. The first build
# compiles every dependency in release with the dev-dependencies' features (long on two cores).
set -euo pipefail

cd "$(dirname "$0")/.."

if [[ " $* " != *" --core-only "* ]]; then
    scripts/synapse.sh install
fi
# cargo passes `--bench` to a harness-less bench: the full run, not the smoke run of `cargo test`.
exec cargo bench --bench bridge -- "$@"
