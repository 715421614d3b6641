"""Decoded BGP messages as JSON-ready dicts with stable field names.

Prefixes are text (``10.0.0.0/24``), communities ``a:b``, large communities
``a:b:c``, extended communities ``{"hex", "type", "value"}``, addresses and
BGP identifiers dotted/colon text.  Every message dict has ``type`` (name)
and its type-specific fields; UPDATE always carries the same keys.
"""
from __future__ import annotations

import socket
import struct

from ..wire import capabilities as caps
from ..wire.constants import AFI, SAFI, AsPathSegmentType, CapabilityCode, MessageType, Origin, error_name
from ..wire.errors import BGPError
from ..wire.messages import Keepalive, Notification, Open, RouteRefresh
from ..wire.nlri import key_to_str
from ..wire.update import MpReach, MpUnreach, PathAttributes, Update, decodes_family
from .record import Record


TYPE_NAMES = {t.value: t.name.replace("_", "-") for t in MessageType}
_SEGMENT_NAMES = {AsPathSegmentType.AS_SET: "set", AsPathSegmentType.AS_SEQUENCE: "sequence",
                  AsPathSegmentType.AS_CONFED_SEQUENCE: "confed-sequence",
                  AsPathSegmentType.AS_CONFED_SET: "confed-set"}
_ADD_PATH_DIR = {1: "receive", 2: "send", 3: "both"}


def type_name(mtype: int | None) -> str:
    if mtype is None:
        return "UNKNOWN"
    return TYPE_NAMES.get(mtype, f"TYPE-{mtype}")


def afi_name(afi: int) -> str:
    try:
        return AFI(afi).name.lower()
    except ValueError:
        return str(afi)


def safi_name(safi: int) -> str:
    try:
        return SAFI(safi).name.lower()
    except ValueError:
        return str(safi)


def family_name(afi: int, safi: int) -> str:
    return f"{afi_name(afi)}/{safi_name(safi)}"


def ipv4(n: int) -> str:
    return socket.inet_ntoa(struct.pack("!I", n & 0xFFFFFFFF))


def prefix(afi: int, key: int) -> str:
    """Prefix key ``(address << 8) | length`` as text."""
    return key_to_str(afi, key)


def community(c: int) -> str:
    return f"{c >> 16}:{c & 0xFFFF}"


def large_community(lc: tuple[int, int, int]) -> str:
    return "%d:%d:%d" % lc


def extended_community(ec: int) -> dict:
    """RFC 4360/5668/7153 typed view where the type is one of the common ones."""
    raw = ec.to_bytes(8, "big")
    out: dict = {"hex": raw.hex()}
    t, sub = raw[0] & 0x3F, raw[1]  # without the IANA-authority and transitive bits
    name = {2: "rt", 3: "soo"}.get(sub)
    if name and t == 0x00:  # two-octet AS specific
        asn, val = struct.unpack("!HI", raw[2:])
        out.update(type=name, value=f"{asn}:{val}")
    elif name and t == 0x01:  # IPv4 address specific
        out.update(type=name, value=f"{socket.inet_ntoa(raw[2:6])}:{struct.unpack('!H', raw[6:])[0]}")
    elif name and t == 0x02:  # four-octet AS specific
        asn, val = struct.unpack("!IH", raw[2:])
        out.update(type=name, value=f"{asn}:{val}")
    elif t == 0x00 and sub == 0x04:  # link bandwidth (draft-ietf-idr-link-bandwidth), bytes/s as a float
        asn, bw = struct.unpack("!Hf", raw[2:])
        out.update(type="link-bandwidth", value=f"{asn}:{bw:.0f}", transitive=not raw[0] & 0x40)
    return out


def next_hops(raw: bytes) -> list[str]:
    if len(raw) == 4:
        return [socket.inet_ntoa(raw)]
    if len(raw) in (16, 32):
        return [socket.inet_ntop(socket.AF_INET6, raw[i:i + 16]) for i in range(0, len(raw), 16)]
    return [raw.hex()]


# ---------------------------------------------------------------- messages


def capability_fields(c: caps.Capability) -> dict:
    code = c.code
    try:
        name = CapabilityCode(code).name.lower().replace("_", "-")
    except ValueError:
        name = f"capability-{code}"
    out: dict = {"code": int(code), "name": name}
    if isinstance(c, caps.Multiprotocol):
        out.update(afi=afi_name(c.afi), safi=safi_name(c.safi))
    elif isinstance(c, caps.FourOctetAS):
        out["asn"] = c.asn
    elif isinstance(c, caps.GracefulRestart):
        out.update(restart_flags=c.restart_flags, restart_time=c.restart_time,
                   families=[{"afi": afi_name(a), "safi": safi_name(s), "flags": f} for a, s, f in c.families])
    elif isinstance(c, caps.AddPath):
        out["entries"] = [{"afi": afi_name(a), "safi": safi_name(s), "send_receive": _ADD_PATH_DIR.get(sr, sr)}
                          for a, s, sr in c.entries]
    elif isinstance(c, caps.ExtendedNextHop):
        out["entries"] = [{"afi": afi_name(a), "safi": safi_name(s), "next_hop_afi": afi_name(nh)}
                          for a, s, nh in c.entries]
    elif isinstance(c, caps.FQDN):
        out.update(hostname=c.hostname, domain=c.domain)
    elif isinstance(c, caps.UnknownCapability):
        out["value"] = c.value.hex()
    return out


def attrs_fields(a: PathAttributes) -> dict:
    out: dict = {}
    if a.origin is not None:
        try:
            out["origin"] = Origin(a.origin).name.lower()
        except ValueError:
            out["origin"] = a.origin
    if a.as_path is not None:
        out["as_path"] = [{"type": _SEGMENT_NAMES.get(t, str(t)), "asns": list(asns)} for t, asns in a.as_path]
    if a.next_hop is not None:
        out["next_hop"] = ipv4(a.next_hop)
    if a.med is not None:
        out["med"] = a.med
    if a.local_pref is not None:
        out["local_pref"] = a.local_pref
    if a.atomic_aggregate:
        out["atomic_aggregate"] = True
    if a.aggregator is not None:
        out["aggregator"] = {"asn": a.aggregator[0], "id": ipv4(a.aggregator[1])}
    if a.communities:
        out["communities"] = [community(c) for c in a.communities]
    if a.extended_communities:
        out["extended_communities"] = [extended_community(e) for e in a.extended_communities]
    if a.large_communities:
        out["large_communities"] = [large_community(lc) for lc in a.large_communities]
    if a.originator_id is not None:
        out["originator_id"] = ipv4(a.originator_id)
    if a.cluster_list:
        out["cluster_list"] = [ipv4(c) for c in a.cluster_list]
    if a.unknown:
        out["unknown"] = [{"flags": f, "type": t, "value": bytes(v).hex()} for f, t, v in a.unknown]
    return out


def error_fields(e: BGPError) -> dict:
    return {"code": int(e.code), "subcode": int(e.subcode), "name": error_name(e.code, e.subcode),
            "reason": e.reason, "data": e.data.hex()}


def update_fields(u: Update) -> dict:
    out: dict = {
        "withdrawn": [prefix(AFI.IPV4, k) for k in u.withdrawn],
        "attrs": attrs_fields(u.attrs) if u.attrs is not None else None,
        "nlri": [prefix(AFI.IPV4, k) for k in u.nlri],
        "mp_reach": None,
        "mp_unreach": None,
        "treat_as_withdraw": bool(u.treat_as_withdraw),
        "errors": [error_fields(e) for e in u.errors],
        "end_of_rib": family_name(*u.end_of_rib) if u.end_of_rib else None,
    }
    r: MpReach | None = u.mp_reach
    if r is not None and not decodes_family(r.afi, r.safi):
        out["mp_reach"] = {"afi": afi_name(r.afi), "safi": safi_name(r.safi),
                           "not_decoded": f"SAFI {r.safi}", "nlri_hex": r.undecoded.hex()}
    elif r is not None:
        out["mp_reach"] = {"afi": afi_name(r.afi), "safi": safi_name(r.safi),
                           "next_hop": next_hops(bytes(r.next_hop)),
                           "nlri": [prefix(r.afi, k) for k in r.nlri]}
    w: MpUnreach | None = u.mp_unreach
    if w is not None and not decodes_family(w.afi, w.safi):
        out["mp_unreach"] = {"afi": afi_name(w.afi), "safi": safi_name(w.safi),
                             "not_decoded": f"SAFI {w.safi}", "withdrawn_hex": w.undecoded.hex()}
    elif w is not None:
        out["mp_unreach"] = {"afi": afi_name(w.afi), "safi": safi_name(w.safi),
                             "withdrawn": [prefix(w.afi, k) for k in w.withdrawn]}
    return out


def message_fields(msg: object) -> dict:
    """A decoded message as a dict: ``type`` plus the message's own fields."""
    if isinstance(msg, Open):
        return {"type": "OPEN", "version": msg.version, "my_as": msg.my_as, "asn": msg.asn,
                "hold_time": msg.hold_time, "bgp_id": ipv4(msg.bgp_id),
                "capabilities": [capability_fields(c) for c in msg.capabilities]}
    if isinstance(msg, Update):
        return {"type": "UPDATE", **update_fields(msg)}
    if isinstance(msg, Notification):
        return {"type": "NOTIFICATION", "code": msg.code, "subcode": msg.subcode, "name": msg.name,
                "data": bytes(msg.data).hex(), "shutdown_message": msg.shutdown_message}
    if isinstance(msg, Keepalive):
        return {"type": "KEEPALIVE"}
    if isinstance(msg, RouteRefresh):
        try:
            subtype = {0: "normal", 1: "borr", 2: "eorr"}[msg.subtype]
        except KeyError:
            subtype = str(msg.subtype)
        return {"type": "ROUTE-REFRESH", "afi": afi_name(msg.afi), "safi": safi_name(msg.safi), "subtype": subtype}
    raise TypeError(f"not a BGP message: {type(msg).__name__}")


def record_fields(rec: Record) -> dict:
    """One JSON line: where/when, then the message, error or note."""
    out: dict = {}
    if rec.ts_ns is not None:
        out["ts"] = round(rec.ts_ns / 1e9, 6)  # seconds; microseconds are plenty for BGP
    if rec.frame:
        out["frame"] = rec.frame
    if rec.src is not None:
        out.update(src=rec.src, sport=rec.sport, dst=rec.dst, dport=rec.dport)
    if rec.note:
        out.update(type="NOTE", note=rec.note)
        return out
    if rec.error is not None:
        out.update(type=type_name(rec.mtype), length=rec.length, error=error_fields(rec.error),
                   raw=rec.raw.hex())
        return out
    fields = message_fields(rec.msg)
    out["type"] = fields.pop("type")
    out["length"] = rec.length
    out.update(fields)
    return out
