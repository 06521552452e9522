#!/usr/bin/env bash
# The demo (issue 4): the whole bridge on this machine. A throw-away Synapse (scripts/synapse.sh),
# the WebQQ emulator with its demo world, and `qqbridge run` with the Matrix side on, bridging QQ
# account 10001 for the Matrix user @alice:localhost. A scripted conversation goes both ways (a
# friend chat with a face, a group, a picture; scripts/demo-exchange.py) and is printed as a
# transcript with what each side saw; then alice logs QQ account 10002 in from Matrix (a DM with
# the bot, `login qr`, the QR code scanned and confirmed through the emulator). Then everything keeps running so you can log in as alice
# with any Matrix client; Ctrl-C stops it all.
#
# Usage: scripts/demo.sh [--no-wait]
#   --no-wait  stop after the exchange (scripts/test.sh runs it so). The exit status is non-zero
#              when a message did not arrive, exactly once, on the other side.
#
# Fixed ports on 127.0.0.1 (the demo fails at once, naming the port, if one is taken): Synapse
# 18008, appservice 18340, bridge metrics 19464, emulator 18080 (plain) and 18443 (TLS).
# Everything lives in var/demo/ and is started afresh on each run; logs: var/demo/bridge.log,
# var/demo/emulator.log, var/demo/synapse/homeserver.log. CARGO_TARGET_DIR is honoured.
set -euo pipefail
cd "$(dirname "$0")/.."

WAIT=1
case "${1:-}" in
  "") ;;
  --no-wait) WAIT=0 ;;
  *) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac

DEMO_DIR=var/demo
HS_DIR=$DEMO_DIR/synapse
HS_PORT=18008
AS_PORT=18340
METRICS_PORT=19464
EMU_PORT=18080
EMU_TLS_PORT=18443
HS_URL=http://127.0.0.1:$HS_PORT
EMU_URL=http://127.0.0.1:$EMU_PORT
ACCOUNT=10001
OWNER=alice
OWNER_ID=@$OWNER:localhost
OWNER_PASSWORD=${QQBRIDGE_DEMO_PASSWORD:-demo-alice-pw}
START=$SECONDS

# die, need_cmd, need_apt (installs missing Debian packages, through sudo when needed)
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
SCRIPT_NAME=demo.sh
step() { printf '== %s\n' "$*"; }

need_cmd cargo "install Rust 1.95 (https://rustup.rs), then run this again"
for tool in python3 curl openssl; do
  command -v "$tool" >/dev/null 2>&1 || need_apt "$tool"
done
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need_apt python3-venv

# Every port is checked before anything starts, so a second demo (or a test) fails clearly.
python3 - "$HS_PORT" "$AS_PORT" "$METRICS_PORT" "$EMU_PORT" "$EMU_TLS_PORT" <<'PY' || exit 1
import socket, sys
for port in map(int, sys.argv[1:]):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port))
    except OSError as e:
        sys.exit(f"demo.sh: port 127.0.0.1:{port} is taken ({e.strerror}); the demo needs ports "
                 f"{', '.join(sys.argv[1:])}. Is another demo running? (see: ss -ltnp 'sport = :{port}'; "
                 f"a demo Synapse left behind stops with: scripts/synapse.sh stop var/demo/synapse)")
    finally:
        s.close()
PY

step "building qqbridge"
cargo build --quiet --bin qqbridge
BIN="${CARGO_TARGET_DIR:-target}/debug/qqbridge"

step "checking Synapse is installed (the first run installs it into .venv-synapse: minutes)"
scripts/synapse.sh install

# Afresh each run: a new homeserver database, registration and bridge store (Synapse's signing
# key is kept).
mkdir -p "$HS_DIR"
chmod 0700 "$DEMO_DIR" # it holds the store, the registration's tokens and alice's access token
rm -rf "$HS_DIR"/homeserver.db* "$HS_DIR"/media_store "$HS_DIR"/*.log \
  "$DEMO_DIR"/bridge.sqlite3* "$DEMO_DIR"/registration.yaml "$DEMO_DIR"/*.log \
  "$DEMO_DIR"/bot-device
# A fresh random QQ password each run (set in the emulator once it runs): the leak check at the
# end then looks for a value that can only come from the bridge's own handling of it.
QQBRIDGE_DEMO_QQ_PASSWORD="qq-$(openssl rand -hex 12)"
export QQBRIDGE_DEMO_QQ_PASSWORD
cat >"$DEMO_DIR/bridge.yaml" <<YAML
# Written by scripts/demo.sh on each run; bridge.yaml documents every key.
qq:
  connect: "127.0.0.1:$EMU_TLS_PORT"
  ca_cert: $DEMO_DIR/emulator-ca.pem
accounts:
  - id: xiaoming
    qq: $ACCOUNT
    login: password
    password_env: QQBRIDGE_DEMO_QQ_PASSWORD
    owner: "$OWNER_ID"
sender:
  min_interval_ms: 300
poller:
  backoff_initial_ms: 200
  backoff_max_seconds: 5
store:
  path: $DEMO_DIR/bridge.sqlite3
metrics:
  listen: "127.0.0.1:$METRICS_PORT"
logging:
  # qqbridge at trace, so that the leak check below sees everything it could ever log
  filter: "info,qqbridge=trace"
homeserver:
  address: "$HS_URL"
  domain: localhost
appservice:
  listen: "127.0.0.1:$AS_PORT"
  address: "http://127.0.0.1:$AS_PORT"
  registration: $DEMO_DIR/registration.yaml
bridge:
  enabled: true
encryption:
  # The bot's own device (on by default): a DM from Element, encrypted, works too.
  data_dir: $DEMO_DIR/bot-device
YAML
"$BIN" generate-registration -c "$DEMO_DIR/bridge.yaml" >/dev/null

EMU=""
BRIDGE=""
cleanup() {
  local status=$?
  set +e
  trap - EXIT INT TERM
  [ -n "$BRIDGE" ] && kill "$BRIDGE" 2>/dev/null && wait "$BRIDGE" 2>/dev/null
  [ -n "$EMU" ] && kill "$EMU" 2>/dev/null && wait "$EMU" 2>/dev/null
  scripts/synapse.sh stop "$HS_DIR" || true
  if [ "$status" -ne 0 ]; then
    printf 'demo.sh: failed (exit %s); logs: %s/bridge.log, %s/emulator.log, %s/homeserver.log\n' \
      "$status" "$DEMO_DIR" "$DEMO_DIR" "$HS_DIR" >&2
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "starting Synapse on $HS_URL (server name localhost)"
scripts/synapse.sh start "$HS_DIR" "$HS_PORT" "$DEMO_DIR/registration.yaml"
scripts/synapse.sh register-user "$HS_DIR" "$OWNER" "$OWNER_PASSWORD"

step "starting the emulator (demo world) on 127.0.0.1:$EMU_PORT and 127.0.0.1:$EMU_TLS_PORT"
NO_COLOR=1 "$BIN" emulator --listen "127.0.0.1:$EMU_PORT" --tls-listen "127.0.0.1:$EMU_TLS_PORT" \
  --ca-cert-out "$DEMO_DIR/emulator-ca.pem" --poll-hold 5 >"$DEMO_DIR/emulator.log" 2>&1 &
EMU=$!
for i in $(seq 100); do
  curl -fsS -o /dev/null "$EMU_URL/_emulator/state" 2>/dev/null && break
  if ! kill -0 "$EMU" 2>/dev/null || [ "$i" -eq 100 ]; then
    tail -n 20 "$DEMO_DIR/emulator.log" >&2
    die "the emulator did not start (log tail above)"
  fi
  sleep 0.1
done

curl -fsS -o /dev/null -X POST "$EMU_URL/_emulator/accounts/password" \
  -d "{\"qq\":$ACCOUNT,\"password\":\"$QQBRIDGE_DEMO_QQ_PASSWORD\"}" ||
  die "the emulator did not take the account's new password"

step "starting the bridge: qqbridge run -c $DEMO_DIR/bridge.yaml (account $ACCOUNT, owner $OWNER_ID)"
NO_COLOR=1 "$BIN" run -c "$DEMO_DIR/bridge.yaml" </dev/null >"$DEMO_DIR/bridge.log" 2>&1 &
BRIDGE=$!
STATE='qqbridge_account_state{account="xiaoming",state="CONNECTED"} 1'
for i in $(seq 600); do
  curl -fsS "http://127.0.0.1:$METRICS_PORT/metrics" 2>/dev/null | grep -qF "$STATE" && break
  if ! kill -0 "$BRIDGE" 2>/dev/null; then
    tail -n 30 "$DEMO_DIR/bridge.log" >&2
    die "the bridge exited during start-up (log tail above)"
  fi
  if [ "$i" -eq 600 ]; then
    tail -n 30 "$DEMO_DIR/bridge.log" >&2
    die "account $ACCOUNT was not CONNECTED after 60 s (log tail above)"
  fi
  sleep 0.1
done

step "the conversation (QQ on the left, Matrix on the right)"
python3 scripts/demo-exchange.py "$HS_URL" "$EMU_URL" "$HS_DIR/register-response.json" \
  "$ACCOUNT" "$OWNER_ID"
step "demo exchange OK in $((SECONDS - START)) s"

step "leak check: no password, cookie, session token or appservice token in anything the run wrote"
python3 scripts/leak-check.py --emulator "$EMU_URL" --registration "$DEMO_DIR/registration.yaml" \
  --dir "$DEMO_DIR" --metrics "http://127.0.0.1:$METRICS_PORT/metrics" \
  --allow 'bridge.sqlite3*' --allow registration.yaml --allow bridge.yaml \
  --allow emulator-ca.pem --allow 'var/demo/synapse/*' --allow emulator.log \
  --allow "$DEMO_DIR/bot-device/*" \
  --secret "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["access_token"])' \
    "$HS_DIR/register-response.json")" \
  --secret "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["access_token"])' \
    "$DEMO_DIR/bot-device/device.json")" \
  --secret "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["store_passphrase"])' \
    "$DEMO_DIR/bot-device/device.json")"
# ... and the check can fail: a planted psessionid-like value from the emulator must be found.
PROBE_DIR=$(mktemp -d)
curl -fsS "$EMU_URL/_emulator/secrets" | python3 -c 'import json,sys; print("probe", max(json.load(sys.stdin)["secrets"], key=len))' >"$PROBE_DIR/probe.log"
if python3 scripts/leak-check.py --emulator "$EMU_URL" --registration "$DEMO_DIR/registration.yaml" \
  --dir "$PROBE_DIR" >/dev/null; then
  rm -rf "$PROBE_DIR"
  die "the leak check missed a planted secret"
fi
rm -rf "$PROBE_DIR"

if [ "$WAIT" -eq 0 ]; then exit 0; fi
trap 'echo; exit 0' INT
cat <<TXT

Everything keeps running. Log in with any Matrix client (Element: "Edit" the homeserver):
  homeserver  $HS_URL
  user        $OWNER   (full id $OWNER_ID)
  password    $OWNER_PASSWORD
The portals "爱丽丝" and "qqbot群" are in alice's room list; what she writes there goes to QQ.
Make a QQ person write to her:
  curl -s -X POST $EMU_URL/_emulator/messages \\
    -d '{"account":$ACCOUNT,"kind":"friend","from":10002,"text":"hi"}'
Talk to the bridge bot: open a DM with @qqbot:localhost and send \`help\`.
See what QQ received:   curl -s '$EMU_URL/_emulator/sent?account=$ACCOUNT'
Bridge metrics:         curl -s http://127.0.0.1:$METRICS_PORT/metrics | grep qqbridge_
Logs: $DEMO_DIR/bridge.log, $DEMO_DIR/emulator.log, $HS_DIR/homeserver.log
Ctrl-C stops Synapse, the emulator and the bridge.
TXT
# Ctrl-C reaches the bridge too: it shuts down cleanly (exit 0), then the rest is stopped.
status=0
wait "$BRIDGE" || status=$?
BRIDGE=""
[ "$status" -eq 0 ] || [ "$status" -eq 130 ] || die "the bridge stopped (exit $status; see $DEMO_DIR/bridge.log)"
echo
