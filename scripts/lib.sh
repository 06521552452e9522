#!/usr/bin/env bash
# Shared helpers of qqbridge's scripts (sourced, never run): messages, root, Debian packages.
#
# Environment: QQBRIDGE_TEST_SKIP_APT=1 makes `need_apt` fail instead of installing (for machines
# where the scripts must not touch the system). SCRIPT_NAME prefixes messages (default: $0's name).

say() { printf '%s: %s\n' "${SCRIPT_NAME:-$(basename "$0")}" "$*" >&2; }
die() { say "$*"; exit 1; }

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
