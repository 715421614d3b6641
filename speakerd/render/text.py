"""One readable line per decoded BGP message, tcpdump style.

``2026-11-26 12:46:15.123456 10.0.0.1.179 > 10.0.0.2.40110: OPEN len 59 as 65001 hold 90 id 10.0.0.1 caps ...``
"""
from __future__ import annotations

import datetime as _dt

from ..wire import capabilities as caps
from ..wire.messages import Keepalive, Notification, Open, RouteRefresh
from ..wire.update import Update, decodes_family
from ..wire.constants import AFI
from .fields import (afi_name, attrs_fields, capability_fields, error_fields, family_name, message_fields, next_hops,
                     prefix, type_name)
from .record import Record

MAX_PREFIXES = 20  # per list on one line; the rest is counted


def _time(ts_ns: int) -> str:
    sec, ns = divmod(ts_ns, 1_000_000_000)
    t = _dt.datetime.fromtimestamp(sec, _dt.timezone.utc)
    return t.strftime("%Y-%m-%d %H:%M:%S") + f".{ns // 1000:06d}"


def _endpoint(addr: str, port: int | None) -> str:
    return f"{addr}.{port}"  # tcpdump's notation, unambiguous for IPv6 too


def _plist(afi: int, keys) -> str:
    """The first MAX_PREFIXES prefixes as text (only those are formatted), then a count."""
    shown = " ".join(prefix(afi, k) for k in keys[:MAX_PREFIXES])
    if len(keys) <= MAX_PREFIXES:
        return shown
    return shown + f" ... (+{len(keys) - MAX_PREFIXES} more)"


def _cap(c: caps.Capability) -> str:
    if isinstance(c, caps.Multiprotocol):
        return f"mp:{capability_fields(c)['afi']}/{capability_fields(c)['safi']}"
    if isinstance(c, caps.FourOctetAS):
        return f"as4:{c.asn}"
    if isinstance(c, caps.AddPath):
        return "add-path:" + ",".join(f"{e['afi']}/{e['safi']}/{e['send_receive']}"
                                      for e in capability_fields(c)["entries"])
    if isinstance(c, caps.GracefulRestart):
        return f"graceful-restart:{c.restart_time}s" + (":R" if c.restarting else "")
    if isinstance(c, caps.FQDN):
        return f"fqdn:{c.hostname}" + (f".{c.domain}" if c.domain else "")
    if isinstance(c, caps.UnknownCapability):
        return f"cap{c.code}:{c.value.hex()}" if c.value else f"cap{c.code}"
    return capability_fields(c)["name"]


def _as_path(segments: list[dict]) -> str:
    parts = []
    for seg in segments:
        asns = " ".join(map(str, seg["asns"]))
        if seg["type"] == "sequence":
            parts.append(asns)
        elif seg["type"] == "set":
            parts.append("{" + asns.replace(" ", ",") + "}")
        elif seg["type"] == "confed-sequence":
            parts.append("(" + asns + ")")
        else:
            parts.append("[" + asns.replace(" ", ",") + "]")
    return " ".join(parts) if parts else "(empty)"


def _attrs_text(a: dict) -> list[str]:
    out = []
    for key, value in a.items():
        if key == "as_path":
            out.append(f"as-path [{_as_path(value)}]")
        elif key == "aggregator":
            out.append(f"aggregator {value['asn']}/{value['id']}")
        elif key == "extended_communities":
            out.append("ext-communities " + " ".join(
                f"{e['type']}:{e['value']}" if "type" in e else e["hex"] for e in value))
        elif key == "unknown":
            out.append("unknown " + " ".join(f"attr{u['type']}(flags 0x{u['flags']:02x}):{u['value']}"
                                              for u in value))
        elif isinstance(value, list):
            out.append(f"{key.replace('_', '-')} " + " ".join(map(str, value)))
        elif value is True:
            out.append(key.replace("_", "-"))
        else:
            out.append(f"{key.replace('_', '-')} {value}")
    return out


def _update_text(u: Update) -> str:
    eor = u.end_of_rib
    if eor:
        return f"End-of-RIB {family_name(*eor)}"
    parts = []
    if u.withdrawn:
        parts.append(f"withdrawn {_plist(AFI.IPV4, u.withdrawn)}")
    if u.mp_unreach is not None:
        m = u.mp_unreach
        if not decodes_family(m.afi, m.safi):
            parts.append(f"mp-withdrawn {afi_name(m.afi)} not decoded (SAFI {m.safi}, {len(m.undecoded)} bytes)")
        else:
            parts.append(f"mp-withdrawn {family_name(m.afi, m.safi)} {_plist(m.afi, m.withdrawn)}".rstrip())
    if u.attrs is not None:
        parts.extend(_attrs_text(attrs_fields(u.attrs)))
    if u.mp_reach is not None:
        m = u.mp_reach
        if not decodes_family(m.afi, m.safi):
            parts.append(f"mp-reach {afi_name(m.afi)} not decoded (SAFI {m.safi}, {len(m.undecoded)} bytes)")
        else:
            parts.append(f"mp-reach {family_name(m.afi, m.safi)} nh {','.join(next_hops(bytes(m.next_hop)))} "
                         f"nlri {_plist(m.afi, m.nlri)}")
    if u.nlri:
        parts.append(f"nlri {_plist(AFI.IPV4, u.nlri)}")
    if u.treat_as_withdraw:
        parts.append("TREAT-AS-WITHDRAW")
    for e in map(error_fields, u.errors):
        parts.append(f"error [{e['name']}: {e['reason']}]" if e["reason"] else f"error [{e['name']}]")
    return " ".join(parts)


def message_text(msg: object) -> str:
    """The message's type and key fields on one line (no header fields)."""
    if isinstance(msg, Open):
        caps_text = " ".join(_cap(c) for c in msg.capabilities)
        return (f"OPEN as {msg.asn} hold {msg.hold_time} id {message_fields(msg)['bgp_id']}"
                + (f" caps {caps_text}" if caps_text else ""))
    if isinstance(msg, Update):
        return ("UPDATE " + _update_text(msg)).rstrip()
    if isinstance(msg, Notification):
        text = f"NOTIFICATION {msg.name} ({msg.code}/{msg.subcode})"
        if msg.shutdown_message is not None:
            text += f' "{msg.shutdown_message}"'
        elif msg.data:
            text += f" data {bytes(msg.data).hex()}"
        return text
    if isinstance(msg, Keepalive):
        return "KEEPALIVE"
    if isinstance(msg, RouteRefresh):
        f = message_fields(msg)
        return f"ROUTE-REFRESH {f['afi']}/{f['safi']}" + ("" if f["subtype"] == "normal" else f" {f['subtype']}")
    raise TypeError(f"not a BGP message: {type(msg).__name__}")


def record_line(rec: Record) -> str:
    head = []
    if rec.ts_ns is not None:
        head.append(_time(rec.ts_ns))
    if rec.src is not None:
        head.append(f"{_endpoint(rec.src, rec.sport)} > {_endpoint(rec.dst, rec.dport)}:")
    if rec.note:
        body = f"-- {rec.note}"
    elif rec.error is not None:
        e = error_fields(rec.error)
        body = (f"{type_name(rec.mtype)} len {rec.length} MALFORMED {e['name']}"
                + (f": {e['reason']}" if e["reason"] else "") + (f" (data {e['data']})" if e["data"] else ""))
    else:
        text = message_text(rec.msg)
        name, _, rest = text.partition(" ")
        body = f"{name} len {rec.length}" + (f" {rest}" if rest else "")
    return " ".join(head + [body])
