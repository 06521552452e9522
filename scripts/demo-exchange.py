#!/usr/bin/env python3
"""The scripted conversation of scripts/demo.sh, through the running bridge.

QQ people speak through the emulator's control API (POST /_emulator/messages); the Matrix user
(the bridged account's owner) reads and answers through the Client-Server API with her access
token: sync, join the portal invites, /messages, send. Every message must arrive on the other
side, exactly once, or the exit status is 1 (with what was seen). Prints a two-column transcript
and then what each side saw. Standard library only.

Usage: demo-exchange.py HOMESERVER_URL EMULATOR_URL TOKEN_FILE ACCOUNT_QQ OWNER_USER_ID
(TOKEN_FILE: Synapse's admin-register response, which holds the user's access_token.)
"""

import json
import random
import sys
import time
import unicodedata
import urllib.error
import urllib.parse
import urllib.request

FRIEND = 10002  # 爱丽丝 (Alice), a friend of the account in the demo world
MEMBER = 10003  # 呼吸 (Breath), a member of the group
GROUP = 346167134  # qqbot群
SECOND_ACCOUNT = 10002  # logged in from Matrix by QR code
WAIT_SECONDS = 60
COLUMN = 46


class Failed(Exception):
    """An expected message did not arrive."""


def http(method, url, body=None, token=None):
    """(status, decoded JSON) of one request; HTTP errors are answers, not exceptions."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw.decode() or "null")
    except ValueError:
        return status, raw.decode(errors="replace")


def quote(part):
    return urllib.parse.quote(part, safe="")


def width(text):
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def row(left, right=""):
    """One transcript line: QQ on the left, Matrix on the right."""
    if width(left) >= COLUMN:
        print(left, flush=True)
        left = ""
    if right:
        print(left + " " * (COLUMN - width(left)) + right, flush=True)
    elif left:
        print(left, flush=True)


class Emulator:
    def __init__(self, base, account):
        self.base, self.account = base.rstrip("/"), account

    def call(self, method, path, body=None):
        status, answer = http(method, f"{self.base}/_emulator/{path}", body)
        if status != 200:
            raise Failed(f"emulator {method} /_emulator/{path}: HTTP {status} {answer}")
        return answer

    def say(self, kind, sender, text, **extra):
        body = {"account": self.account, "kind": kind, "from": sender, "text": text, **extra}
        self.call("POST", "messages", body)

    def sent(self):
        return self.call("GET", f"sent?account={self.account}") or []

    def wait_sent(self, text):
        """The record of the account's send that contains `text`."""
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            for record in self.sent():
                if text in json.dumps(record, ensure_ascii=False):
                    return record
            time.sleep(0.2)
        raise Failed(f"QQ never saw the account send {text!r}; it sent: {self.sent()}")


class Owner:
    """The Matrix user who owns the bridged account."""

    def __init__(self, base, token, user_id):
        self.base, self.token, self.user_id = base.rstrip("/"), token, user_id
        self.since = None
        self.names = {}

    def call(self, method, path, body=None):
        status, answer = http(method, f"{self.base}/_matrix/client/v3/{path}", body, self.token)
        if status != 200:
            raise Failed(f"homeserver {method} {path.split('?')[0]}: HTTP {status} {answer}")
        return answer

    def rooms(self):
        """Joins every pending invite (the portals); answers the joined rooms."""
        # A different timeout each time: Synapse answers an identical /sync from a cache for a
        # while, which would hide a new invite.
        path = f"sync?timeout={random.randint(10, 1000)}"
        if self.since:
            path += f"&since={quote(self.since)}"
        sync = self.call("GET", path)
        self.since = sync.get("next_batch")
        for room in (sync.get("rooms", {}).get("invite") or {}):
            self.call("POST", f"rooms/{quote(room)}/join", {})
        return self.call("GET", "joined_rooms").get("joined_rooms", [])

    def messages(self, room):
        """The room's m.room.message events, oldest first."""
        chunk = self.call("GET", f"rooms/{quote(room)}/messages?dir=b&limit=100").get("chunk", [])
        return [e for e in reversed(chunk) if e.get("type") == "m.room.message"]

    def name(self, room):
        if room not in self.names:
            status, state = http(
                "GET",
                f"{self.base}/_matrix/client/v3/rooms/{quote(room)}/state/m.room.name",
                token=self.token,
            )
            self.names[room] = state.get("name", room) if status == 200 else room
        return self.names[room]

    def display(self, user):
        status, profile = http(
            "GET", f"{self.base}/_matrix/client/v3/profile/{quote(user)}", token=self.token
        )
        return profile.get("displayname", user) if status == 200 else user

    def wait_for(self, match, what):
        """(room, event) of the first message for which `match(event)` holds."""
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            for room in self.rooms():
                for event in self.messages(room):
                    if match(event):
                        return room, event
            time.sleep(0.2)
        raise Failed(f"{self.user_id} never saw {what}; she saw: {self.everything()}")

    def everything(self):
        return [
            (self.name(room), e.get("sender"), e.get("content", {}).get("body"))
            for room in self.rooms()
            for e in self.messages(room)
        ]

    def send(self, room, body):
        txn = f"demo{time.time_ns()}"
        self.call(
            "PUT",
            f"rooms/{quote(room)}/send/m.room.message/{txn}",
            {"msgtype": "m.text", "body": body},
        )


def body_of(event):
    return event.get("content", {}).get("body", "")


def show_matrix(owner, room, event):
    content = event.get("content", {})
    kind = content.get("msgtype", "?").removeprefix("m.")
    return f"[{owner.name(room)}] {owner.display(event['sender'])}: {content.get('body')} ({kind})"


def exchange(emulator, owner):
    from_ghost = lambda qq: lambda e: e.get("sender", "").startswith(f"@qq_{qq}:")  # noqa: E731

    row("QQ (the emulator, account %d)" % emulator.account, f"Matrix ({owner.user_id})")
    row("-" * (COLUMN - 2), "-" * (COLUMN - 2))

    # 1. A friend writes, with a face (protocol: ["face", 14]).
    emulator.say("friend", FRIEND, "你好 from QQ", face=14)
    row(f"爱丽丝 {FRIEND} → {emulator.account}: 你好 from QQ + face 14")
    dm, event = owner.wait_for(
        lambda e: from_ghost(FRIEND)(e) and body_of(e).startswith("你好 from QQ"),
        "the friend's message",
    )
    row("", show_matrix(owner, dm, event))

    # 2. The owner answers in that DM portal.
    owner.send(dm, "hello from Matrix")
    row("", f"[{owner.name(dm)}] alice: hello from Matrix")
    record = emulator.wait_sent("hello from Matrix")
    row(f"{emulator.account} → {record_target(record)}: {record_text(record)}")

    # 3. A group member posts: a second portal.
    emulator.say("group", MEMBER, "group hello", group=GROUP)
    row(f"呼吸 {MEMBER} in group {GROUP}: group hello")
    group_room, event = owner.wait_for(
        lambda e: from_ghost(MEMBER)(e) and body_of(e) == "group hello", "the group message"
    )
    if group_room == dm:
        raise Failed("the group message arrived in the friend's DM portal")
    row("", show_matrix(owner, group_room, event))

    # 4. The owner answers in the group portal.
    owner.send(group_room, "hello group, from Matrix")
    row("", f"[{owner.name(group_room)}] alice: hello group, from Matrix")
    record = emulator.wait_sent("hello group, from Matrix")
    row(f"{emulator.account} → {record_target(record)}: {record_text(record)}")

    # 5. A picture with a caption: the caption as text, the picture as an m.image uploaded to
    #    the homeserver's media repository.
    emulator.say("group", MEMBER, "look at this", group=GROUP, image=True)
    row(f"呼吸 {MEMBER} in group {GROUP}: look at this + a picture")
    room, event = owner.wait_for(
        lambda e: from_ghost(MEMBER)(e) and body_of(e) == "look at this", "the picture's caption"
    )
    row("", show_matrix(owner, room, event))
    room, event = owner.wait_for(
        lambda e: from_ghost(MEMBER)(e) and e.get("content", {}).get("msgtype") == "m.image",
        "the picture as an m.image",
    )
    row("", show_matrix(owner, room, event))

    # Nothing arrived twice (echoes of the owner's own messages, redelivered polls).
    time.sleep(1.5)
    bodies = [body for _, _, body in owner.everything()]
    for text in ("hello from Matrix", "hello group, from Matrix", "group hello", "look at this"):
        if bodies.count(text) != 1:
            raise Failed(f"{text!r} is in the portals {bodies.count(text)} times: {bodies}")
    sent = [json.dumps(r, ensure_ascii=False) for r in emulator.sent()]
    for text in ("hello from Matrix", "hello group, from Matrix"):
        if sum(text in r for r in sent) != 1:
            raise Failed(f"QQ got {text!r} {sum(text in r for r in sent)} times: {sent}")


def login_from_matrix(emulator, owner, bot, qq):
    """The owner logs a second QQ account in from Matrix: a DM with the bot, `login qr`, the QR
    code posted as an image, scanned and confirmed on the "phone" (the emulator)."""
    print("\n== a login from Matrix: a DM with the bridge bot, `login qr`", flush=True)
    created = owner.call(
        "POST",
        "createRoom",
        {"is_direct": True, "invite": [bot], "preset": "trusted_private_chat"},
    )
    dm = created["room_id"]
    from_bot = lambda e: e.get("sender") == bot  # noqa: E731
    _, greeting = owner.wait_for(
        lambda e: from_bot(e) and "help" in body_of(e), "the bot's greeting in the new DM"
    )
    row("", f"[bot] {body_of(greeting).splitlines()[0]}")
    owner.send(dm, "login qr")
    row("", "alice → bot: login qr")
    _, image = owner.wait_for(
        lambda e: from_bot(e) and e.get("content", {}).get("msgtype") == "m.image",
        "the QR code as an m.image",
    )
    info = image.get("content", {}).get("info", {})
    row("", f"[bot] (QR code image, {info.get('w')}x{info.get('h')} {info.get('mimetype')})")
    emulator.call("POST", "qr/scan", {"qq": qq})
    row(f"QQ app of {qq}: scans the code")
    emulator.call("POST", "qr/confirm", {"qq": qq})
    row(f"QQ app of {qq}: confirms the login")
    _, done = owner.wait_for(
        lambda e: from_bot(e) and f"({qq})" in body_of(e), "the bot saying the login worked"
    )
    row("", f"[bot] {body_of(done).splitlines()[0]}")


def record_target(record):
    return f"{record.get('kind', '?')} {record.get('target', '?')}"


def record_text(record):
    return record.get("text", record)


def summary(emulator, owner):
    print("\n== what each side saw", flush=True)
    print(f"QQ: what account {emulator.account} sent (GET /_emulator/sent):")
    for record in emulator.sent():
        print(f"  {record_target(record)}: {record_text(record)}")
    print(f"Matrix: the rooms of {owner.user_id}:")
    for room in owner.rooms():
        print(f"  {owner.name(room)} ({room})")
        for event in owner.messages(room):
            content = event.get("content", {})
            print(
                f"    {event.get('sender')}: {content.get('body')}"
                f" ({content.get('msgtype', '?').removeprefix('m.')})"
            )


def main():
    if len(sys.argv) != 6:
        print(__doc__, file=sys.stderr)
        return 2
    homeserver, emulator_url, token_file, account, user_id = sys.argv[1:]
    with open(token_file, encoding="utf-8") as f:
        token = json.load(f)["access_token"]
    emulator = Emulator(emulator_url, int(account))
    owner = Owner(homeserver, token, user_id)
    try:
        exchange(emulator, owner)
        bot = "@qqbot:" + user_id.split(":", 1)[1]
        login_from_matrix(emulator, owner, bot, SECOND_ACCOUNT)
        summary(emulator, owner)
    except Failed as failure:
        print(f"\ndemo: FAILED: {failure}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
