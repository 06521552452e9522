#!/usr/bin/env bash
# A throw-away Synapse homeserver for tests and demos (issue 4).
#
#   scripts/synapse.sh install                        venv $ROOT/.venv-synapse with matrix-synapse
#   scripts/synapse.sh start DIR PORT [REGISTRATION...]
#                                                     writes DIR/homeserver.yaml, starts Synapse on
#                                                     127.0.0.1:PORT, waits for /versions, DIR/pid
#   scripts/synapse.sh stop DIR                       stops the Synapse of DIR (pid file)
#   scripts/synapse.sh register-user DIR USER PASSWORD [--admin]
#
# `install` is idempotent and prints nothing when the venv is complete. Environment:
# SYNAPSE_SERVER_NAME (default "localhost"), SYNAPSE_VENV (default $ROOT/.venv-synapse),
# SYNAPSE_START_TIMEOUT seconds (default 120).

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${SYNAPSE_VENV:-$ROOT/.venv-synapse}
PY=$VENV/bin/python

say() { printf 'synapse.sh: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
usage() { sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

# install: the venv and matrix-synapse; silent when both are there.
install() {
    if [ -x "$PY" ] && "$PY" -c 'import synapse' >/dev/null 2>&1; then
        return 0
    fi
    command -v python3 >/dev/null 2>&1 || die "python3 is not installed"
    python3 -c 'import ensurepip, venv' >/dev/null 2>&1 \
        || die "python3 lacks venv/ensurepip (apt-get install python3-venv)"
    [ -x "$PY" ] || python3 -m venv "$VENV"
    "$PY" -m pip install -q --upgrade pip >/dev/null
    "$PY" -m pip install -q matrix-synapse
    "$PY" -c 'import synapse' || die "matrix-synapse did not install into $VENV"
}

need_installed() {
    [ -x "$PY" ] && "$PY" -c 'import synapse' >/dev/null 2>&1 \
        || die "Synapse is not installed: run scripts/synapse.sh install"
}

random_hex() { "$PY" -c 'import secrets; print(secrets.token_hex(32))'; }

# write_config DIR PORT REGISTRATION...: homeserver.yaml, log config and signing key in DIR.
write_config() {
    local dir=$1 port=$2
    shift 2
    local name=${SYNAPSE_SERVER_NAME:-localhost}
    local secret
    if [ -s "$dir/shared_secret" ]; then
        secret=$(cat "$dir/shared_secret")
    else
        secret=$(random_hex)
        (umask 077 && printf '%s\n' "$secret" >"$dir/shared_secret")
    fi
    cat >"$dir/log.config" <<EOF
version: 1
formatters:
  precise:
    format: '%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(request)s - %(message)s'
handlers:
  file:
    class: logging.FileHandler
    formatter: precise
    filename: $dir/homeserver.log
root:
  level: INFO
  handlers: [file]
disable_existing_loggers: false
EOF
    local rate="{per_second: 1000, burst_count: 10000}"
    {
        cat <<EOF
server_name: "$name"
public_baseurl: "http://127.0.0.1:$port/"
pid_file: $dir/pid
listeners:
  - port: $port
    bind_addresses: ["127.0.0.1"]
    type: http
    tls: false
    x_forwarded: false
    resources:
      - names: [client]
        compress: false
database:
  name: sqlite3
  args:
    database: $dir/homeserver.db
log_config: $dir/log.config
media_store_path: $dir/media_store
signing_key_path: $dir/signing.key
registration_shared_secret: "$secret"
macaroon_secret_key: "$(random_hex)"
form_secret: "$(random_hex)"
enable_registration: false
report_stats: false
trusted_key_servers: []
suppress_key_server_warning: true
enable_metrics: false
url_preview_enabled: false
rc_message: $rate
rc_registration: $rate
rc_registration_token_validity: $rate
rc_login:
  address: $rate
  account: $rate
  failed_attempts: $rate
rc_joins:
  local: $rate
  remote: $rate
rc_joins_per_room: $rate
rc_invites:
  per_room: $rate
  per_user: $rate
  per_issuer: $rate
rc_3pid_validation: $rate
rc_admin_redaction: $rate
rc_federation:
  window_size: 1000
  sleep_limit: 1000
  sleep_delay: 1
  reject_limit: 1000
  concurrent: 100
rc_presence:
  per_user: $rate
rc_delayed_event_mgmt: $rate
rc_room_creation: $rate
rc_reports: $rate
rc_media_create: $rate
app_service_config_files:
EOF
        if [ "$#" -eq 0 ]; then
            printf '  []\n'
        fi
        local reg
        for reg in "$@"; do
            [ -f "$reg" ] || die "no registration file $reg"
            printf '  - "%s"\n' "$(cd "$(dirname "$reg")" && pwd)/$(basename "$reg")"
        done
    } >"$dir/homeserver.yaml"
    if [ ! -s "$dir/signing.key" ]; then
        "$PY" -m synapse.app.homeserver -c "$dir/homeserver.yaml" --generate-keys >/dev/null
    fi
}

# start DIR PORT [REGISTRATION...]
start() {
    [ "$#" -ge 2 ] || usage
    need_installed
    local dir=$1 port=$2
    shift 2
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [ -s "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
        die "a Synapse already runs for $dir (pid $(cat "$dir/pid"))"
    fi
    rm -f "$dir/pid"
    write_config "$dir" "$port" "$@"
    "$PY" -m synapse.app.homeserver -c "$dir/homeserver.yaml" --daemonize \
        >>"$dir/stdout.log" 2>&1 || {
        tail -n 40 "$dir/stdout.log" "$dir/homeserver.log" >&2 2>/dev/null || true
        die "Synapse failed to start (logs above)"
    }
    local deadline=$((SECONDS + ${SYNAPSE_START_TIMEOUT:-120}))
    until curl -fsS -o /dev/null "http://127.0.0.1:$port/_matrix/client/versions" 2>/dev/null; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            tail -n 40 "$dir/homeserver.log" >&2 2>/dev/null || true
            stop "$dir" || true
            die "Synapse did not answer /versions on 127.0.0.1:$port within ${SYNAPSE_START_TIMEOUT:-120} s"
        fi
        if [ -s "$dir/pid" ] && ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
            tail -n 40 "$dir/homeserver.log" >&2 2>/dev/null || true
            die "Synapse exited during start-up (log tail above)"
        fi
        # Another process may take a port between its choice and Synapse's bind: say so at once
        # (exit 3) instead of waiting for the deadline, so a caller can pick another port.
        if grep -qs "Address already in use" "$dir/homeserver.log"; then
            stop "$dir" || true
            say "port $port is already in use"
            exit 3
        fi
        sleep 0.2
    done
    [ -s "$dir/pid" ] || die "Synapse answers but wrote no pid file $dir/pid"
}

# stop DIR: TERM, then KILL after 10 s; fine when nothing runs.
stop() {
    [ "$#" -eq 1 ] || usage
    local dir=$1 pid
    [ -s "$dir/pid" ] || return 0
    pid=$(cat "$dir/pid")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        local i
        for i in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$dir/pid"
}

# register-user DIR USER PASSWORD [--admin]: through the shared-secret admin API
# (POST /_synapse/admin/v1/register with an HMAC-SHA1 over nonce, user, password and admin flag;
# curl and openssl instead of register_new_matrix_user, which spends seconds importing Synapse).
register_user() {
    [ "$#" -ge 3 ] || usage
    local dir=$1 user=$2 password=$3 admin=notadmin admin_json=false
    if [ "${4:-}" = --admin ]; then
        admin=admin
        admin_json=true
    fi
    case "$user$password" in
        *'"'* | *'\'*) die "user and password must not contain quotes or backslashes" ;;
    esac
    command -v openssl >/dev/null 2>&1 || die "openssl is not installed"
    local port url nonce mac
    port=$(sed -n 's/^  - port: \([0-9]*\)$/\1/p' "$dir/homeserver.yaml")
    [ -n "$port" ] || die "no listener port in $dir/homeserver.yaml"
    url="http://127.0.0.1:$port/_synapse/admin/v1/register"
    nonce=$(curl -fsS "$url" | sed -n 's/.*"nonce" *: *"\([^"]*\)".*/\1/p')
    [ -n "$nonce" ] || die "no registration nonce from $url"
    mac=$(printf '%s\0%s\0%s\0%s' "$nonce" "$user" "$password" "$admin" \
        | openssl dgst -sha1 -hmac "$(cat "$dir/shared_secret")" | sed 's/^.*= *//')
    local body
    body=$(printf '{"nonce":"%s","username":"%s","password":"%s","admin":%s,"mac":"%s"}' \
        "$nonce" "$user" "$password" "$admin_json" "$mac")
    curl -sS -o "$dir/register-response.json" -w '%{http_code}' -H 'Content-Type: application/json' \
        -d "$body" "$url" | grep -qx 200 \
        || die "registering $user failed: $(cat "$dir/register-response.json")"
}

[ "$#" -ge 1 ] || usage
command=$1
shift
case "$command" in
    install) install "$@" ;;
    start) start "$@" ;;
    stop) stop "$@" ;;
    register-user) register_user "$@" ;;
    *) usage ;;
esac
