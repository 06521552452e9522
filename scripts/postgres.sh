#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for qqbridge's tests (store suite, later the Matrix suite).
#
#   scripts/postgres.sh install          Debian `postgresql` package, only when missing
#   scripts/postgres.sh start DIR PORT   initdb (as the `postgres` system user) into DIR, trust auth
#                                        on 127.0.0.1 only, unix socket in DIR, start, wait ready;
#                                        prints the URL postgres://postgres@127.0.0.1:PORT/postgres
#   scripts/postgres.sh stop DIR         fast shutdown of the cluster in DIR (no error if not running)
#
# Trust auth is for a test cluster bound to loopback only; never point it at real data. Export the
# printed URL as QQBRIDGE_TEST_POSTGRES_URL: each test creates and drops its own database in it.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"
SCRIPT_NAME=postgres.sh

# pg_bin: the directory of the newest installed server version's binaries (pg_ctl, initdb).
pg_bin() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -n "$dir" ] && [ -x "$dir/pg_ctl" ] || die "PostgreSQL server binaries not found: run '$0 install'"
    printf '%s\n' "$dir"
}

# as_postgres COMMAND...: runs as the `postgres` system user (initdb refuses to run as root).
as_postgres() {
    if [ "$(id -un)" = postgres ]; then
        "$@"
    elif [ "$(id -u)" -eq 0 ]; then
        need_cmd runuser "install util-linux (runuser)"
        runuser -u postgres -- "$@"
    else
        die "run as root or as the postgres user"
    fi
}

cmd_install() {
    need_apt postgresql
    id postgres >/dev/null 2>&1 || die "the postgresql package did not create the postgres user"
    pg_bin >/dev/null
}

cmd_start() {
    [ "$#" -eq 2 ] || die "usage: $0 start DIR PORT"
    local dir=$1 port=$2 bin
    bin=$(pg_bin)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    chown postgres: "$dir"
    chmod 0700 "$dir"
    as_postgres test -x "$dir" \
        || die "the postgres user cannot reach $dir (a parent directory is private); use e.g. /dev/shm or /var/tmp"
    if [ ! -f "$dir/PG_VERSION" ]; then
        # fsync off and no sync at initdb: a throwaway cluster trades durability for speed.
        local log
        log=$(mktemp)
        as_postgres "$bin/initdb" -D "$dir" -U postgres --auth=trust --no-sync -E UTF8 \
            --locale=C >"$log" 2>&1 || { cat "$log" >&2; rm -f "$log"; die "initdb failed"; }
        rm -f "$log"
        cat >>"$dir/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
CONF
        # Only loopback and the socket; trust is safe because nothing else can connect.
        cat >"$dir/pg_hba.conf" <<HBA
local all all trust
host  all all 127.0.0.1/32 trust
HBA
    fi
    as_postgres "$bin/pg_ctl" -D "$dir" -o "-p $port" -l "$dir/server.log" -w -t 30 start >/dev/null \
        || { tail -n 20 "$dir/server.log" >&2; die "pg_ctl start failed (port $port in use?)"; }
    "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -t 10 || die "server on port $port not ready"
    printf 'postgres://postgres@127.0.0.1:%s/postgres\n' "$port"
}

cmd_stop() {
    [ "$#" -eq 1 ] || die "usage: $0 stop DIR"
    local dir=$1 bin
    bin=$(pg_bin)
    [ -f "$dir/postmaster.pid" ] || return 0
    as_postgres "$bin/pg_ctl" -D "$dir" -m fast -w -t 30 stop >/dev/null
}

case "${1:-}" in
    install) shift; cmd_install "$@" ;;
    start) shift; cmd_start "$@" ;;
    stop) shift; cmd_stop "$@" ;;
    *) die "usage: $0 install | start DIR PORT | stop DIR" ;;
esac
