#!/usr/bin/env python3
"""Secrets never reach a log (issue 6, "Security"): greps everything a run wrote for every secret it
handled.

Secrets come from: the emulator (every session cookie, ptsigx, psessionid and vfwebqq it handed out,
and the account passwords: GET /_emulator/secrets), the appservice registration (as_token,
hs_token), and any --secret given. Searched: every file under each --dir (recursively) except the
files named by --allow (the places secrets are kept on purpose, readable by their owner only:
the store, the registration, the config), plus the bridge's /metrics page when --metrics is given.
A secret is searched as written and in its URL-encoded and JSON-escaped forms.

Exit status: 0 when no secret was found, 1 when one was (the file and the kind of secret are
printed, never the secret), 2 when the check could not run (e.g. the emulator gave no secrets).

Usage: leak-check.py --emulator URL --registration FILE --dir DIR [--dir DIR ...]
                     [--allow GLOB ...] [--metrics URL] [--secret TEXT ...]
"""
import argparse
import fnmatch
import json
import os
import sys
import urllib.parse
import urllib.request

MIN_LEN = 8


def fetch(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read()


def registration_tokens(path):
    tokens = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            key, _, value = line.partition(":")
            key = key.strip().strip('"')
            if key in ("as_token", "hs_token"):
                tokens[key] = value.strip().strip('"').strip("'")
    return tokens


def forms(secret):
    out = {secret, urllib.parse.quote(secret, safe=""), json.dumps(secret)[1:-1]}
    return {f.encode("utf-8") for f in out if len(f) >= MIN_LEN}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--emulator", required=True, help="the emulator's base URL (control API)")
    ap.add_argument("--registration", required=True, help="the appservice registration YAML")
    ap.add_argument("--dir", action="append", required=True, help="a directory a run wrote to")
    ap.add_argument("--allow", action="append", default=[], help="a file glob kept out of the check")
    ap.add_argument("--metrics", help="the bridge's /metrics URL, scraped and checked too")
    ap.add_argument("--secret", action="append", default=[], help="one more secret (e.g. a token)")
    args = ap.parse_args()

    secrets = {}
    try:
        issued = json.loads(fetch(args.emulator.rstrip("/") + "/_emulator/secrets"))["secrets"]
    except (OSError, ValueError, KeyError) as e:
        print(f"leak-check: the emulator gave no secrets ({e})", file=sys.stderr)
        return 2
    for s in issued:
        secrets[s] = "a QQ credential the emulator issued (cookie, ptsigx, psessionid, vfwebqq or password)"
    for kind, token in registration_tokens(args.registration).items():
        secrets[token] = f"the appservice {kind}"
    for s in args.secret:
        secrets[s] = "a secret named on the command line"
    secrets = {s: kind for s, kind in secrets.items() if len(s) >= MIN_LEN}
    if not issued or len(secrets) < 3:
        print(f"leak-check: only {len(secrets)} secrets to look for; the run did not log in?", file=sys.stderr)
        return 2

    files = []
    for d in args.dir:
        for root, _, names in os.walk(d):
            for name in names:
                path = os.path.join(root, name)
                if any(fnmatch.fnmatch(path, g) or fnmatch.fnmatch(name, g) for g in args.allow):
                    continue
                files.append(path)
    blobs = []
    for path in files:
        try:
            with open(path, "rb") as f:
                blobs.append((path, f.read()))
        except OSError as e:
            print(f"leak-check: cannot read {path}: {e}", file=sys.stderr)
            return 2
    if args.metrics:
        blobs.append((args.metrics, fetch(args.metrics)))

    patterns = [(p, kind) for s, kind in secrets.items() for p in forms(s)]
    found = 0
    scanned = 0
    for where, data in blobs:
        scanned += len(data)
        for pattern, kind in patterns:
            if pattern in data:
                found += 1
                print(f"leak-check: LEAK in {where}: {kind}")
    print(
        f"leak-check: {len(secrets)} secrets ({len(issued)} from the emulator) searched in "
        f"{len(blobs)} outputs ({scanned / 1024:.0f} KiB); {found} found"
    )
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
