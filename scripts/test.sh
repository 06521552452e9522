#!/usr/bin/env bash
# Every test qqbridge has: the README's test command (`.ci/run` runs exactly this).
#
# Idempotent and safe on a fresh clone: set-up steps install only what is missing (Synapse for
# the Matrix tests through scripts/synapse.sh; later PostgreSQL the same way, one `step` line
# each, using `need_apt` and `python_venv` below). Fails fast, naming the step.
#
# Environment: CARGO_TARGET_DIR is honoured; QQBRIDGE_TEST_SKIP_APT=1 makes `need_apt` fail
# instead of installing (for machines where this script must not touch the system).

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

START=$SECONDS
CURRENT_STEP="start-up"
DONE_STEPS=()

say() { printf 'test.sh: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

on_exit() {
    local status=$?
    if [ "$status" -ne 0 ]; then
        say "FAILED in step '${CURRENT_STEP}' (exit ${status}) after $((SECONDS - START)) s"
    fi
}
trap on_exit EXIT

# step NAME COMMAND...: runs one step under its name, so a failure says which step broke.
step() {
    CURRENT_STEP=$1
    shift
    printf '\n==> %s\n' "$CURRENT_STEP" >&2
    "$@"
    DONE_STEPS+=("$CURRENT_STEP")
}

# need_cmd COMMAND HINT: fails with HINT when COMMAND is not on PATH.
need_cmd() {
    command -v "$1" >/dev/null 2>&1 || die "'$1' is not installed: $2"
}

# as_root COMMAND...: runs as root, through sudo when needed.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root to run '$*' (no sudo)"
    fi
}

APT_UPDATED=0
# need_apt PACKAGE...: installs the Debian packages that are missing; `apt-get update` runs at
# most once per run, and not at all when everything is already installed.
need_apt() {
    local missing=() pkg
    for pkg in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$pkg")
        fi
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    need_cmd apt-get "install these packages by hand: ${missing[*]}"
    [ "${QQBRIDGE_TEST_SKIP_APT:-0}" = 1 ] && die "missing packages (QQBRIDGE_TEST_SKIP_APT=1): ${missing[*]}"
    if [ "$APT_UPDATED" -eq 0 ]; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
        APT_UPDATED=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# python_venv [PIP_PACKAGE...]: creates $ROOT/.venv with `python3 -m venv` unless it exists, then
# installs the pip packages it lacks. Prints nothing on a second run.
python_venv() {
    need_cmd python3 "install Python 3"
    if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
        need_apt python3-venv
    fi
    if [ ! -x "$ROOT/.venv/bin/python" ]; then
        python3 -m venv "$ROOT/.venv"
    fi
    local missing=() pkg
    for pkg in "$@"; do
        "$ROOT/.venv/bin/python" -m pip show -q "${pkg%%[<>=!~ ]*}" >/dev/null 2>&1 || missing+=("$pkg")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        "$ROOT/.venv/bin/python" -m pip install -q "${missing[@]}"
    fi
}

# rust_toolchain: cargo with rustfmt and clippy (components added through rustup when missing).
rust_toolchain() {
    need_cmd cargo "install Rust 1.95 (https://rustup.rs), then run this again"
    local component
    for component in rustfmt clippy; do
        local probe=$component
        [ "$component" = rustfmt ] && probe=fmt
        if ! cargo "$probe" --version >/dev/null 2>&1; then
            need_cmd rustup "install the Rust '$component' component"
            rustup component add "$component"
        fi
    done
}

# promtool: the alert rules of metrics/prometheus/ are valid and their unit tests pass (the
# Debian `prometheus` package ships /usr/bin/promtool).
promtool_rules() {
    need_apt prometheus
    need_cmd promtool "install Prometheus' promtool"
    promtool check rules metrics/prometheus/alerts.yaml
    promtool test rules metrics/prometheus/alerts.test.yaml
}

fidelity() {
    need_cmd python3 "install Python 3"
    if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
        need_apt python3-venv
    fi
    scripts/fidelity.sh
}

# synapse: the homeserver the Matrix integration tests start (tests/integration/synapse.rs) in
# $ROOT/.venv-synapse; silent when it is already installed.
synapse() {
    need_cmd python3 "install Python 3"
    if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
        need_apt python3-venv
    fi
    need_cmd curl "install curl (scripts/synapse.sh polls the homeserver with it)"
    scripts/synapse.sh install
}

# ---- set-up -----------------------------------------------------------------------------------
step "toolchain" rust_toolchain
step "synapse" synapse

# ---- checks and tests -------------------------------------------------------------------------
step "fmt" cargo fmt --all -- --check
step "clippy" cargo clippy --all-targets -- -D warnings
step "promtool" promtool_rules
step "prometheus (real server, stalled poll fires QqPollStalled)" scripts/prometheus-test.sh
step "test" cargo test --all-targets
step "doctest" cargo test --doc
step "fidelity (pandolia qqbot 2.3.11 against the emulator)" fidelity
step "demo (scripted exchange, no wait)" scripts/demo.sh --no-wait

CURRENT_STEP="summary"
say "OK: ${DONE_STEPS[*]} passed in $((SECONDS - START)) s"
