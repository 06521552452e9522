#!/usr/bin/env bash
# A real Prometheus against qqbridge and its WebQQ emulator (issue 3): a stalled poll2 fires
# QqPollStalled for that account only, and every metric the Grafana dashboard queries is in
# /metrics. See tests/prometheus/alert_fires.py. Needs `prometheus` (Debian package) and python3.
# CARGO_TARGET_DIR is honoured.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v prometheus >/dev/null 2>&1 || { echo "prometheus is not installed (apt-get install prometheus)" >&2; exit 1; }
command -v python3 >/dev/null 2>&1 || { echo "python3 is not installed" >&2; exit 1; }

cargo build --quiet --bin qqbridge
exec python3 tests/prometheus/alert_fires.py "${CARGO_TARGET_DIR:-target}/debug/qqbridge"
