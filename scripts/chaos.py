#!/usr/bin/env python3
"""The chaos run of issue 6 (RELIABILITY.md §1, §4 D): emulator + bridge + Synapse under faults.

Started by scripts/chaos.sh, which builds the binary, installs Synapse and checks the ports. This
driver owns everything else: a generated QQ world (several accounts, each with friends and a
group), one Matrix owner per account, the bridge's config, the three processes, the traffic both
ways, the chaos, and the count.

  QQ -> Matrix   numbered messages "chaos q<chat>-<seq>" posted through the emulator's control
                 API (POST /_emulator/messages), read back from each portal room's history.
  Matrix -> QQ   numbered messages "chaos m<chat>-<seq>" sent by the owners into their portals
                 (PUT /send with a fixed transaction id, repeated until the homeserver answers
                 200), read back from the emulator's sent log (GET /_emulator/sent).
  chaos          SIGKILL of the bridge at random moments (restarted at once on the same config
                 and store); Synapse stopped once for a while; emulator faults on every endpoint
                 with a probability (502, 500, reset mid-body, slow body), for the whole run.

Then the chaos stops, the run waits for quiescence (bounded) and counts per direction and per
chat: lost, duplicated, out of order. Not expected, and listed apart: QQ -> Matrix messages QQ
itself dropped (no live session, a poll2 answer cut by a reset or, while sent slowly, by a
SIGKILL, a session replaced after a cut relink answer: WebQQ has no re-delivery), and Matrix -> QQ messages QQ did not confirm (an HTTP
5xx on the send), which the bridge does not resend but reports to the owner with a "Maybe not
delivered to QQ" notice (RELIABILITY.md §1.5, G7); without that notice they count as lost. Exit status 1 when a goal is missed: lost or duplicated
toward Matrix, lost toward QQ, out of order either way (duplicates toward QQ only with
--fail-on-qq-duplicates). Standard library only.
"""

import argparse
import datetime
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

SERVER_NAME = "localhost"
QQ_BODY = re.compile(r"chaos q(\d+)-(\d+)")
MX_BODY = re.compile(r"chaos m(\d+)-(\d+)")
SEED_BODY = re.compile(r"chaos seed c(\d+)\b")
# The bridge's notice for a send QQ did not confirm (an HTTP 5xx, a 1202, a cut answer): not
# resent, as it may have arrived (RELIABILITY.md §1.5, G7); src/bridge/portal/status.rs.
UNCERTAIN_NOTICE = "Maybe not delivered to QQ"
# The bridge's log line for a send found under way after a SIGKILL (src/bridge/portal/outbox.rs).
INTERRUPTED_LOG = "was being sent to QQ when the bridge stopped"


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


class Failed(Exception):
    """The run could not be carried out (not a counted loss: a set-up failure)."""


def http(method, url, body=None, token=None, timeout=30):
    """(status, decoded JSON); HTTP errors are answers, network errors raise OSError."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw.decode() or "null")
    except ValueError:
        return status, raw.decode(errors="replace")


def quote(part):
    return urllib.parse.quote(part, safe="")


# --- the world -------------------------------------------------------------------------------


class Chat:
    """One QQ chat of one account: a friend or the account's group."""

    def __init__(self, index, account, kind, target, speakers):
        self.index, self.account, self.kind, self.target = index, account, kind, target
        self.speakers = speakers  # QQ numbers who write in it (the friend, or group members)
        self.room = None


def make_world(accounts, friends):
    """(world YAML text, accounts [(id, qq, owner localpart)], chats)."""
    persons, account_entries, groups, chats, ids = [], [], [], [], []
    for a in range(accounts):
        qq = 20001 + a
        persons.append(f'  - {{qq: {qq}, nick: "chaos account {a}"}}')
        friend_qqs = [30000 + a * 100 + f for f in range(friends)]
        for f, fq in enumerate(friend_qqs):
            persons.append(f'  - {{qq: {fq}, nick: "friend {a}.{f}"}}')
        account_entries.append(
            f'  - qq: {qq}\n    password: "chaos-pw-{a}"\n    friends:\n'
            + "\n".join(f"      - {{qq: {fq}}}" for fq in friend_qqs)
        )
        group = 4000000001 + a
        members = [qq, *friend_qqs]
        groups.append(
            f'  - number: {group}\n    name: "chaos group {a}"\n    owner: {friend_qqs[0]}\n'
            f"    members: [{', '.join(map(str, members))}]"
        )
        for fq in friend_qqs:
            chats.append(Chat(len(chats), a, "friend", fq, [fq]))
        chats.append(Chat(len(chats), a, "group", group, friend_qqs))
        ids.append((f"acc{a}", qq, f"chaos{a}"))
    world = (
        "# Written by scripts/chaos.py on each run.\npersons:\n"
        + "\n".join(persons)
        + "\naccounts:\n"
        + "\n".join(account_entries)
        + "\ngroups:\n"
        + "\n".join(groups)
        + "\n"
    )
    return world, ids, chats


def bridge_config(args, ids):
    accounts = "\n".join(
        f"  - id: {aid}\n    qq: {qq}\n    login: password\n    password: \"chaos-pw-{a}\"\n"
        f'    owner: "@{owner}:{SERVER_NAME}"'
        for a, (aid, qq, owner) in enumerate(ids)
    )
    d = args.dir
    return f"""# Written by scripts/chaos.py on each run; bridge.yaml documents every key.
qq:
  connect: "127.0.0.1:{args.emu_tls_port}"
  ca_cert: {d}/emulator-ca.pem
accounts:
{accounts}
sender:
  min_interval_ms: {args.min_interval_ms}
  max_retries: 10
  retry_backoff_ms: 200
poller:
  backoff_initial_ms: 200
  backoff_max_seconds: 5
  max_relogins: 100
store:
  path: {d}/bridge.sqlite3
metrics:
  listen: "127.0.0.1:{args.metrics_port}"
logging:
  filter: "{args.log_filter}"
homeserver:
  address: "http://127.0.0.1:{args.hs_port}"
  domain: {SERVER_NAME}
appservice:
  listen: "127.0.0.1:{args.as_port}"
  address: "http://127.0.0.1:{args.as_port}"
  registration: {d}/registration.yaml
bridge:
  enabled: true
encryption:
  # The run measures message delivery; the bot's device (its own test: bridge_e2ee) stays off.
  bot_device: false
"""


# --- processes -------------------------------------------------------------------------------


class Processes:
    """The emulator, the bridge and Synapse of this run; all stopped by `stop_all`."""

    def __init__(self, args):
        self.args = args
        self.emulator = None
        self.bridge = None
        self.bridge_starts = 0
        self.exits = []  # exit codes of bridge runs that ended by themselves
        self.synapse_dir = os.path.join(args.dir, "synapse")
        self.lock = threading.Lock()

    def synapse(self, *command):
        result = subprocess.run(
            ["scripts/synapse.sh", *command], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise Failed(f"synapse.sh {command[0]}: {result.stderr.strip()}")

    def start_synapse(self):
        registration = os.path.join(self.args.dir, "registration.yaml")
        self.synapse("start", self.synapse_dir, str(self.args.hs_port), registration)

    def stop_synapse(self):
        self.synapse("stop", self.synapse_dir)

    def start_emulator(self):
        a = self.args
        # The count reads these modules' debug lines (faults, QQ-side drops, queued and taken
        # events).
        debug = ["server", "session", "deliver", "routes::poll2", "routes::login2", "routes::send"]
        env = dict(os.environ, NO_COLOR="1", RUST_LOG="info," + ",".join(
            f"qqbridge::emulator::{module}=debug" for module in debug))
        out = open(os.path.join(a.dir, "emulator.log"), "ab")
        self.emulator = subprocess.Popen(
            [
                a.bin, "emulator",
                "--listen", f"127.0.0.1:{a.emu_port}",
                "--tls-listen", f"127.0.0.1:{a.emu_tls_port}",
                "--ca-cert-out", os.path.join(a.dir, "emulator-ca.pem"),
                "--world", os.path.join(a.dir, "world.yaml"),
                "--poll-hold", "5",
            ],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
            start_new_session=True,
        )
        for _ in range(300):
            try:
                if http("GET", f"{emulator_url(a)}/_emulator/state", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            if self.emulator.poll() is not None:
                raise Failed("the emulator exited during start-up (see emulator.log)")
            time.sleep(0.1)
        raise Failed("the emulator did not answer within 30 s")

    def _start_bridge(self):
        """Starts a bridge run (caller holds the lock); its output appends to bridge.log."""
        self.bridge_starts += 1
        path = os.path.join(self.args.dir, "bridge.log")
        out = open(path, "ab")
        out.write(f"\n===== chaos.py: bridge start {self.bridge_starts} at "
                  f"{time.strftime('%H:%M:%S')} =====\n".encode())
        out.flush()
        self.bridge = subprocess.Popen(
            [self.args.bin, "run", "-c", os.path.join(self.args.dir, "bridge.yaml")],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            env=dict(os.environ, NO_COLOR="1"), start_new_session=True,
        )
        out.close()

    def start_bridge(self):
        with self.lock:
            self._start_bridge()

    def crash_bridge(self):
        """SIGKILL, as a crash would, and a restart at once on the same config and store."""
        with self.lock:
            if self.bridge and self.bridge.poll() is None:
                os.kill(self.bridge.pid, signal.SIGKILL)
                self.bridge.wait()
            self._start_bridge()

    def supervise(self, stop, delay):
        """Restarts the bridge `delay` s after it exits by itself, as systemd's
        Restart=always would; counts those exits."""
        while not stop.wait(0.5):
            with self.lock:
                if self.bridge is None or self.bridge.poll() is None:
                    continue
                self.exits.append(self.bridge.returncode)
            if stop.wait(delay):
                return
            with self.lock:
                if self.bridge.poll() is not None:
                    self._start_bridge()

    def bridge_alive(self):
        return self.bridge is not None and self.bridge.poll() is None

    def stop_all(self):
        for proc in (self.bridge, self.emulator):
            if proc and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        try:
            self.stop_synapse()
        except Failed as error:
            log(f"stopping Synapse: {error}")


def emulator_url(args):
    return f"http://127.0.0.1:{args.emu_port}"


def metrics_text(args):
    try:
        status, text = http("GET", f"http://127.0.0.1:{args.metrics_port}/metrics", timeout=3)
    except OSError:
        return None
    return text if status == 200 and isinstance(text, str) else None


def wait_connected(args, procs, ids, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        text = metrics_text(args) or ""
        if all(
            f'qqbridge_account_state{{account="{aid}",state="CONNECTED"}} 1' in text
            for aid, _, _ in ids
        ):
            return
        if not procs.bridge_alive():
            raise Failed("the bridge exited during start-up (see bridge.log)")
        time.sleep(0.2)
    raise Failed(f"not every account was CONNECTED within {seconds} s (see bridge.log)")


# --- the Matrix side -------------------------------------------------------------------------


class Owner:
    """The Matrix user owning one bridged account."""

    def __init__(self, args, localpart, token):
        self.base = f"http://127.0.0.1:{args.hs_port}/_matrix/client/v3"
        self.user_id = f"@{localpart}:{SERVER_NAME}"
        self.token = token

    def call(self, method, path, body=None, timeout=30):
        status, answer = http(method, f"{self.base}/{path}", body, self.token, timeout)
        if status != 200:
            raise Failed(f"{self.user_id} {method} {path.split('?')[0]}: HTTP {status} {answer}")
        return answer

    def join_invites(self):
        # A different timeout each time: Synapse answers an identical /sync from a cache.
        sync = self.call("GET", f"sync?timeout={random.randint(1, 500)}")
        for room in sync.get("rooms", {}).get("invite") or {}:
            self.call("POST", f"rooms/{quote(room)}/join", {})
        return self.call("GET", "joined_rooms").get("joined_rooms", [])

    def history(self, room):
        """The room's m.room.message events, oldest first (every page)."""
        events, token = [], None
        while True:
            path = f"rooms/{quote(room)}/messages?dir=b&limit=1000"
            if token:
                path += f"&from={quote(token)}"
            page = self.call("GET", path, timeout=120)
            chunk = page.get("chunk", [])
            events.extend(e for e in chunk if e.get("type") == "m.room.message")
            token = page.get("end")
            if not chunk or not token:
                break
        events.reverse()
        return events

    def send(self, room, txn, body, stop):
        """Sends until the homeserver answers 200 (the same txnId each time, as a client
        does). Answers the event id (or True) when sent; False when `stop` was set first or a
        hard error."""
        path = f"rooms/{quote(room)}/send/m.room.message/{quote(txn)}"
        while not stop.is_set():
            try:
                status, answer = http(
                    "PUT", f"{self.base}/{path}", {"msgtype": "m.text", "body": body},
                    self.token, timeout=30,
                )
            except OSError:
                status, answer = None, None
            if status == 200:
                return (answer or {}).get("event_id") or True
            if status is not None and 400 <= status < 500 and status != 429:
                log(f"{self.user_id}: {txn} refused: HTTP {status} {answer}")
                return False
            time.sleep(0.5)
        return False


# --- traffic ---------------------------------------------------------------------------------


class Ledger:
    """What was sent, when; shared between the threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.qq_posted = {}  # (chat, seq) -> delivered sessions
        self.mx_sent = {}  # (chat, seq) -> time of the homeserver's 200
        self.mx_events = {}  # (chat, seq) -> its event id
        self.mx_refused = 0
        self.kills = []  # monotonic times of SIGKILLs
        self.kill_clock = []  # wall-clock times of SIGKILLs (to compare with the logs)
        self.synapse_down = None  # (from, to) monotonic


def schedule(total, chats):
    """[(chat, seq)] in sending order: round robin over the chats, numbered per chat."""
    order, seqs = [], [0] * len(chats)
    for i in range(total):
        c = i % len(chats)
        order.append((c, seqs[c]))
        seqs[c] += 1
    return order


def qq_traffic(args, chats, ledger, stop):
    """QQ -> Matrix: posts the numbered messages at `args.rate` per second."""
    rng = random.Random(args.seed)
    start = time.monotonic()
    for i, (c, seq) in enumerate(schedule(args.messages, chats)):
        if stop.is_set():
            return
        delay = start + i / args.rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        chat = chats[c]
        body = {
            "account": 20001 + chat.account,
            "kind": chat.kind,
            "from": rng.choice(chat.speakers),
            "text": f"chaos q{c}-{seq}",
        }
        if chat.kind == "group":
            body["group"] = chat.target
        status, answer = http("POST", f"{emulator_url(args)}/_emulator/messages", body)
        if status != 200:
            raise Failed(f"emulator POST messages: HTTP {status} {answer}")
        with ledger.lock:
            ledger.qq_posted[(c, seq)] = answer.get("delivered", 0)


def mx_traffic(args, owner, owner_chats, all_chats, ledger, stop):
    """Matrix -> QQ for one owner: the owner's share of the numbered messages, in order."""
    share = args.messages * len(owner_chats) // len(all_chats)
    rate = args.rate * len(owner_chats) / len(all_chats)
    start = time.monotonic()
    order = schedule(share, owner_chats)
    for i, (k, seq) in enumerate(order):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        chat = owner_chats[k]
        ok = owner.send(chat.room, f"chaos-{chat.index}-{seq}", f"chaos m{chat.index}-{seq}", stop)
        with ledger.lock:
            if ok:
                ledger.mx_sent[(chat.index, seq)] = time.monotonic()
                if isinstance(ok, str):
                    ledger.mx_events[(chat.index, seq)] = ok
            else:
                ledger.mx_refused += 1
        if stop.is_set():
            return


def chaos(args, procs, ledger, stop, span):
    """SIGKILLs at random moments within `span` seconds, and one Synapse outage."""
    rng = random.Random(args.seed + 1)
    start = time.monotonic()
    kills = sorted(rng.uniform(0.05, 0.95) * span for _ in range(args.kills))
    outage_at = rng.uniform(0.25, 0.6) * span

    def outage():
        delay = start + outage_at - time.monotonic()
        if delay > 0 and stop.wait(delay):
            return
        log(f"chaos: stopping Synapse for {args.synapse_down} s")
        began = time.monotonic()
        procs.stop_synapse()
        time.sleep(args.synapse_down)
        procs.start_synapse()
        ledger.synapse_down = (began, time.monotonic())
        log("chaos: Synapse is back")

    outage_thread = None
    if args.synapse_down > 0:
        outage_thread = threading.Thread(target=outage, daemon=True)
        outage_thread.start()
    for n, at in enumerate(kills, 1):
        delay = start + at - time.monotonic()
        if delay > 0 and stop.wait(delay):
            break
        ledger.kill_clock.append(time.time())
        procs.crash_bridge()
        ledger.kills.append(time.monotonic())
        killed_at = datetime.datetime.fromtimestamp(ledger.kill_clock[-1], datetime.timezone.utc)
        log(f"chaos: bridge SIGKILLed ({n}/{len(kills)}) at {killed_at:%H:%M:%S.%f} UTC and "
            f"restarted")
        # The next kill may come at any moment, but only once this instance has started.
        deadline = time.monotonic() + 30
        while metrics_text(args) is None and time.monotonic() < deadline:
            time.sleep(0.1)
    if outage_thread:
        outage_thread.join()


def fault_specs(args, seconds):
    """Four kinds sharing `args.fault_ratio` of all emulator requests equally: each fault
    hits the requests the older ones spared, so its own ratio is conditional."""
    kinds = [{"http_status": 502}, {"http_status": 500}, {"reset": True}, {"slow_body_ms": 250}]
    share, left, specs = args.fault_ratio / len(kinds), 1.0, []
    for i, kind in enumerate(kinds):
        if share <= 0:
            break
        specs.append({
            "endpoint": "*", "seconds": seconds, "ratio": min(1.0, share / left),
            "seed": args.seed + 10 + i, "kind": kind,
        })
        left -= share
    return specs


# --- the count -------------------------------------------------------------------------------


def observe(args, owners, chats, ids):
    """(seen toward Matrix {chat: [seq]}, seen toward QQ {chat: [seq]}, misrouted toward QQ,
    event ids the bridge said may not have reached QQ, {event id: the bridge's notice replying
    to it}: what the owner was told, shown for the lost)."""
    to_matrix, uncertain, notices = {c.index: [] for c in chats}, set(), {}
    for chat in chats:
        owner = owners[chat.account]
        for event in owner.history(chat.room):
            if event.get("sender") == owner.user_id:
                continue
            content = event.get("content", {})
            replied = ((content.get("m.relates_to") or {}).get("m.in_reply_to") or {})
            if replied.get("event_id") and content.get("msgtype") == "m.notice":
                notices[replied["event_id"]] = str(content.get("body", ""))
            if str(content.get("body", "")).startswith(UNCERTAIN_NOTICE):
                replied = (content.get("m.relates_to") or {}).get("m.in_reply_to") or {}
                uncertain.add(replied.get("event_id"))
                continue
            m = QQ_BODY.search(event.get("content", {}).get("body", ""))
            if m and int(m.group(1)) == chat.index:
                to_matrix[chat.index].append(int(m.group(2)))
            elif m:
                to_matrix.setdefault(-1, []).append(m.group(0))
    to_qq, misrouted = {c.index: [] for c in chats}, 0
    for a, (_, qq, _) in enumerate(ids):
        status, sent = http("GET", f"{emulator_url(args)}/_emulator/sent?account={qq}", timeout=60)
        if status != 200:
            raise Failed(f"emulator GET sent: HTTP {status}")
        for record in sent or []:
            m = MX_BODY.search(str(record.get("text", "")))
            if not m:
                continue
            c = int(m.group(1))
            chat = chats[c] if c < len(chats) else None
            if chat is None or chat.account != a or str(chat.target) != str(record.get("target")):
                misrouted += 1
                continue
            to_qq[c].append(int(m.group(2)))
    return to_matrix, to_qq, misrouted, uncertain, notices


def told_uncertain(ledger, seen):
    """Matrix -> QQ messages not received whose send the bridge reported as unconfirmed: the
    owner was told, and the bridge does not resend them by design (RELIABILITY.md G7)."""
    received = seen_keys(seen[1])
    return {k for k, e in ledger.mx_events.items() if e in seen[3] and k not in received}


def seen_keys(seen_by_chat):
    return {(c, s) for c, seqs in seen_by_chat.items() if c >= 0 for s in seqs}


def count(seen_by_chat, expected):
    """(received, lost keys, duplicates, out of order, duplicated keys, out-of-order pairs
    (chat, seq, the higher seq it came after)) of one direction."""
    received, duplicates, disorder, seen, doubled, late = 0, 0, 0, set(), [], []
    for c, seqs in seen_by_chat.items():
        if c < 0:
            continue
        highest = -1
        for seq in seqs:
            if (c, seq) in seen:
                duplicates += 1
                doubled.append((c, seq))
                continue
            seen.add((c, seq))
            received += 1
            if seq < highest:
                disorder += 1
                late.append((c, seq, highest))
            highest = max(highest, seq)
    lost = sorted(k for k in expected if k not in seen)
    return received, lost, duplicates, disorder, doubled, late


def settle(args, owners, chats, ids, qq_expected, mx_sent, ledger):
    """Waits until both directions have everything, or nothing changes for `args.idle` s, or
    `args.max_wait` s have passed. Answers the last observation."""
    start = last_change = time.monotonic()
    last = None
    while True:
        try:
            seen = observe(args, owners, chats, ids)
        except (OSError, Failed) as error:
            log(f"count: {error}; again")
            time.sleep(5)
            continue
        a = count(seen[0], qq_expected)
        mx_expected = mx_sent - told_uncertain(ledger, seen)
        b = count(seen[1], mx_expected)
        figures = (a[0], a[2], b[0], b[2])
        now = time.monotonic()
        if figures != last:
            last, last_change = figures, now
            log(f"settling: toward Matrix {a[0]}/{len(qq_expected)}, toward QQ "
                f"{b[0]}/{len(mx_expected)}")
        if not a[1] and not b[1]:
            return seen
        if now - last_change > args.idle or now - start > args.max_wait:
            return seen
        time.sleep(args.poll_every)


def fault_counts(args):
    """Faults the emulator applied, per endpoint and kind, from its debug log."""
    counts = {}
    pattern = re.compile(r"fault applied endpoint=\"?([a-z0-9_]+)\"? fault=(\w+)(?:\((\w+)\))?")
    try:
        with open(os.path.join(args.dir, "emulator.log"), encoding="utf-8", errors="replace") as f:
            for line in f:
                if "fault applied" not in line:
                    continue
                m = pattern.search(line.replace("\x1b", ""))
                if m:
                    kind = m.group(2) + (f"({m.group(3)})" if m.group(3) else "")
                    counts[(m.group(1), kind)] = counts.get((m.group(1), kind), 0) + 1
    except OSError:
        pass
    return counts


def bridge_log_count(args, text):
    try:
        with open(os.path.join(args.dir, "bridge.log"), encoding="utf-8", errors="replace") as f:
            return sum(text in line for line in f)
    except OSError:
        return 0


def emulator_log_keys(args, marker):
    """QQ -> Matrix messages named in the emulator's log lines that contain `marker`."""
    keys = set()
    try:
        with open(os.path.join(args.dir, "emulator.log"), encoding="utf-8", errors="replace") as f:
            for line in f:
                if marker in line:
                    keys.update((int(c), int(s)) for c, s in QQ_BODY.findall(line))
    except OSError:
        pass
    return keys


def left_in_replaced(args):
    """QQ -> Matrix messages queued in an emulator session that a new login replaced (not a
    relink): the bridge's relink went through but its answer was cut by a fault, so the bridge
    holds a psessionid that no longer exists and logs in anew; the events of the session in
    between are never polled (WebQQ has no re-delivery)."""
    return emulator_log_keys(args, "session replaced with events pending")


def cut_by_kill(args, ledger):
    """QQ -> Matrix messages in a poll2 answer the emulator was still sending slowly (a slow-body
    fault: 8 pieces, `ms` apart) when the bridge was SIGKILLed: gone from QQ's queue, never
    received (WebQQ has no re-delivery)."""
    keys = set()
    pause = re.compile(r"\bms=(\d+)")
    try:
        with open(os.path.join(args.dir, "emulator.log"), encoding="utf-8", errors="replace") as f:
            for line in f:
                if "poll2 answer sent slowly" not in line:
                    continue
                began, p = log_time(line), pause.search(line)
                if began is None or not p:
                    continue
                ends = began + 8 * int(p.group(1)) / 1000 + 0.5
                if any(began <= k <= ends for k in ledger.kill_clock):
                    keys.update((int(c), int(s)) for c, s in QQ_BODY.findall(line))
    except OSError:
        pass
    return keys


def log_time(line):
    """The UTC timestamp at the start of a log line, as a Unix time; None without one."""
    m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)Z", line)
    if not m:
        return None
    return datetime.datetime.fromisoformat(m.group(1)).replace(
        tzinfo=datetime.timezone.utc).timestamp()


def dead_polls(args, ledger):
    """QQ -> Matrix messages the emulator took into a poll2 answer after a SIGKILL, on a session
    the killed bridge held (one the emulator logged before the kill): the long poll was still
    held when the bridge died, so the answer went to a dead connection and is gone from QQ's
    queue (WebQQ has no re-delivery). A restarted bridge polls on a new session (its relink makes
    one). An answer that left before the kill is the bridge's to keep and stays counted."""
    session = re.compile(r"\bsession=(\d+)")
    taken, first_seen = [], {}
    try:
        with open(os.path.join(args.dir, "emulator.log"), encoding="utf-8", errors="replace") as f:
            for line in f:
                at, m = log_time(line), session.search(line)
                if at is None or not m:
                    continue
                first_seen.setdefault(m.group(1), at)
                if "events taken by a poll" in line:
                    taken.append((at, m.group(1), QQ_BODY.findall(line)))
    except OSError:
        return set()
    kills = sorted(ledger.kill_clock)
    keys = set()
    for at, sid, found in taken:
        before = [k for k in kills if k <= at]
        if before and first_seen[sid] < before[-1]:
            keys.update((int(c), int(s)) for c, s in found)
    return keys


def pending_in_synapse(args):
    """Event ids Synapse still holds in an appservice transaction it never delivered (its
    `application_services_txns` table) at the end of the run."""
    try:
        db = sqlite3.connect(f"file:{os.path.join(args.dir, 'synapse', 'homeserver.db')}?mode=ro",
                             uri=True)
        try:
            rows = db.execute("SELECT event_ids FROM application_services_txns").fetchall()
        finally:
            db.close()
    except sqlite3.Error:
        return set()
    pending = set()
    for (ids,) in rows:
        try:
            pending.update(json.loads(ids))
        except (TypeError, ValueError):
            pass
    return pending


def dropped_by_homeserver(args, ledger, lost):
    """Of the Matrix -> QQ keys `lost`, those the homeserver never handed to the bridge (no trace
    of the event in the bridge's message map) and either accepted at most 10 s before it was
    stopped (Synapse keeps appservice events in memory until a transaction holds them and loses
    them at a stop, element-hq/synapse#11637) or still holds in an appservice transaction it
    never sent (its `application_services_txns` table at the end of the run)."""
    if not lost:
        return set()
    stopped = ledger.synapse_down[0] if ledger.synapse_down else None
    pending = pending_in_synapse(args)
    near = {k for k in lost
            if ledger.mx_events.get(k) in pending
            or (stopped is not None and stopped - 10 <= ledger.mx_sent.get(k, -1e9) <= stopped)}
    events = {k: ledger.mx_events.get(k) for k in near}
    try:
        db = sqlite3.connect(f"file:{os.path.join(args.dir, 'bridge.sqlite3')}?mode=ro", uri=True)
        try:
            known = {row[0] for row in db.execute("SELECT event_id FROM messages")}
        finally:
            db.close()
    except sqlite3.Error:
        return set()
    return {k for k, e in events.items() if e is not None and e not in known}


def cut_by_reset(args):
    """QQ -> Matrix messages the emulator put in a poll2 answer that a reset fault cut: gone
    from QQ's queue, never seen by any client (WebQQ has no re-delivery)."""
    return emulator_log_keys(args, "poll2 answer cut by a reset")


def report(args, ledger, procs, chats, seen, qq_expected, mx_sent, misrouted, elapsed):
    uncertain = told_uncertain(ledger, seen)
    mx_expected = mx_sent - uncertain
    to_matrix = count(seen[0], qq_expected)
    to_qq = count(seen[1], mx_expected)
    by_homeserver = dropped_by_homeserver(args, ledger, to_qq[1])
    to_qq = (to_qq[0], [k for k in to_qq[1] if k not in by_homeserver], *to_qq[2:])
    not_handed = sum(1 for d in ledger.qq_posted.values() if d == 0)
    faults = fault_counts(args)
    print()
    print(f"== chaos run: {len(chats)} chats over {args.accounts} accounts, {args.messages} "
          f"messages each way, {len(ledger.kills)} SIGKILLs, Synapse stopped "
          f"{args.synapse_down} s, faults on {args.fault_ratio:.0%} of emulator requests, "
          f"seed {args.seed}, {elapsed:.0f} s")
    header = f"{'direction':<14}{'sent':>8}{'expected':>10}{'received':>10}{'lost':>7}" \
             f"{'duplicated':>12}{'out of order':>14}"
    print(header)
    print("-" * len(header))
    print(f"{'QQ -> Matrix':<14}{len(ledger.qq_posted):>8}{len(qq_expected):>10}"
          f"{to_matrix[0]:>10}{len(to_matrix[1]):>7}{to_matrix[2]:>12}{to_matrix[3]:>14}")
    print(f"{'Matrix -> QQ':<14}{len(mx_sent):>8}{len(mx_expected - by_homeserver):>10}"
          f"{to_qq[0]:>10}{len(to_qq[1]):>7}{to_qq[2]:>12}{to_qq[3]:>14}")
    print()
    cut, replaced, killed = cut_by_reset(args), left_in_replaced(args), cut_by_kill(args, ledger)
    dead = dead_polls(args, ledger)
    print(f"QQ -> Matrix: not expected, as QQ itself drops them: {not_handed} posted while the "
          f"account had no live session, {len(cut)} in poll2 answers cut by a reset fault "
          f"({len(cut & seen_keys(seen[0]))} of those arrived anyway), {len(replaced)} left in a "
          f"session replaced after a relink answer was cut ({len(replaced & seen_keys(seen[0]))} "
          f"of those arrived anyway), {len(killed)} in a slow poll2 answer cut by a SIGKILL "
          f"({len(killed & seen_keys(seen[0]))} of those arrived anyway), {len(dead)} taken into "
          f"the answer of a poll whose bridge was being SIGKILLed ({len(dead & seen_keys(seen[0]))} "
          f"of those arrived anyway); misplaced in rooms: "
          f"{len(seen[0].get(-1, []))}")
    print(f"Matrix -> QQ: {ledger.mx_refused} sends the homeserver refused (not expected); "
          f"sent to the wrong chat: {misrouted}; {len(by_homeserver)} never handed to the bridge "
          f"by Synapse (accepted at most 10 s before its stop, element-hq/synapse#11637, or left "
          f"in an appservice transaction it never sent: lost by the homeserver, not expected)"
          + (f": {', '.join(f'c{c}-{s}' for c, s in sorted(by_homeserver))}"
             if by_homeserver else ""))
    status_faults = sum(n for (e, k), n in faults.items()
                        if e.startswith("send_") and k.startswith("HttpStatus"))
    print(f"Matrix -> QQ: not expected, as QQ did not confirm them and the bridge does not "
          f"resend blindly (RELIABILITY.md G7): {len(uncertain)} missing on QQ with a "
          f"'{UNCERTAIN_NOTICE}' notice to the owner (sends answered by an injected HTTP 5xx, "
          f"which the emulator never delivers: {status_faults}; sends a SIGKILL interrupted, "
          f"not resent: {bridge_log_count(args, INTERRUPTED_LOG)})"
          + (f": {', '.join(f'c{c}-{s}' for c, s in sorted(uncertain)[:20])}" if uncertain else ""))
    refused = bridge_log_count(args, "is polled by another qqbridge process")
    print(f"bridge: {procs.bridge_starts} starts; {len(procs.exits)} exits by itself (restarted "
          f"after {args.restart_delay} s), {refused} of them refusing an account whose poll "
          f"lease a killed instance still held")
    sends = {k: v for k, v in faults.items() if k[0].startswith("send_")}
    if faults:
        total = sum(faults.values())
        print(f"emulator faults applied: {total}; on sends: "
              + (", ".join(f"{e} {k} x{n}" for (e, k), n in sorted(sends.items())) or "none"))
    for name, lost, sent_at in (
        ("QQ -> Matrix", to_matrix[1], None),
        ("Matrix -> QQ", to_qq[1], ledger.mx_sent),
    ):
        if not lost:
            continue
        shown = ", ".join(f"c{c}-{s}" for c, s in lost[:20])
        print(f"{name} lost ({len(lost)}): {shown}{' …' if len(lost) > 20 else ''}")
        if sent_at and ledger.kills:
            near = 0
            for key in lost:
                t = sent_at.get(key)
                if t is not None and any(0 <= k - t <= args.kill_window for k in ledger.kills):
                    near += 1
            print(f"  of which {near} were answered 200 by the homeserver at most "
                  f"{args.kill_window} s before a SIGKILL of the bridge")
            for key in lost[:10]:
                told = seen[4].get(ledger.mx_events.get(key), "no notice")
                print(f"  c{key[0]}-{key[1]}: {told[:160]}")
    if to_matrix[1]:
        queue_full = emulator_log_keys(args, "queue full: event dropped") & set(to_matrix[1])
        unknown = bridge_log_count(args, "QQ event not bridged")
        print(f"QQ -> Matrix lost: {len(queue_full)} dropped from the emulator's session queue "
              f"(500 events) while no bridge polled; bridge log: {unknown} 'QQ event not "
              f"bridged' lines")
    if to_qq[1]:
        not_running = bridge_log_count(args, "message for QQ not queued: the account is not")
        print(f"Matrix -> QQ lost: bridge log: {not_running} events answered while the account "
              f"was not running yet ('message for QQ not queued')")
    for name, figures in (("QQ -> Matrix", to_matrix), ("Matrix -> QQ", to_qq)):
        if figures[4]:
            shown = ", ".join(f"c{c}-{s}" for c, s in figures[4][:20])
            print(f"{name} duplicated ({len(figures[4])}): {shown}")
        if figures[5]:
            shown = ", ".join(f"c{c}-{s} after c{c}-{h}" for c, s, h in figures[5][:20])
            print(f"{name} out of order ({len(figures[5])}): {shown}")
    failures = []
    if to_matrix[1]:
        failures.append(f"{len(to_matrix[1])} lost toward Matrix")
    if to_matrix[2]:
        failures.append(f"{to_matrix[2]} duplicated toward Matrix")
    if to_qq[1]:
        failures.append(f"{len(to_qq[1])} lost toward QQ")
    if to_matrix[3] or to_qq[3]:
        failures.append(f"{to_matrix[3] + to_qq[3]} out of order")
    if to_qq[2]:
        line = f"{to_qq[2]} duplicated toward QQ"
        if args.fail_on_qq_duplicates:
            failures.append(line)
        else:
            print(f"note: {line} (goal 0; fails only with --fail-on-qq-duplicates)")
    if misrouted:
        failures.append(f"{misrouted} sent to the wrong QQ chat")
    # Only what QQ did not confirm may be told "maybe not delivered" and left out: an injected
    # 5xx on a send (the emulator drops those) or a send the bridge found interrupted by a
    # SIGKILL (its durable 'sending' mark, RELIABILITY.md §1.5). More such notices than those
    # would hide messages the bridge lost and merely labelled uncertain.
    interrupted = bridge_log_count(args, INTERRUPTED_LOG)
    if len(uncertain) > status_faults + interrupted:
        failures.append(f"{len(uncertain)} told 'maybe not delivered' and missing, but only "
                        f"{status_faults} sends answered 5xx and {interrupted} interrupted")
    if failures:
        print("chaos: FAILED: " + "; ".join(failures))
        return 1
    print("chaos: OK: nothing lost, nothing duplicated, order kept")
    return 0


# --- the run ---------------------------------------------------------------------------------


def register_owners(procs, ids):
    tokens = {}
    path = os.path.join(procs.synapse_dir, "register-response.json")
    for _, _, localpart in ids:
        procs.synapse("register-user", procs.synapse_dir, localpart, f"{localpart}-pw")
        with open(path, encoding="utf-8") as f:
            tokens[localpart] = json.load(f)["access_token"]
    return tokens


def find_portals(args, owners, chats, seconds):
    """Seeds one QQ message per chat and maps each chat to the portal it created."""
    for chat in chats:
        body = {
            "account": 20001 + chat.account, "kind": chat.kind, "from": chat.speakers[0],
            "text": f"chaos seed c{chat.index}",
        }
        if chat.kind == "group":
            body["group"] = chat.target
        status, answer = http("POST", f"{emulator_url(args)}/_emulator/messages", body)
        if status != 200 or not answer.get("delivered"):
            raise Failed(f"seed message for chat {chat.index} not delivered: {status} {answer}")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for a, owner in enumerate(owners):
            for room in owner.join_invites():
                if any(c.room == room for c in chats):
                    continue
                for event in owner.history(room):
                    m = SEED_BODY.search(event.get("content", {}).get("body", ""))
                    if m and int(m.group(1)) < len(chats) and chats[int(m.group(1))].account == a:
                        chats[int(m.group(1))].room = room
        if all(c.room for c in chats):
            return
        time.sleep(1)
    missing = [c.index for c in chats if not c.room]
    raise Failed(f"no portal for chats {missing} after {seconds} s (see bridge.log)")


def fresh_dir(args):
    """The run's directory, emptied of the previous run (Synapse's signing key is kept)."""
    os.makedirs(os.path.join(args.dir, "synapse"), exist_ok=True)
    # It holds the store, the registration's tokens and the owners' access tokens.
    os.chmod(args.dir, 0o700)
    synapse = os.path.join(args.dir, "synapse")
    for base, names in ((args.dir, os.listdir(args.dir)), (synapse, os.listdir(synapse))):
        for name in names:
            path = os.path.join(base, name)
            stale = name.startswith(("bridge.sqlite3", "homeserver.db")) or name.endswith(".log") \
                or name in ("registration.yaml", "register-response.json")
            if stale and os.path.isfile(path):
                os.remove(path)
    subprocess.run(["rm", "-rf", os.path.join(synapse, "media_store")], check=True)


def run(args):
    fresh_dir(args)
    world, ids, chats = make_world(args.accounts, args.friends)
    with open(os.path.join(args.dir, "world.yaml"), "w", encoding="utf-8") as f:
        f.write(world)
    with open(os.path.join(args.dir, "bridge.yaml"), "w", encoding="utf-8") as f:
        f.write(bridge_config(args, ids))
    subprocess.run(
        [args.bin, "generate-registration", "-c", os.path.join(args.dir, "bridge.yaml")],
        check=True, stdout=subprocess.DEVNULL,
    )
    procs = Processes(args)
    try:
        return run_with(args, procs, ids, chats)
    finally:
        procs.stop_all()


def run_with(args, procs, ids, chats):
    began = time.monotonic()
    log(f"starting Synapse on 127.0.0.1:{args.hs_port}")
    procs.start_synapse()
    tokens = register_owners(procs, ids)
    owners = [Owner(args, localpart, tokens[localpart]) for _, _, localpart in ids]
    log(f"starting the emulator on 127.0.0.1:{args.emu_port} / {args.emu_tls_port} "
        f"({len(ids)} accounts, {len(chats)} chats)")
    procs.start_emulator()
    log("starting the bridge")
    procs.start_bridge()
    wait_connected(args, procs, ids, 120)
    log("every account CONNECTED; seeding one QQ message per chat to create the portals")
    find_portals(args, owners, chats, 180)
    log(f"portals ready; traffic: {args.messages} messages each way at {args.rate}/s, "
        f"{args.kills} SIGKILLs, Synapse down {args.synapse_down} s, faults "
        f"{args.fault_ratio:.0%}")

    span = args.messages / args.rate
    for spec in fault_specs(args, span + 60):
        status, answer = http("POST", f"{emulator_url(args)}/_emulator/faults", spec)
        if status != 200:
            raise Failed(f"emulator POST faults: HTTP {status} {answer}")
    ledger, stop = Ledger(), threading.Event()
    supervisor_stop = threading.Event()
    supervisor = threading.Thread(
        target=procs.supervise, args=(supervisor_stop, args.restart_delay), daemon=True
    )
    supervisor.start()
    try:
        return traffic_and_count(args, procs, ids, chats, owners, ledger, stop, began, span)
    finally:
        supervisor_stop.set()
        supervisor.join()


def traffic_and_count(args, procs, ids, chats, owners, ledger, stop, began, span):
    errors = []

    def guarded(target, *extra):
        def body():
            try:
                target(*extra)
            except Exception as error:  # noqa: BLE001 - reported after the run
                errors.append(f"{target.__name__}: {error!r}")
                stop.set()
        return threading.Thread(target=body, daemon=True)

    threads = [guarded(qq_traffic, args, chats, ledger, stop)]
    for a, owner in enumerate(owners):
        mine = [c for c in chats if c.account == a]
        threads.append(guarded(mx_traffic, args, owner, mine, chats, ledger, stop))
    chaos_thread = guarded(chaos, args, procs, ledger, stop, span)
    for t in [*threads, chaos_thread]:
        t.start()
    # The Matrix senders retry through the outage; bounded so a hung homeserver ends the run.
    deadline = time.monotonic() + span * 3 + args.synapse_down + 600
    for t in [*threads, chaos_thread]:
        t.join(timeout=max(0.0, deadline - time.monotonic()))
    stop.set()
    if errors:
        raise Failed("; ".join(errors))
    http("DELETE", f"{emulator_url(args)}/_emulator/faults")
    log(f"chaos over after {time.monotonic() - began:.0f} s: faults cleared; waiting for "
        f"quiescence (at most {args.max_wait} s, {args.idle} s without progress)")
    qq_expected = {k for k, d in ledger.qq_posted.items() if d > 0} - cut_by_reset(args) \
        - left_in_replaced(args) - cut_by_kill(args, ledger) - dead_polls(args, ledger)
    mx_sent = set(ledger.mx_sent)
    seen = settle(args, owners, chats, ids, qq_expected, mx_sent, ledger)
    misrouted = seen[2]
    return report(args, ledger, procs, chats, seen, qq_expected, mx_sent, misrouted,
                  time.monotonic() - began)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bin", required=True, help="the qqbridge binary")
    p.add_argument("--dir", required=True, help="working directory (logs, store, Synapse)")
    p.add_argument("--size", choices=["small", "full"], default="small")
    for name, kind in [
        ("messages", int), ("rate", float), ("kills", int), ("synapse-down", float),
        ("accounts", int), ("friends", int), ("fault-ratio", float), ("seed", int),
        ("min-interval-ms", int), ("idle", float), ("max-wait", float), ("poll-every", float),
        ("kill-window", float), ("restart-delay", float),
    ]:
        p.add_argument(f"--{name}", type=kind)
    p.add_argument("--fail-on-qq-duplicates", action="store_true")
    p.add_argument("--log-filter", default="info",
                   help="the bridge's logging.filter, e.g. info,qqbridge::bridge=debug")
    for port in ["hs-port", "as-port", "metrics-port", "emu-port", "emu-tls-port"]:
        p.add_argument(f"--{port}", type=int, required=True)
    args = p.parse_args(argv)
    sizes = {
        # `idle` outlasts the bridge's poll lease (LEASE_TTL 120 s, src/account/manager.rs): a
        # killed instance's lease keeps its successors out that long.
        "small": dict(messages=200, rate=4.0, kills=2, synapse_down=10.0, idle=150.0,
                      max_wait=420.0, poll_every=3.0),
        "full": dict(messages=10000, rate=25.0, kills=10, synapse_down=60.0, idle=200.0,
                     max_wait=1200.0, poll_every=15.0),
    }[args.size]
    common = dict(accounts=4, friends=3, fault_ratio=0.2, seed=int(time.time()) % 100000,
                  min_interval_ms=10, kill_window=10.0, restart_delay=5.0)
    for key, value in {**common, **sizes}.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.accounts < 1 or args.friends < 1 or args.messages < 1 or args.rate <= 0:
        p.error("--accounts, --friends, --messages and --rate must be positive")
    return args


def main(argv):
    args = parse_args(argv)
    log(f"chaos run ({args.size}), seed {args.seed}; everything under {args.dir}")
    try:
        return run(args)
    except Failed as failure:
        print(f"chaos: could not run: {failure}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
