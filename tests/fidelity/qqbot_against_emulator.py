#!/usr/bin/env python3
"""Fidelity test: pandolia's qqbot 2.3.11 (PyPI, Dec 2018, the last SmartQQ QR-login release),
unchanged, against the qqbridge WebQQ emulator.

qqbot was written for the real w.qq.com / SmartQQ service. Here only its connections are
redirected (sitecustomize.py beside this file: every *.qq.com name resolves to the emulator,
port 80 to the plain listener, 443 to the TLS one, and the emulator's CA is trusted through
REQUESTS_CA_BUNDLE). qqbot is observed from outside only: its log, the QR PNG it writes to
its working directory, its term server (the `qq` command), and a plugin in its plugins folder
(fidelity_probe.py, qqbot's documented extension mechanism). The emulator is driven and
inspected through its control API (/_emulator/...).

For each scenario (the built-in demo world with one era's answer forms):
  start `qqbridge emulator` on free ports, start qqbot in a fresh working directory, wait for
  the QR PNG, scan and confirm it through the control API (qqbot must see 66, 67, then 0),
  wait until qqbot has logged in and fetched every contact table, post a friend, a group and
  a discussion message and check qqbot resolved each to the right contact, check the plugin's
  reply and three `qq send` commands (buddy, group, discuss) reach the emulator's sent log,
  `qq restart` (qqbot logs in again from its pickled session, no QR code) and receive once
  more, then stop qqbot with `qq stop`.

Python 3.11 needs one shim, in sitecustomize.py: qqbot calls HTMLParser().unescape, removed
from the standard library in Python 3.9. qqbot's own files are never touched.

Usage: qqbot_against_emulator.py [--binary PATH] [--venv DIR] [--scenario NAME]... [--keep]
Exit code 0 only if every check passed; the last line printed is `N passed, M failed`.
Needs Python >= 3.8 and network access to PyPI the first time (to build the venv).
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent

# qqbot's own requirements are requests, certifi, apscheduler (unpinned); APScheduler 4
# removed the BackgroundScheduler qqbot imports, so it is held below 4.
QQBOT_REQUIREMENTS = ["qqbot==2.3.11", "apscheduler>=3.6,<4", "requests>=2.20,<3"]

# What every scenario's world contains (the emulator's built-in demo world, protocol-era
# options aside): the account qqbot logs in as, and one friend, group and discussion.
DEMO_EXPECT = {
    "account": 10001,
    "nick": "小明",
    "friend": {"qq": 10002, "name": "爱丽丝", "nick": "Alice"},
    "buddy_names": ["爱丽丝", "Breath"],
    "buddy_count": 3,
    "group": {
        "number": 346167134,
        "name": "qqbot群",
        "sender": 10003,
        "sender_nick": "呼吸 (糗百)",
        "member_count": 4,
        "cards": ["群主的朋友", "Bob"],
    },
    "discussion": {
        "did": 2006892653,
        "name": "good day",
        # qqbot's term commands split on spaces: select the discussion by a LIKE pattern.
        "selector": "name:like:good",
        "sender": 10005,
        "sender_nick": "老王",
        "members": [10005, 10001, 10002],
    },
}

SCENARIOS = {
    # The emulator as shipped: built-in demo world, default options (2013-2016 answer forms:
    # idle poll2 = retcode 102, sends answer {"retcode":0,"result":"ok"}).
    "demo": {"options": {}, "expect": DEMO_EXPECT},
    # The same world with the answer forms of the service qqbot 2.3.11 was written for, set
    # through POST /_emulator/options before qqbot starts.
    "smartqq2018": {
        "options": {
            # 2017-2018: an idle poll2 came back as retcode 0 without a result (protocol §2.3).
            "idle_form": "empty",
            # Late SmartQQ send answer {"errCode":0,"msg":"send ok"} (protocol §2.4).
            "send_reply_form": "err_code",
            # Slim SmartQQ poll events (protocol §4), per-session uins (§0.2).
            "event_form": "smart_qq",
            "random_uins": True,
            # ptqrtoken required since 2017-02 (§1.3.2); warm-up required (§1.3.6).
            "require_ptqrtoken": True,
            "require_warmup": True,
            "check_referer": True,
        },
        "expect": DEMO_EXPECT,
    },
}

# qqbot's log lines for the ptqrlogin states it recognises (qqbot/basicqsession.py).
LOG_QR_WAITING = "等待二维码扫描及授权"  # state 66
LOG_QR_SCANNED = "二维码已扫描，等待授权"  # state 67
LOG_QR_AUTHORIZED = "已获授权"  # state 0
LOG_INSECURE = "非私密连接"  # qqbot fell back to verify=False: the CA was not trusted


class HarnessError(Exception):
    """Aborts the current scenario; the message says which step could not proceed."""


class Deadline(Exception):
    """The global time limit expired."""


class Results:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, scenario, name, ok, detail=""):
        if ok:
            self.passed += 1
            print("PASS [%s] %s" % (scenario, name), flush=True)
        else:
            self.failed += 1
            print("FAIL [%s] %s%s" % (scenario, name, (": " + detail) if detail else ""), flush=True)
        return ok


# ---------------------------------------------------------------------------------------------
# Processes and small helpers


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path, lines=40):
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no %s)" % path
    return "\n".join(text.splitlines()[-lines:])


def stop_process_group(proc, first_signal=signal.SIGTERM, grace=5.0):
    """Stops a child started with start_new_session=True, and everything it started."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, first_signal)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        proc.wait(timeout=grace)


def clean_env():
    """The harness's environment without proxies (requests would honour them)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
        and not k.startswith(("PYTHON", "REQUESTS_", "QQBRIDGE_FIDELITY_"))
        and k not in ("SSL_CERT_FILE", "SSL_CERT_DIR", "CURL_CA_BUNDLE", "VIRTUAL_ENV")
    }
    env["NO_PROXY"] = "*"
    return env


def ensure_venv(venv, python):
    """Creates `venv` with qqbot 2.3.11 unless it already has it."""
    vpy = venv / "bin" / "python"
    probe = (
        "import importlib.metadata as m;"
        "print(m.version('qqbot'), m.version('apscheduler').split('.')[0])"
    )
    if vpy.exists():
        r = subprocess.run([str(vpy), "-c", probe], capture_output=True, text=True, timeout=60)
        if r.returncode == 0 and r.stdout.split() == ["2.3.11", "3"]:
            return
    print("creating %s with %s" % (venv, " ".join(QQBOT_REQUIREMENTS)), flush=True)
    subprocess.run([python, "-m", "venv", str(venv)], check=True, timeout=300)
    subprocess.run(
        [str(vpy), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
        + QQBOT_REQUIREMENTS,
        check=True,
        timeout=900,
        env=clean_env(),
    )
    r = subprocess.run([str(vpy), "-c", probe], capture_output=True, text=True, timeout=60)
    if r.returncode != 0 or r.stdout.split() != ["2.3.11", "3"]:
        raise HarnessError("venv %s does not hold qqbot 2.3.11: %s %s" % (venv, r.stdout, r.stderr))


class Control:
    """The emulator's control API over plain HTTP."""

    def __init__(self, base):
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def call(self, method, path, body=None, timeout=10):
        data = None if body is None else json.dumps(body).encode("utf-8")
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with self.opener.open(req, timeout=timeout) as resp:
                raw = resp.read()
                status = resp.status
        except urllib.error.HTTPError as e:
            raw = e.read()
            status = e.code
        text = raw.decode("utf-8", errors="replace")
        try:
            payload = json.loads(text) if text.strip() else None
        except ValueError:
            payload = text
        return status, payload

    def post(self, path, body):
        status, payload = self.call("POST", path, body)
        if not 200 <= status < 300:
            raise HarnessError("POST %s %s -> HTTP %s %s" % (path, body, status, payload))
        return payload

    def get(self, path):
        status, payload = self.call("GET", path)
        if not 200 <= status < 300:
            raise HarnessError("GET %s -> HTTP %s %s" % (path, status, payload))
        return payload


def sent_list(payload):
    """The message list of a GET /_emulator/sent answer (a list, or an object holding one)."""
    if isinstance(payload, list):
        return payload
    if isinstance(payload, dict):
        for key in ("sent", "messages", "result"):
            if isinstance(payload.get(key), list):
                return payload[key]
    return []


# ---------------------------------------------------------------------------------------------
# One scenario


class Scenario:
    def __init__(self, name, spec, args, results, workdir):
        self.name = name
        self.options = spec["options"]
        self.expect = spec["expect"]
        self.args = args
        self.results = results
        self.dir = workdir / name
        self.dir.mkdir(parents=True)
        self.bench = self.dir / "bench"
        self.events_path = self.dir / "events.jsonl"
        self.qqbot_log = self.dir / "qqbot.log"
        self.emulator_log = self.dir / "emulator.log"
        self.wire_log = self.dir / "wire.log"
        self.ca = self.dir / "emulator-ca.pem"
        self.emulator = None
        self.qqbot = None
        self.nonce = uuid.uuid4().hex[:8]
        self.venv = args.venv

    def check(self, name, ok, detail=""):
        return self.results.check(self.name, name, ok, detail)

    # -- emulator -------------------------------------------------------------------------

    def start_emulator(self):
        plain, tls = free_port(), free_port()
        while tls == plain:
            tls = free_port()
        self.plain_addr = "127.0.0.1:%d" % plain
        self.tls_addr = "127.0.0.1:%d" % tls
        cmd = [
            str(self.args.binary),
            "emulator",
            "--listen", self.plain_addr,
            "--tls-listen", self.tls_addr,
            "--ca-cert-out", str(self.ca),
            "--poll-hold", "2",
        ]
        with open(self.emulator_log, "wb") as log:
            self.emulator = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, env=clean_env(),
            )
        self.control = Control("http://" + self.plain_addr)
        deadline = time.monotonic() + 30
        last = ""
        while time.monotonic() < deadline:
            if self.emulator.poll() is not None:
                raise HarnessError("emulator exited with %s:\n%s"
                                   % (self.emulator.returncode, tail(self.emulator_log)))
            if self.ca.exists() and self.ca.stat().st_size > 0:
                try:
                    status, _ = self.control.call("GET", "/_emulator/state", timeout=2)
                    if status == 200:
                        self.apply_options()
                        return
                    last = "HTTP %s" % status
                except OSError as e:
                    last = str(e)
            time.sleep(0.1)
        raise HarnessError("emulator not ready in 30 s (%s):\n%s" % (last, tail(self.emulator_log)))

    def apply_options(self):
        """Merges the scenario's options into the emulator's (GET, change, POST the whole)."""
        if not self.options:
            return
        current = self.control.get("/_emulator/options")
        current.update(self.options)
        self.control.post("/_emulator/options", current)
        now = self.control.get("/_emulator/options")
        wrong = {k: now.get(k) for k, v in self.options.items() if now.get(k) != v}
        if wrong:
            raise HarnessError("emulator options not applied: %s" % wrong)

    def state(self):
        return self.control.get("/_emulator/state")

    # -- qqbot ----------------------------------------------------------------------------

    def qqbot_env(self):
        env = clean_env()
        env.update({
            "PYTHONPATH": str(HERE),
            "PYTHONUNBUFFERED": "1",
            "PYTHONIOENCODING": "utf-8",
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "TZ": "UTC",
            "HOME": str(self.dir / "home"),
            "REQUESTS_CA_BUNDLE": str(self.ca),
            "SSL_CERT_FILE": str(self.ca),
            "QQBRIDGE_FIDELITY_PLAIN": self.plain_addr,
            "QQBRIDGE_FIDELITY_TLS": self.tls_addr,
            "QQBRIDGE_FIDELITY_WIRELOG": str(self.wire_log),
            "QQBRIDGE_FIDELITY_EVENTS": str(self.events_path),
        })
        return env

    def start_qqbot(self):
        (self.dir / "home").mkdir()
        (self.bench / "plugins").mkdir(parents=True)
        shutil.copy(HERE / "fidelity_probe.py", self.bench / "plugins" / "fidelity_probe.py")
        # A configuration with no mail account, no QR http server, no default plugins (the
        # sample configuration qqbot would write loads schedrestart) and no restart loop.
        (self.bench / "v2.3.conf").write_text(
            '{\n    "默认配置": {"plugins": [], "pluginsConf": {}, "restartOnOffline": False}\n}\n',
            encoding="utf-8",
        )
        self.term_port = free_port()
        cmd = [
            str(self.venv / "bin" / "qqbot"),
            "-b", str(self.bench),          # working dir: config, pickle, contact db, QR PNG
            "-p", str(self.term_port),      # term server (the `qq` command)
            "-nr",                          # no restart when offline
            "-saf",                         # fetch every contact table before starting
            "-d",                           # debug log (request retries are visible)
            "-pl", "fidelity_probe",        # the observing plugin
        ]
        with open(self.qqbot_log, "wb") as log:
            self.qqbot = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=str(self.dir), start_new_session=True, env=self.qqbot_env(),
            )

    def qq_command(self, *argv, timeout=60):
        """Runs qqbot's `qq PORT ...` term client; returns its output."""
        r = subprocess.run(
            [str(self.venv / "bin" / "qq"), str(self.term_port)] + list(argv),
            capture_output=True, timeout=timeout, env=self.qqbot_env(), stdin=subprocess.DEVNULL,
        )
        return (r.stdout + r.stderr).decode("utf-8", errors="replace").strip()

    # -- observation ----------------------------------------------------------------------

    def events(self):
        try:
            text = self.events_path.read_text(encoding="utf-8")
        except OSError:
            return []
        out = []
        for line in text.splitlines(keepends=True):
            if line.endswith("\n"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        return out

    def log_text(self):
        try:
            return self.qqbot_log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def wait_for(self, what, predicate, timeout):
        """Polls `predicate` (returning a truthy value) until it holds; raises on timeout or
        when qqbot exits."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if self.qqbot is not None and self.qqbot.poll() is not None:
                raise HarnessError("qqbot exited (code %s) while waiting for %s"
                                   % (self.qqbot.returncode, what))
            if time.monotonic() > deadline:
                raise HarnessError("timed out after %.0f s waiting for %s" % (timeout, what))
            time.sleep(0.2)

    def event(self, kind, cond=lambda e: True):
        for e in self.events():
            if e.get("event") == kind and cond(e):
                return e
        return None

    def wait_sent(self, kind, target, needle, timeout=15):
        account = self.expect["account"]

        def find():
            for m in sent_list(self.control.get("/_emulator/sent?account=%d" % account)):
                if (m.get("kind") == kind and int(m.get("target", -1)) == target
                        and needle in str(m.get("text", ""))):
                    return m
            return None

        try:
            return self.wait_for("%s message to %s in the sent log" % (kind, target), find, timeout)
        except HarnessError:
            return None

    # -- the steps ------------------------------------------------------------------------

    def run(self):
        try:
            self.steps()
        except HarnessError as e:
            self.check("scenario ran to the end", False, str(e))
            self.dump_logs()
        except Deadline:
            self.check("scenario ran to the end", False, "global time limit reached")
            self.dump_logs()
            raise
        finally:
            stop_process_group(self.qqbot)
            self.print_counters()
            stop_process_group(self.emulator, first_signal=signal.SIGINT)

    def print_counters(self):
        """What qqbot asked for, as the emulator counted it (endpoint=requests)."""
        if self.emulator is None or self.emulator.poll() is not None:
            return
        try:
            counters = self.state().get("counters", {})
        except (HarnessError, OSError):
            return
        print("[%s] requests per endpoint: %s" % (self.name, " ".join(
            "%s=%s" % (k, v.get("requests")) for k, v in sorted(counters.items()))), flush=True)

    def dump_logs(self):
        for label, path in (("qqbot log", self.qqbot_log), ("emulator log", self.emulator_log),
                            ("wire log", self.wire_log), ("plugin events", self.events_path)):
            print("----- [%s] %s (last lines) -----\n%s" % (self.name, label, tail(path)), flush=True)

    def steps(self):
        x = self.expect
        acct = x["account"]
        self.start_emulator()
        self.check("emulator started and wrote its CA", True)

        self.start_qqbot()

        # 1. The QR code: qqbot fetches ptqrshow and stores the PNG in its working dir.
        qr = self.wait_for("the QR code (onQrcode)", lambda: self.event("qrcode"), 60)
        path = Path(qr["path"])
        on_disk = path.exists() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        self.check("qqbot stored the QR code as a PNG in its working directory",
                   qr.get("png") and on_disk and path.parent == self.bench,
                   "event %s, file exists=%s" % (qr, path.exists()))

        # 2. ptqrlogin: 66 (not scanned) -> 67 (scanned) -> 0 (confirmed), as qqbot logs them.
        self.wait_for("qqbot to report state 66", lambda: LOG_QR_WAITING in self.log_text(), 30)
        self.check("qqbot saw ptqrlogin 66 (waiting for a scan)", True)
        self.control.post("/_emulator/qr/scan", {"qq": acct})
        ok = self.wait_for("qqbot to report state 67",
                           lambda: LOG_QR_SCANNED in self.log_text(), 30)
        self.check("qqbot saw ptqrlogin 67 after the scan", ok)
        self.control.post("/_emulator/qr/confirm", {"qq": acct})
        self.wait_for("qqbot to report state 0", lambda: LOG_QR_AUTHORIZED in self.log_text(), 30)
        self.check("qqbot saw ptqrlogin 0 after the confirmation", True)

        # 3. check_sig, getvfwebqq, login2, get_online_buddies2, then every contact table.
        start = self.wait_for("login and the contact fetch (onStartupComplete)",
                              lambda: self.event("startup"), 90)
        self.check("qqbot logged in as the scanned account",
                   str(start.get("qq")) == str(acct) and ("登录成功" in self.log_text()),
                   "startup qq=%s" % start.get("qq"))
        self.check("qqbot trusted the emulator's TLS certificate (no insecure fallback)",
                   LOG_INSECURE not in self.log_text())
        tables = start.get("tables", {})
        self.check_contacts(tables)
        st = self.state()
        live = [s for s in st.get("sessions", [])
                if s.get("account") == acct and s.get("state") == "alive"]
        self.check("emulator holds one live session for the account (d1 host, clientid 53999199)",
                   acct in st.get("online", []) and len(live) == 1
                   and live[0].get("channel_host") == "d1.web2.qq.com"
                   and live[0].get("clientid") == 53999199,
                   json.dumps(st.get("sessions")))

        # 4. Received messages, one at a time (qqbot reads only the first event of a poll).
        f = x["friend"]
        ping = "fidelity-ping %s 你好" % self.nonce
        self.control.post("/_emulator/messages",
                          {"account": acct, "kind": "friend", "from": f["qq"], "text": ping})
        try:
            m = self.wait_for("the friend message", lambda: self.event(
                "message", lambda e: e.get("content") == ping), 30)
            c = m.get("contact") or {}
            self.check("friend message received and resolved to the friend",
                       m.get("ctype") == "buddy" and c.get("name") == f["name"]
                       and c.get("nick") == f["nick"], json.dumps(m, ensure_ascii=False))
        except HarnessError as e:
            self.check("friend message received and resolved to the friend", False, str(e))

        g = x["group"]
        gtext = "fidelity group %s 大家好" % self.nonce
        self.control.post("/_emulator/messages", {"account": acct, "kind": "group",
                                                   "group": g["number"], "from": g["sender"],
                                                   "text": gtext})
        try:
            m = self.wait_for("the group message", lambda: self.event(
                "message", lambda e: e.get("content") == gtext), 30)
            c, mem = m.get("contact") or {}, m.get("member") or {}
            self.check("group message received and resolved to the group and its member",
                       m.get("ctype") == "group" and c.get("name") == g["name"]
                       and mem.get("nick") == g["sender_nick"], json.dumps(m, ensure_ascii=False))
        except HarnessError as e:
            self.check("group message received and resolved to the group and its member", False,
                       str(e))

        d = x["discussion"]
        dtext = "fidelity discussion %s 周末见" % self.nonce
        self.control.post("/_emulator/messages", {"account": acct, "kind": "discussion",
                                                   "discussion": d["did"], "from": d["sender"],
                                                   "text": dtext})
        try:
            m = self.wait_for("the discussion message", lambda: self.event(
                "message", lambda e: e.get("content") == dtext), 30)
            c, mem = m.get("contact") or {}, m.get("member") or {}
            self.check("discussion message received and resolved to the discussion and member",
                       m.get("ctype") == "discuss" and c.get("name") == d["name"]
                       and mem.get("name") == d["sender_nick"]
                       and str(mem.get("qq")) == str(d["sender"]),
                       json.dumps(m, ensure_ascii=False))
        except HarnessError as e:
            self.check("discussion message received and resolved to the discussion and member",
                       False, str(e))

        # 5. Sends: the plugin's reply (bot.SendTo in onQQMessage), then the term server.
        pong = "fidelity-pong %s" % self.nonce
        sent = self.wait_sent("friend", f["qq"], pong)
        self.check("plugin reply (bot.SendTo) reached the friend", sent is not None,
                   "replied event: %s" % self.event("replied"))

        btext = "term buddy %s /微笑 hi" % self.nonce
        out = self.qq_command("send", "buddy", f["name"], btext)
        sent = self.wait_sent("friend", f["qq"], "term buddy %s" % self.nonce)
        face_ok = False
        if sent is not None:
            try:
                content = json.loads(sent.get("content", ""))
                face_ok = ["face", 14] in content and content[-1][0] == "font"
            except (ValueError, TypeError, IndexError, KeyError):
                face_ok = False
        self.check("`qq send buddy` reached the friend (with the face and font)",
                   "发消息成功" in out and sent is not None and face_ok,
                   "qq said %r, sent log entry %s" % (out, sent))

        gsend = "term group %s 你好群" % self.nonce
        out = self.qq_command("send", "group", g["name"], gsend)
        sent = self.wait_sent("group", g["number"], gsend)
        self.check("`qq send group` reached the group", "发消息成功" in out and sent is not None,
                   "qq said %r" % out)

        dsend = "term discuss %s" % self.nonce
        out = self.qq_command("send", "discuss", d["selector"], dsend)
        sent = self.wait_sent("discussion", d["did"], dsend)
        self.check("`qq send discuss` reached the discussion",
                   "发消息成功" in out and sent is not None, "qq said %r" % out)

        # 6. `qq restart`: qqbot restarts itself and logs in again from the session it pickled
        # (cookies, psessionid, vfwebqq; protocol §1.4) with no new QR code, then polls on.
        out = self.qq_command("restart", timeout=20)
        startups = lambda: [e for e in self.events() if e.get("event") == "startup"]
        try:
            self.wait_for("the automatic re-login after `qq restart`",
                          lambda: len(startups()) >= 2, 60)
            ping2 = "fidelity after restart %s" % self.nonce
            self.control.post("/_emulator/messages",
                              {"account": acct, "kind": "friend", "from": f["qq"], "text": ping2})
            self.wait_for("a friend message after the restart", lambda: self.event(
                "message", lambda e: e.get("content") == ping2), 30)
            qr_shown = self.state().get("counters", {}).get("ptqrshow", {}).get("requests")
            self.check("`qq restart` re-used the saved session (no QR code) and receives again",
                       qr_shown == 1 and str(startups()[-1].get("qq")) == str(acct),
                       "ptqrshow requests: %s" % qr_shown)
        except HarnessError as e:
            self.check("`qq restart` re-used the saved session (no QR code) and receives again",
                       False, "qq said %r; %s" % (out, e))

        # 7. Still polling without errors, then a clean stop through the term server.
        self.check("qqbot never lost its session (no login-expired exit, no 103 loop)",
                   "登录 cookie 很可能已过期" not in self.log_text())
        out = self.qq_command("stop", timeout=20)
        try:
            self.qqbot.wait(timeout=30)
            code = self.qqbot.returncode
        except subprocess.TimeoutExpired:
            code = None
        self.check("`qq stop` stopped qqbot with exit code 0", code == 0,
                   "qq said %r, exit code %s" % (out, code))

    def check_contacts(self, tables):
        x = self.expect
        buddies = tables.get("buddy", [])
        names = [b.get("name") for b in buddies]
        self.check("friend list fetched (get_user_friends2)",
                   len(buddies) == x["buddy_count"] and all(n in names for n in x["buddy_names"]),
                   "buddies: %s" % names)

        g = x["group"]
        groups = [c for c in tables.get("group", []) if c.get("name") == g["name"]]
        self.check("group list fetched (get_group_name_list_mask2)", len(groups) == 1,
                   "groups: %s" % tables.get("group"))
        if groups:
            members = tables.get("group-member:%s" % groups[0].get("uin"), [])
            nicks = [m.get("nick") for m in members]
            cards = [m.get("card") for m in members]
            self.check("group members fetched (get_group_info_ext2)",
                       len(members) == g["member_count"] and g["sender_nick"] in nicks
                       and all(c in cards for c in g["cards"]),
                       "members: %s" % json.dumps(members, ensure_ascii=False))

        d = x["discussion"]
        discs = [c for c in tables.get("discuss", []) if c.get("name") == d["name"]]
        self.check("discussion list fetched (get_discus_list)", len(discs) == 1,
                   "discussions: %s" % tables.get("discuss"))
        if discs:
            members = tables.get("discuss-member:%s" % discs[0].get("uin"), [])
            qqs = sorted(int(m.get("qq", 0)) for m in members)
            self.check("discussion members fetched with real QQ numbers (get_discu_info ruin)",
                       qqs == sorted(d["members"]), "members: %s" % members)


# ---------------------------------------------------------------------------------------------


def default_binary():
    target = os.environ.get("CARGO_TARGET_DIR")
    base = Path(target) if target else REPO / "target"
    return base / "debug" / "qqbridge"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", type=Path, default=default_binary(),
                    help="the qqbridge binary (default: $CARGO_TARGET_DIR or target/debug)")
    ap.add_argument("--venv", type=Path, default=REPO / ".venv-fidelity",
                    help="virtualenv holding qqbot 2.3.11 (created when missing)")
    ap.add_argument("--python", default=sys.executable,
                    help="interpreter used to create the venv (default: this one)")
    ap.add_argument("--scenario", action="append", choices=sorted(SCENARIOS),
                    help="run only these scenarios (default: all)")
    ap.add_argument("--timeout", type=float, default=600.0,
                    help="global time limit in seconds (default 600)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    args.venv = args.venv.resolve()

    results = Results()
    started = time.monotonic()

    def on_alarm(signum, frame):
        raise Deadline()

    def on_term(signum, frame):
        raise KeyboardInterrupt()

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_term)
    signal.alarm(max(1, int(args.timeout)))

    workdir = Path(tempfile.mkdtemp(prefix="qqbot-fidelity-"))
    try:
        if not args.binary.exists():
            results.check("setup", "qqbridge binary present", False, str(args.binary))
        else:
            try:
                ensure_venv(args.venv, args.python)
                results.check("setup", "qqbot 2.3.11 venv ready (%s)" % args.venv, True)
            except (subprocess.SubprocessError, OSError, HarnessError) as e:
                results.check("setup", "qqbot 2.3.11 venv ready", False, str(e))
            else:
                for name in args.scenario or list(SCENARIOS):
                    t0 = time.monotonic()
                    Scenario(name, SCENARIOS[name], args, results, workdir).run()
                    print("[%s] took %.1f s" % (name, time.monotonic() - t0), flush=True)
    except Deadline:
        results.check("harness", "finished within %.0f s" % args.timeout, False)
    except KeyboardInterrupt:
        results.check("harness", "not interrupted", False)
    finally:
        signal.alarm(0)
        if args.keep:
            print("kept %s" % workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print("total %.1f s" % (time.monotonic() - started))
    print("%d passed, %d failed" % (results.passed, results.failed))
    return 0 if results.failed == 0 and results.passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
