#!/usr/bin/env bash
# Fidelity test: builds qqbridge and runs pandolia's qqbot 2.3.11 (an unchanged SmartQQ client
# from PyPI) against the WebQQ emulator. Extra arguments go to the harness, e.g.
#   scripts/fidelity.sh --scenario demo --keep
# Honours CARGO_TARGET_DIR; the qqbot virtualenv is .venv-fidelity (FIDELITY_VENV overrides).
# Prints `N passed, M failed` last; exits non-zero if any check failed.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --bin qqbridge
target="${CARGO_TARGET_DIR:-target}"
python="${FIDELITY_PYTHON:-python3}"
exec "$python" tests/fidelity/qqbot_against_emulator.py \
    --binary "$target/debug/qqbridge" \
    --venv "${FIDELITY_VENV:-.venv-fidelity}" \
    "$@"
