# -*- coding: utf-8 -*-
"""A qqbot plugin (qqbot's documented extension mechanism: a module in <bench>/plugins named
with -pl) that lets the fidelity harness observe qqbot from outside. It appends one JSON
object per line to the file named by QQBRIDGE_FIDELITY_EVENTS:

  qrcode   onQrcode: where qqbot stored the QR image and whether it is a PNG
  update   onUpdate: a contact table qqbot fetched
  startup  onStartupComplete: the logged-in QQ number and every contact table qqbot holds
  message  onQQMessage: a received message as qqbot resolved it (contact, member, text)
  exit     onExit

It also answers a buddy message starting with "fidelity-ping " with "fidelity-pong " and the
same tail, through bot.SendTo, so a send made from inside a plugin is observable too.
"""

import json
import os

_EVENTS = os.environ.get("QQBRIDGE_FIDELITY_EVENTS", "fidelity-events.jsonl")


def _emit(kind, **fields):
    fields["event"] = kind
    with open(_EVENTS, "a", encoding="utf-8") as f:
        f.write(json.dumps(fields, ensure_ascii=False) + "\n")
        f.flush()


def _contact(c):
    if c is None:
        return None
    return dict((k, v) for k, v in c.__dict__.items())


def onQrcode(bot, pngPath, pngContent):
    _emit(
        "qrcode",
        path=pngPath,
        size=len(pngContent),
        png=pngContent[:8] == b"\x89PNG\r\n\x1a\n",
    )


def onUpdate(bot, tinfo):
    _emit("update", table=tinfo if isinstance(tinfo, str) else "%s-member:%s" % (tinfo.ctype, tinfo.uin))


def onStartupComplete(bot):
    tables = {}
    for ctype in ("buddy", "group", "discuss"):
        contacts = bot.List(ctype) or []
        tables[ctype] = [_contact(c) for c in contacts]
        if ctype in ("group", "discuss"):
            for owner in contacts:
                members = bot.List(owner) or []
                tables["%s-member:%s" % (ctype, owner.uin)] = [_contact(m) for m in members]
    _emit("startup", qq=bot.conf.qq, tables=tables)


def onQQMessage(bot, contact, member, content):
    _emit("message", ctype=contact.ctype, contact=_contact(contact), member=_contact(member),
          content=content)
    if contact.ctype == "buddy" and content.startswith("fidelity-ping "):
        result = bot.SendTo(contact, "fidelity-pong " + content[len("fidelity-ping "):])
        _emit("replied", result=result)


def onExit(bot, code, reason, error):
    _emit("exit", code=code, reason=reason, error=repr(error) if error else None)
