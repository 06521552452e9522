#!/usr/bin/env bash
# The demo: the WebQQ emulator and the `qqbridge qq` client through a scripted exchange, in both
# directions (a friend chat and a group, with a face and an image). Then the emulator keeps
# running so you can try the client by hand. Ctrl-C stops it.
#
# Usage: scripts/demo.sh [--no-wait]
set -euo pipefail
cd "$(dirname "$0")/.."

DEMO_DIR=var/demo
PLAIN=127.0.0.1:18080
TLS=127.0.0.1:18443
mkdir -p "$DEMO_DIR"
rm -f "$DEMO_DIR/session.json"

echo "== building qqbridge"
cargo build --quiet --bin qqbridge
BIN="${CARGO_TARGET_DIR:-target}/debug/qqbridge"

control() { # control METHOD PATH [JSON]
  python3 - "$@" <<'PY'
import sys, urllib.request
method, path = sys.argv[1], sys.argv[2]
body = sys.argv[3].encode() if len(sys.argv) > 3 else None
req = urllib.request.Request(f"http://127.0.0.1:18080/_emulator/{path}", data=body, method=method,
                             headers={"Content-Type": "application/json"})
print(urllib.request.urlopen(req, timeout=10).read().decode())
PY
}

echo "== starting the emulator (demo world) on $PLAIN and $TLS"
"$BIN" emulator --listen "$PLAIN" --tls-listen "$TLS" --ca-cert-out "$DEMO_DIR/ca.pem" \
  --poll-hold 5 >"$DEMO_DIR/emulator.log" 2>&1 &
EMU=$!
trap 'kill $EMU 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  control GET state >/dev/null 2>&1 && break
  sleep 0.2
done

QQ=("$BIN" qq --connect "$TLS" --ca-cert "$DEMO_DIR/ca.pem" --session "$DEMO_DIR/session.json")

echo "== QR login of account 10001 (the demo scans and confirms it through the control API)"
"${QQ[@]}" login-qr --qr-out "$DEMO_DIR/qr.png" &
LOGIN=$!
sleep 2
control POST qr/scan '{"qq": 10001}' >/dev/null
sleep 1.5
control POST qr/confirm '{"qq": 10001}' >/dev/null
wait $LOGIN

echo "== contacts (stable QQ and group numbers, resolved from per-session uins)"
"${QQ[@]}" contacts

echo "== QQ -> client: Alice (10002) writes with a face; 呼吸 (10003) posts a picture in the group"
control POST messages '{"account": 10001, "kind": "friend", "from": 10002, "text": "你好! from QQ", "face": 14}'
control POST messages '{"account": 10001, "kind": "group", "from": 10003, "group": 346167134, "text": "look at this", "image": true}'
"${QQ[@]}" listen --count 2

echo "== client -> QQ: replies to Alice and to the group"
"${QQ[@]}" send friend 10002 "hello Alice, this is the qq client"
"${QQ[@]}" send group 346167134 "hi group 👋"

echo "== what the emulator saw account 10001 send"
control GET "sent?account=10001"

if [ "${1:-}" = "--no-wait" ]; then exit 0; fi
cat <<TXT

The emulator keeps running on $PLAIN (plain) and $TLS (TLS + plain); CA: $DEMO_DIR/ca.pem.
Try:  ${QQ[*]} listen
and in another shell make Alice write:
  curl -s -X POST http://$PLAIN/_emulator/messages -d '{"account":10001,"kind":"friend","from":10002,"text":"hi"}'
Ctrl-C stops the emulator.
TXT
wait $EMU
