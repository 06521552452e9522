"""Connection redirect (and one stdlib shim) for running an unchanged WebQQ client against
the qqbridge emulator. Python imports this module at start-up when its directory is on
PYTHONPATH; tests/fidelity/qqbot_against_emulator.py puts it there for the qqbot processes.

What it does, and nothing else:

* Redirect. Every host name that is ``qq.com`` or ends in ``.qq.com`` resolves to the
  emulator: port 80 to its plain listener (QQBRIDGE_FIDELITY_PLAIN = "IP:PORT"), port 443 to
  its TLS listener (QQBRIDGE_FIDELITY_TLS). URLs, Host headers, TLS server names and cookie
  domains stay the real ones, so the client cannot tell. Any other name except localhost
  and IP literals fails to resolve: nothing leaves the machine. The client trusts the
  emulator's CA through REQUESTS_CA_BUNDLE / SSL_CERT_FILE, set by the harness.
* Shim. ``html.parser.HTMLParser.unescape`` was deprecated in Python 3.4 and removed in 3.9;
  qqbot 2.3.11 (Dec 2018) calls it at import time (qqbot/common.py). The shim puts back the
  method as it was in 3.4-3.8: a call of ``html.unescape``.
* Wire log (optional). With QQBRIDGE_FIDELITY_WIRELOG = a file name, every redirected
  connection and every HTTP request line urllib3 logs is appended there, with the values of
  session tokens in query strings replaced by ``***``.
"""

import html
import html.parser
import os
import re
import socket

if not hasattr(html.parser.HTMLParser, "unescape"):

    def _unescape(self, s):
        return html.unescape(s)

    html.parser.HTMLParser.unescape = _unescape


def _parse_addr(value):
    host, _, port = value.rpartition(":")
    return host, int(port)


_PLAIN = os.environ.get("QQBRIDGE_FIDELITY_PLAIN")
_TLS = os.environ.get("QQBRIDGE_FIDELITY_TLS")
_WIRELOG = os.environ.get("QQBRIDGE_FIDELITY_WIRELOG")

_SECRET_PARAMS = re.compile(
    r"((?:ptwebqq|vfwebqq|psessionid|ptqrtoken|ptsigx|skey|pt4_token|auth_token)=)[^&\s\"]*"
)


def _wirelog(line):
    if not _WIRELOG:
        return
    try:
        with open(_WIRELOG, "a", encoding="utf-8") as f:
            f.write(_SECRET_PARAMS.sub(r"\1***", line) + "\n")
    except OSError:
        pass


def _is_qq_name(host):
    h = host.lower().rstrip(".")
    return h == "qq.com" or h.endswith(".qq.com")


def _is_local_or_literal(host):
    if host in ("localhost", "localhost.localdomain"):
        return True
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host.strip("[]"))
            return True
        except (OSError, ValueError):
            pass
    return False


if _PLAIN and _TLS:
    _targets = {80: _parse_addr(_PLAIN), 443: _parse_addr(_TLS)}
    _real_getaddrinfo = socket.getaddrinfo

    def _getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        name = host.decode("ascii") if isinstance(host, bytes) else host
        if isinstance(name, str) and _is_qq_name(name):
            try:
                wanted = int(port) if port is not None else 80
            except ValueError:
                wanted = {"http": 80, "https": 443}.get(str(port), -1)
            target = _targets.get(wanted)
            if target is None:
                _wirelog("refused %s:%s (only ports 80 and 443 are emulated)" % (name, port))
                raise socket.gaierror(socket.EAI_NONAME, "no emulated service on that port")
            _wirelog("connect %s:%s -> %s:%s" % (name, wanted, target[0], target[1]))
            return [
                (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", target)
            ]
        if isinstance(name, str) and not _is_local_or_literal(name):
            _wirelog("refused %s:%s (not a QQ host)" % (name, port))
            raise socket.gaierror(socket.EAI_NONAME, "the fidelity sandbox resolves QQ hosts only")
        return _real_getaddrinfo(host, port, family, type, proto, flags)

    socket.getaddrinfo = _getaddrinfo

if _WIRELOG:
    import logging

    class _WireHandler(logging.Handler):
        def emit(self, record):
            try:
                _wirelog(record.getMessage())
            except Exception:
                pass

    _wire_logger = logging.getLogger("urllib3.connectionpool")
    _wire_logger.setLevel(logging.DEBUG)
    _wire_logger.propagate = False
    _wire_logger.addHandler(_WireHandler())
