#!/usr/bin/env bash
# Every test qqbridge has: the README's test command (`.ci/run` runs exactly this).
#
# Idempotent and safe on a fresh clone: set-up steps install only what is missing (Synapse
# through scripts/synapse.sh, PostgreSQL through scripts/postgres.sh, Prometheus from Debian),
# one `step` line each, using `need_apt` (scripts/lib.sh) and `python_venv` below. Fails fast,
# naming the step.
#
# Environment: CARGO_TARGET_DIR is honoured; QQBRIDGE_TEST_SKIP_APT=1 makes `need_apt` fail
# instead of installing (for machines where this script must not touch the system);
# QQBRIDGE_CHAOS_SEED=N runs the small chaos run with another seed than its fixed one.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

START=$SECONDS
CURRENT_STEP="start-up"
DONE_STEPS=()

# say, die, need_cmd, as_root, need_apt
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"
SCRIPT_NAME=test.sh

PG_DIR=""
on_exit() {
    local status=$?
    postgres_down
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

# postgres_down: stops and deletes the throwaway cluster of `postgres_suite`, if one runs.
postgres_down() {
    if [ -n "$PG_DIR" ]; then
        scripts/postgres.sh stop "$PG_DIR/data" || say "could not stop the PostgreSQL cluster in $PG_DIR/data"
        rm -rf "$PG_DIR"
        PG_DIR=""
    fi
}

# postgres_suite: the store suite and the store-backed integration tests again on a throwaway
# PostgreSQL cluster (scripts/postgres.sh); each test creates and drops its own database in it.
# The cluster is stopped by the EXIT trap as well, so a failing test does not leave it running.
postgres_suite() {
    need_cmd python3 "install Python 3 (picks a free port)"
    scripts/postgres.sh install
    # Under /dev/shm (tmpfs, fast) or /var/tmp: the `postgres` user must reach it, and /tmp may
    # be private to root.
    PG_DIR=$(mktemp -d /dev/shm/qqbridge-pg.XXXXXX 2>/dev/null || mktemp -d /var/tmp/qqbridge-pg.XXXXXX)
    chmod 0755 "$PG_DIR"
    local port url
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    url=$(scripts/postgres.sh start "$PG_DIR/data" "$port")
    QQBRIDGE_TEST_POSTGRES_URL=$url cargo test --lib store
    QQBRIDGE_TEST_POSTGRES_URL=$url cargo test --test integration -- manager:: bridge:: bridge_members:: bridge_outbound::
    postgres_down
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

# chaos_small: the small chaos run (scripts/chaos.sh: emulator + bridge + Synapse, 200 messages
# each way, 2 SIGKILLs, Synapse stopped 10 s, 20 % faulted requests; a few minutes), with the
# issue's assertions: it fails on anything lost or duplicated toward Matrix, lost toward QQ,
# sent to the wrong chat or out of order; duplicates toward QQ are reported. A fixed seed, so
# that a failure repeats; its `cargo build` finds the debug binary `cargo test` built.
CHAOS_SEED=11
chaos_small() {
    scripts/chaos.sh --small --seed "${QQBRIDGE_CHAOS_SEED:-$CHAOS_SEED}"
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
step "test on PostgreSQL (store suite, manager, bridge against Synapse)" postgres_suite
step "chaos (small: crashes, a Synapse outage and faults; nothing lost either way)" chaos_small
step "doctest" cargo test --doc
step "fidelity (pandolia qqbot 2.3.11 against the emulator)" fidelity
step "demo (scripted exchange, no wait)" scripts/demo.sh --no-wait

CURRENT_STEP="summary"
say "OK: ${DONE_STEPS[*]} passed in $((SECONDS - START)) s"
