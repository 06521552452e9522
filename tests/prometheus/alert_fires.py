#!/usr/bin/env python3
"""A real Prometheus against qqbridge and its WebQQ emulator (issue 3 acceptance).

Starts the emulator (demo world plus a second password account), `qqbridge run` with two
password accounts, and a real Prometheus that scrapes the bridge every second and evaluates a
test copy of metrics/prometheus/alerts.yaml whose QqPollStalled threshold is shortened from
180 s to 8 s (nothing else changed). Then: both accounts connect, QqPollStalled stays quiet
while polls succeed, one account's poll2 is stalled through the emulator's fault API, and
QqPollStalled fires for that account and not for the other. Finally every qqbridge_* metric
the Grafana dashboard queries must be in the bridge's /metrics exposition.

Usage: alert_fires.py QQBRIDGE_BINARY   (scripts/prometheus-test.sh builds it and runs this)
Stdlib only. Every child runs in its own process group and is killed on exit, failure or
timeout. Prints `N passed, M failed`; exits 0 only when everything passed.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ALERTS = os.path.join(ROOT, "metrics", "prometheus", "alerts.yaml")
DASHBOARD = os.path.join(ROOT, "metrics", "grafana", "qqbridge.json")

# The whole test must finish within this many seconds, whatever hangs.
OVERALL_TIMEOUT = 150
# The shortened QqPollStalled threshold (seconds without a successful poll).
STALL_THRESHOLD = 8
# How long the stalled account's poll2 requests are held by the emulator.
STALL_SECONDS = 60
# Bound on waiting for the alert to fire once the stall starts.
FIRE_TIMEOUT = 60

FIRST = {"id": "first", "qq": 10001, "password": "password"}  # in the emulator's demo world
SECOND = {"id": "second", "qq": 20001, "password": "pw"}  # added through the control API

CHILDREN = []  # (name, Popen, log path)
RESULTS = []  # (name, ok, detail)


class Timeout(Exception):
    pass


def on_alarm(_signum, _frame):
    raise Timeout(f"overall timeout of {OVERALL_TIMEOUT} s")


def on_term(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


def check(name, ok, detail=""):
    RESULTS.append((name, bool(ok), detail))
    status = "ok  " if ok else "FAIL"
    print(f"  {status} {name}" + (f": {detail}" if detail and not ok else ""), flush=True)
    return bool(ok)


def free_ports(n):
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def start(name, argv, workdir):
    log = os.path.join(workdir, f"{name}.log")
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=workdir, start_new_session=True,
        )
    CHILDREN.append((name, proc, log))
    return proc


def stop_children():
    for _name, proc, _log in CHILDREN:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 5
    for _name, proc, _log in CHILDREN:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        # The group may hold more than the leader; make sure nothing of it survives.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            pass


def show_logs(lines=25):
    for name, _proc, log in CHILDREN:
        try:
            with open(log, "r", errors="replace") as f:
                tail = f.readlines()[-lines:]
        except OSError:
            continue
        print(f"--- last {len(tail)} lines of {name} ({log})", flush=True)
        for line in tail:
            print("    " + re.sub(r"\x1b\[[0-9;]*m", "", line.rstrip("\n")))


def http(method, url, body=None, timeout=5):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return resp.status, resp.read().decode("utf-8", "replace")


def wait_for(what, probe, timeout, interval=0.25):
    """Calls probe() until it returns a truthy value or `timeout` seconds pass; returns it."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        for name, proc, _log in CHILDREN:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode} while waiting for {what}")
        try:
            value = probe()
            if value:
                return value
        except (OSError, urllib.error.URLError, ValueError) as e:
            last_error = e
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout} s waiting for {what}"
                       + (f" (last error: {last_error})" if last_error else ""))


def shortened_alerts():
    """alerts.yaml with only QqPollStalled's `> 180` replaced; returns (text, substitutions)."""
    with open(ALERTS) as f:
        text = f.read()
    pattern = re.compile(
        r"(- alert: QqPollStalled\n\s+expr: \|\n\s+time\(\) - "
        r"qqbridge_poll_last_success_timestamp_seconds) > 180\n")
    return pattern.subn(rf"\1 > {STALL_THRESHOLD}\n", text)


def dashboard_metrics():
    with open(DASHBOARD) as f:
        dash = json.load(f)
    exprs = []

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("expr", "query", "definition") and isinstance(value, str):
                    exprs.append(value)
                elif key == "query" and isinstance(value, dict):
                    exprs.append(json.dumps(value))
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(dash)
    names = set()
    for expr in exprs:
        for name in re.findall(r"\bqqbridge_[A-Za-z0-9_]+", expr):
            names.add(re.sub(r"_(bucket|sum|count)$", "", name))
    return sorted(names)


def exposition_names(text):
    names = set()
    for line in text.splitlines():
        m = re.match(r"# (?:HELP|TYPE) ([A-Za-z_:][A-Za-z0-9_:]*)", line)
        if m:
            names.add(m.group(1))
            continue
        m = re.match(r"([A-Za-z_:][A-Za-z0-9_:]*)[{ ]", line)
        if m:
            names.add(re.sub(r"_(bucket|sum|count)$", "", m.group(1)))
    return names


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[0] + "\nusage: alert_fires.py QQBRIDGE_BINARY")
        return 2
    binary = os.path.abspath(sys.argv[1])
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        print("prometheus is not installed (Debian package `prometheus`)")
        return 2
    started = time.monotonic()
    work = tempfile.mkdtemp(prefix="qqbridge-prom-")
    plain, tls, metrics_port, prom_port = free_ports(4)
    emulator = f"http://127.0.0.1:{plain}/_emulator"
    bridge_metrics = f"http://127.0.0.1:{metrics_port}/metrics"
    prom = f"http://127.0.0.1:{prom_port}"
    print(f"alert_fires: work dir {work}", flush=True)

    def prom_query(expr):
        url = f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        _, body = http("GET", url)
        data = json.loads(body)
        if data.get("status") != "success":
            raise ValueError(f"query failed: {body[:200]}")
        return data["data"]["result"]

    def stalled_alerts():
        _, body = http("GET", f"{prom}/api/v1/alerts")
        alerts = json.loads(body)["data"]["alerts"]
        return [a for a in alerts if a["labels"].get("alertname") == "QqPollStalled"]

    try:
        # ---- the test copy of the alert rules ---------------------------------------------
        rules_text, subs = shortened_alerts()
        check("alerts.yaml: QqPollStalled threshold `> 180` shortened exactly once", subs == 1,
              f"{subs} substitutions")
        if subs != 1:
            return 1
        rules = os.path.join(work, "alerts.yaml")
        with open(rules, "w") as f:
            f.write(rules_text)
        promtool = shutil.which("promtool")
        if promtool:
            res = subprocess.run([promtool, "check", "rules", rules], capture_output=True,
                                 text=True, timeout=30)
            check("promtool accepts the shortened rules", res.returncode == 0,
                  res.stdout + res.stderr)

        # ---- emulator ------------------------------------------------------------------------
        ca = os.path.join(work, "emulator-ca.pem")
        start("emulator", [binary, "emulator", "--listen", f"127.0.0.1:{plain}",
                           "--tls-listen", f"127.0.0.1:{tls}", "--ca-cert-out", ca,
                           "--poll-hold", "2"], work)
        wait_for("the emulator", lambda: http("GET", f"{emulator}/state")[0] == 200
                 and os.path.exists(ca), 20)
        status, body = http("POST", f"{emulator}/accounts",
                            {"qq": SECOND["qq"], "password": SECOND["password"],
                             "nick": "second", "captcha": False})
        check("emulator: second password account added", status == 200, body)

        # ---- bridge --------------------------------------------------------------------------
        accounts = "".join(
            f"  - id: {a['id']}\n    qq: {a['qq']}\n    login: password\n"
            f"    password: \"{a['password']}\"\n" for a in (FIRST, SECOND))
        config = os.path.join(work, "bridge.yaml")
        with open(config, "w") as f:
            f.write(f"qq:\n  connect: \"127.0.0.1:{tls}\"\n  ca_cert: {ca}\n"
                    f"accounts:\n{accounts}"
                    f"store:\n  path: {os.path.join(work, 'store', 'qqbridge.sqlite3')}\n"
                    f"metrics:\n  listen: \"127.0.0.1:{metrics_port}\"\n"
                    f"logging:\n  filter: info\n")
        res = subprocess.run([binary, "check-config", "-c", config], capture_output=True,
                             text=True, timeout=30)
        check("bridge: check-config accepts the test config", res.returncode == 0,
              res.stdout + res.stderr)
        start("bridge", [binary, "run", "-c", config], work)
        wait_for("the bridge's /metrics", lambda: http("GET", bridge_metrics)[0] == 200, 20)

        # ---- prometheus ----------------------------------------------------------------------
        prom_config = os.path.join(work, "prometheus.yml")
        with open(prom_config, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "  evaluation_interval: 1s\n"
                    f"rule_files:\n  - {rules}\n"
                    "scrape_configs:\n  - job_name: qqbridge\n    static_configs:\n"
                    f"      - targets: [\"127.0.0.1:{metrics_port}\"]\n")
        start("prometheus", [prometheus, f"--config.file={prom_config}",
                             f"--storage.tsdb.path={os.path.join(work, 'tsdb')}",
                             f"--web.listen-address=127.0.0.1:{prom_port}",
                             "--log.level=warn"], work)
        wait_for("Prometheus to be ready", lambda: http("GET", f"{prom}/-/ready")[0] == 200, 30)
        wait_for("Prometheus to scrape the bridge",
                 lambda: any(r["value"][1] == "1" for r in prom_query('up{job="qqbridge"}')), 20)
        check("prometheus: scrapes the bridge (up == 1)", True)

        # ---- healthy: both connected, no stall alert -----------------------------------------
        def connected():
            rows = prom_query('qqbridge_account_state{state="CONNECTED"} == 1')
            return {r["metric"].get("account") for r in rows} >= {FIRST["id"], SECOND["id"]}

        try:
            wait_for("both accounts CONNECTED in Prometheus", connected, 30)
            check("both accounts CONNECTED (qqbridge_account_state via Prometheus)", True)
        except RuntimeError as e:
            check("both accounts CONNECTED (qqbridge_account_state via Prometheus)", False, str(e))
            return 1
        # Longer than the shortened threshold: succeeding polls keep the alert quiet.
        time.sleep(STALL_THRESHOLD + 3)
        quiet = stalled_alerts()
        check(f"healthy for {STALL_THRESHOLD + 3} s: QqPollStalled neither pending nor firing",
              not quiet, json.dumps(quiet))

        # ---- stall one account's poll2 -------------------------------------------------------
        status, body = http("POST", f"{emulator}/faults",
                            {"endpoint": "poll2", "account": SECOND["qq"],
                             "seconds": STALL_SECONDS, "kind": {"delay_ms": STALL_SECONDS * 1000}})
        check(f"emulator: poll2 of {SECOND['qq']} stalled for {STALL_SECONDS} s", status == 200,
              body)
        stall_start = time.monotonic()

        def fired():
            return [a for a in stalled_alerts() if a["state"] == "firing"
                    and a["labels"].get("account") == SECOND["id"]]

        try:
            firing = wait_for("QqPollStalled to fire for the stalled account", fired,
                              FIRE_TIMEOUT, interval=0.5)
            check(f"QqPollStalled fires for account {SECOND['id']} "
                  f"({time.monotonic() - stall_start:.1f} s after the stall)", True)
            labels = firing[0]["labels"]
            check("the alert carries job, instance and severity=critical",
                  labels.get("job") == "qqbridge"
                  and labels.get("instance") == f"127.0.0.1:{metrics_port}"
                  and labels.get("severity") == "critical", json.dumps(labels))
        except RuntimeError as e:
            check(f"QqPollStalled fires for account {SECOND['id']}", False, str(e))
        others = [a for a in stalled_alerts() if a["labels"].get("account") != SECOND["id"]]
        check(f"QqPollStalled not pending or firing for account {FIRST['id']}", not others,
              json.dumps(others))
        fresh = prom_query(f'time() - qqbridge_poll_last_success_timestamp_seconds'
                           f'{{account="{FIRST["id"]}"}} < {STALL_THRESHOLD}')
        check(f"account {FIRST['id']} keeps polling meanwhile", len(fresh) == 1, json.dumps(fresh))

        # ---- dashboard metrics ---------------------------------------------------------------
        wanted = dashboard_metrics()
        _, exposition = http("GET", bridge_metrics)
        have = exposition_names(exposition)
        missing = [m for m in wanted if m not in have]
        check(f"every qqbridge_* metric of the dashboard ({len(wanted)}) is in /metrics",
              wanted and not missing, f"missing: {', '.join(missing)}")
    except (Timeout, RuntimeError, OSError, urllib.error.URLError, ValueError, KeyError) as e:
        check("test ran to completion", False, f"{type(e).__name__}: {e}")
    except KeyboardInterrupt as e:
        check("test ran to completion", False, f"interrupted ({e})")
    finally:
        signal.alarm(0)
        failed = [r for r in RESULTS if not r[1]]
        if failed:
            show_logs()
        stop_children()
        if not failed:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"alert_fires: logs kept in {work}")
        print(f"alert_fires: took {time.monotonic() - started:.1f} s")
        passed = sum(1 for r in RESULTS if r[1])
        print(f"{passed} passed, {len(RESULTS) - passed} failed", flush=True)
    return 0 if RESULTS and passed == len(RESULTS) else 1


if __name__ == "__main__":
    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_term)
    signal.alarm(OVERALL_TIMEOUT)
    sys.exit(main())
