"""The control API: questions about a running :class:`~speakerd.speaker.Speaker`, answered as JSON.

Every answer is a plain dict with stable field names; ``speakerctl --json``
prints it as is, and :mod:`speakerd.control.show` turns the same dict into
vtysh-style text.  Nothing here writes to a socket.
"""
from __future__ import annotations

import ipaddress
import time

from ..fsm.actions import State
from ..render.fields import attrs_fields, capability_fields, next_hops
from ..policy.linkbw import describe
from ..wire.capabilities import Negotiated
from ..wire.constants import (AFI, HEADER_LEN, TYPE_OFFSET, CeaseSubcode, ErrorCode, MessageType,
                              OpenSubcode)
from ..wire.nlri import key_to_str, str_to_key

TYPE_NAMES = {int(t): t.name.lower() for t in MessageType}


class ApiError(Exception):
    """A request that cannot be answered (unknown peer, bad argument)."""


def _ts(t: float | None) -> float | None:
    return round(t, 3) if t else None


def _find(speaker, name_or_address: str):
    rt = speaker.peers.get(name_or_address)
    if rt is not None:
        return rt
    for rt in speaker.peers.values():
        if rt.config.peer_address == name_or_address:
            return rt
    try:
        want = str(ipaddress.ip_address(name_or_address))
    except ValueError:
        want = None
    for rt in speaker.peers.values():
        if want and rt.config.peer_address == want:
            return rt
    raise ApiError(f"no peer named or addressed {name_or_address!r} "
                   f"(peers: {', '.join(sorted(speaker.peers)) or 'none'})")


def _notification(n, direction: str, rt) -> dict | None:
    if n is None:
        return None
    out = {"code": n.code, "subcode": n.subcode, "name": n.name, "data": n.data.hex(),
           "hint": notification_hint(n, direction, rt)}
    msg = n.shutdown_message
    if msg is not None:
        out["message"] = msg
    return out


_CEASE_HINTS = {
    CeaseSubcode.MAX_PREFIXES_REACHED: "the maximum-prefix limit was reached",
    CeaseSubcode.ADMINISTRATIVE_SHUTDOWN: "administrative shutdown",
    CeaseSubcode.PEER_DECONFIGURED: "the peer was removed from the configuration",
    CeaseSubcode.ADMINISTRATIVE_RESET: "administrative reset",
    CeaseSubcode.CONNECTION_REJECTED: "the connection was rejected (is this peer configured there?)",
    CeaseSubcode.OTHER_CONFIGURATION_CHANGE: "a configuration change reset the session",
    CeaseSubcode.CONNECTION_COLLISION_RESOLUTION: "two connections at once; the other one was kept (normal)",
    CeaseSubcode.OUT_OF_RESOURCES: "out of resources",
    CeaseSubcode.HARD_RESET: "hard reset",
    CeaseSubcode.BFD_DOWN: "BFD detected the path down",
}


def notification_hint(n, direction: str, rt) -> str:
    """A plain-words reading of a NOTIFICATION for an operator."""
    pc = rt.config
    if n.code == ErrorCode.OPEN_MESSAGE:
        if n.subcode == OpenSubcode.BAD_PEER_AS:
            if direction == "received":
                field = "localASN" if pc.local_asn_override else "myASN"
                return (f"the router does not expect our AS {pc.session_asn}: check the neighbor's remote-as "
                        f"on the router (it must be {pc.session_asn}) or {field} in the BGPPeer")
            announced = _last_open_asn(rt)
            if pc.dynamic_asn is not None:
                return (f"the router announced AS {announced if announced is not None else '?'}; dynamicASN "
                        f"{pc.dynamic_asn} accepts {'only' if pc.ibgp else 'any AS but'} our AS {pc.session_asn}")
            if announced is not None:
                return (f"the router announced AS {announced} but the BGPPeer's peerASN is {pc.peer_asn}: "
                        f"fix peerASN, or the router's local AS")
            return f"the router announced an AS other than the configured peerASN {pc.peer_asn}"
        if n.subcode == OpenSubcode.BAD_BGP_IDENTIFIER:
            return "BGP identifier rejected: zero, or equal to the other side's on iBGP (set routerID)"
        if n.subcode == OpenSubcode.UNACCEPTABLE_HOLD_TIME:
            return "hold time rejected: use 0 or at least 3 seconds on both sides"
        if n.subcode == OpenSubcode.UNSUPPORTED_CAPABILITY:
            return "no address family in common (IPv4/IPv6 unicast) or a required capability is missing"
        if n.subcode == OpenSubcode.UNSUPPORTED_VERSION_NUMBER:
            return "the other side does not speak BGP-4"
    if n.code == ErrorCode.HOLD_TIMER_EXPIRED:
        return ("no KEEPALIVE or UPDATE within the hold time: the path to the peer is broken or the peer "
                "is overloaded" if direction == "sent" else
                "the router heard nothing from us within the hold time")
    if n.code == ErrorCode.CEASE:
        return _CEASE_HINTS.get(n.subcode, "cease")
    if n.code == ErrorCode.UPDATE_MESSAGE:
        return "a malformed UPDATE: see the capture (speakerctl capture) for the bytes"
    if n.code == ErrorCode.FSM:
        return "a message arrived that the session state did not allow"
    if n.code == ErrorCode.MESSAGE_HEADER:
        return "the byte stream lost sync or a message had a bad length/type"
    if n.code == ErrorCode.SEND_HOLD_TIMER_EXPIRED:
        return "the other side stopped reading our messages"
    return ""


def _last_open_asn(rt) -> int | None:
    """The AS in the last OPEN received from the peer (from the capture ring), if any."""
    from ..wire.capabilities import DEFAULT_CONTEXT
    from ..wire.framing import decode
    for _ts, direction, raw in reversed(rt.ring):
        if direction != "in" or len(raw) < HEADER_LEN or raw[TYPE_OFFSET] != MessageType.OPEN:
            continue
        try:
            return decode(raw, DEFAULT_CONTEXT).asn
        except Exception:  # a malformed OPEN: no AS to show
            return None
    return None


def _counts(rt) -> tuple[int, int, int]:
    """(prefixes sent, wanted, received over both families)."""
    p = rt.peer
    sent = len(p.advertised_routes)
    wanted = len(p.wanted_routes)
    rin = p.adj_rib_in
    received = len(rin) if rin is not None else 0
    return sent, wanted, received


def summary(speaker, args: dict) -> dict:
    rows = []
    now = time.time()
    for name, rt in sorted(speaker.peers.items()):
        p = rt.peer
        pc = rt.config
        sent, wanted, received = _counts(rt)
        up = p.established_since
        rows.append({
            "peer": pc.name, "address": _address(rt), "interface": pc.interface, "port": pc.peer_port,
            "local_as": pc.session_asn, "remote_as": _remote_as(rt), "dynamic_asn": pc.dynamic_asn,
            "state": p.state.label,
            "established": p.state == State.ESTABLISHED,
            "up_down_seconds": round(now - (up or p.last_state_change), 1),
            "prefixes_sent": sent, "prefixes_wanted": wanted, "prefixes_received": received,
            "messages_sent": sum(p.sent_by_type), "messages_received": sum(p.received_by_type),
            "last_error": _last_error(rt),
            "bfd": rt.bfd_active,
        })
    c = speaker.config
    return {"router_id": _ip4(speaker.router_id), "local_as": next((r.config.local_asn for r in speaker.peers.values()), None),
            "node": speaker.node, "peers": rows,
            "services": len(c.services) if c else 0,
            "reload": speaker.last_reload}


def _address(rt) -> str:
    """The peer's address; for an interface (unnumbered) peer the router's link-local
    address once found ("fe80::1%eth0"), the interface name until then."""
    pc = rt.config
    if pc.interface is None:
        return pc.peer_address
    return rt.peer.discovered_address or pc.interface


def _remote_as(rt) -> int | str:
    """The peer's AS: configured, or with dynamicASN learned from its OPEN ("internal"/"external"
    until one is accepted)."""
    pc = rt.config
    if pc.dynamic_asn is None:
        return pc.peer_asn
    neg = rt.peer.negotiated
    return neg.peer_asn if neg is not None else pc.dynamic_asn


def _next_hops(p) -> dict:
    """The next hops the current connection announces routes with, and where the IPv6 one
    comes from (configured, the session's address, the interface's global address, or the
    IPv4-mapped fallback when that interface has none)."""
    nh4, nh6 = p.next_hops()
    return {"ipv4": _ip4(nh4) if nh4 is not None else None,
            "ipv6": _ip6(nh6) if nh6 else None,
            "ipv6_source": p.next_hop6_source(), "interface": p.next_hop_interface}


def _ip6(packed: bytes) -> str:
    a = ipaddress.IPv6Address(packed[:16])
    return f"::ffff:{a.ipv4_mapped}" if a.ipv4_mapped else str(a)  # the same text on every Python


def _last_error(rt) -> str:
    p = rt.peer
    n_in, n_out = p.last_notification_received, p.last_notification_sent
    if p.last_error:
        return p.last_error
    if n_in is not None:
        return f"received {n_in.name}"
    if n_out is not None:
        return f"sent {n_out.name}"
    return ""


def _ip4(n: int) -> str:
    return str(ipaddress.IPv4Address(n)) if n else "0.0.0.0"


def _negotiated(neg: Negotiated | None) -> dict | None:
    if neg is None:
        return None
    return {
        "four_octet_as": neg.four_octet_as,
        "families": sorted(f"{'ipv4' if a == AFI.IPV4 else 'ipv6' if a == AFI.IPV6 else a}-unicast"
                           if s == 1 else f"{a}/{s}" for a, s in neg.families),
        "route_refresh": neg.route_refresh, "enhanced_route_refresh": neg.enhanced_route_refresh,
        "extended_message": neg.extended_message, "graceful_restart": neg.graceful_restart is not None,
        "hold_time": neg.hold_time, "keepalive_time": neg.keepalive_time,
        "peer_hostname": neg.peer_hostname,
    }


def neighbors(speaker, args: dict) -> dict:
    peer = args.get("peer")
    rts = [_find(speaker, peer)] if peer else [speaker.peers[n] for n in sorted(speaker.peers)]
    out = []
    for rt in rts:
        p, pc = rt.peer, rt.config
        neg = p.negotiated
        sent, wanted, received = _counts(rt)
        local_caps = [capability_fields(c) for c in (neg.local if neg else p.local_capabilities())]
        out.append({
            "peer": pc.name, "address": _address(rt), "interface": pc.interface, "port": pc.peer_port,
            "local_as": pc.session_asn, "my_asn": pc.local_asn, "remote_as": _remote_as(rt),
            "dynamic_asn": pc.dynamic_asn, "type": "ibgp" if pc.ibgp else "ebgp",
            "state": p.state.label, "router_id": _ip4(speaker.router_id),
            "remote_router_id": _ip4(neg.peer_id) if neg and neg.peer_id else None,
            "local_address": p.local_address, "remote_address": p.remote_address,
            "next_hops": _next_hops(p) if p.local_address else None,
            "uptime_seconds": round(p.uptime, 1) if p.uptime else None,
            "configured": {"hold_time": pc.hold_time, "keepalive_time": pc.keepalive_time,
                           "connect_time": pc.connect_retry, "ebgp_multihop": pc.ebgp_multihop,
                           "vrf": pc.vrf, "source_address": pc.source_address,
                           "md5": bool(pc.password), "bfd_profile": pc.bfd_profile,
                           "graceful_restart": pc.graceful_restart,
                           # what the session carries (dualStackAddressFamily, or its address's own)
                           "families": [f"ipv{f}-unicast" for f in pc.families],
                           "dual_stack_address_family": pc.dual_stack_address_family},
            "capabilities": {"offered": local_caps,
                             "received": [capability_fields(c) for c in neg.remote] if neg else [],
                             "in_effect": _negotiated(neg)},
            "messages": {"sent": {TYPE_NAMES.get(i, str(i)): n for i, n in enumerate(p.sent_by_type) if i},
                         "received": {TYPE_NAMES.get(i, str(i)): n for i, n in enumerate(p.received_by_type) if i}},
            "prefixes": {"sent": sent, "wanted": wanted, "received": received,
                         "received_by_family": {("ipv4" if a == 1 else "ipv6"): n
                                                for a, n in (p.adj_rib_in.counts().items() if p.adj_rib_in is not None else ())}},
            "last_notification_sent": _notification(p.last_notification_sent, "sent", rt),
            "last_notification_received": _notification(p.last_notification_received, "received", rt),
            "last_error": p.last_error,
            "looped_updates_ignored": p.ignored_updates["looped"],
            "unnegotiated_updates_ignored": p.ignored_updates["unnegotiated_family"],
            "flaps": dict(rt.flaps),
        })
    return {"neighbors": out}


def _route_row(afi: int, key: int, attrs, nh_raw: bytes | None = None, extra: dict | None = None) -> dict:
    row = {"prefix": key_to_str(afi, key)}
    f = attrs_fields(attrs) if attrs is not None else {}
    nh = f.pop("next_hop", None)
    if nh_raw:
        hops = next_hops(nh_raw)
        nh = hops[0] if hops else nh
        if len(hops) > 1:
            row["link_local_next_hop"] = hops[1]
    row["next_hop"] = nh
    row["local_pref"] = f.get("local_pref")
    row["med"] = f.get("med")
    row["as_path"] = " ".join(
        (" ".join(str(a) for a in s["asns"]) if s["type"] == "sequence" else "{" + ",".join(str(a) for a in s["asns"]) + "}")
        for s in f.get("as_path", []))
    row["origin"] = f.get("origin")
    row["communities"] = f.get("communities", [])
    row["large_communities"] = f.get("large_communities", [])
    row["extended_communities"] = [x.get("type", "") + ":" + x["value"] if "value" in x else x["hex"]
                                   for x in f.get("extended_communities", [])]
    if extra:
        row.update(extra)
    return row


def routes(speaker, args: dict) -> dict:
    """Routes of one family: advertised to / received from a peer, or the planned table."""
    afi = AFI.IPV6 if args.get("family") == "ipv6" else AFI.IPV4
    direction = args.get("direction")
    limit = int(args.get("limit") or 0)
    rows = []
    if direction in ("advertised", "received"):
        rt = _find(speaker, args.get("peer") or "")
        p = rt.peer
        if direction == "received":
            table = p.adj_rib_in.tables.get(afi, {}) if p.adj_rib_in is not None else {}
            for key in sorted(table):
                v = table[key]
                attrs, nh = (v if isinstance(v, tuple) else (v, None))
                rows.append(_route_row(afi, key, attrs, nh))
                if limit and len(rows) >= limit:
                    break
        else:
            out = p.adj_rib_out
            neg = p.negotiated
            target = out.target(neg) if (neg is not None and p.state == State.ESTABLISHED) else {}
            sent = p.advertised_routes
            nh6 = p.next_hops()[1] if afi == AFI.IPV6 else None
            for (a, key) in sorted(k for k in target if k[0] == afi):
                attrs = target[(a, key)]
                rows.append(_route_row(afi, key, attrs, nh6, {"sent": (a, key) in sent}))
                if limit and len(rows) >= limit:
                    break
        return {"family": "ipv6" if afi == AFI.IPV6 else "ipv4", "direction": direction,
                "peer": rt.config.name, "routes": rows, "total": len(rows)}
    # no peer: every planned route, with the peers it goes to
    plan = speaker.plan
    by_key: dict[int, dict] = {}
    if plan is not None:
        for peer_name, table in sorted(plan.routes.items()):
            for (a, key), r in table.items():
                if a != afi:
                    continue
                row = by_key.get(key)
                if row is None:
                    row = by_key[key] = {"prefix": r.prefix, "peers": [],
                                         "communities": [f"{c >> 16}:{c & 0xFFFF}" for c in r.attrs.communities],
                                         "large_communities": [f"{x}:{y}:{z}" for x, y, z in r.attrs.large_communities],
                                         "local_pref": r.attrs.local_pref, "weight": r.attrs.weight,
                                         "services": sorted({x.service for x in r.reasons})}
                rt = speaker.peers.get(peer_name)
                state = rt.peer.state if rt else None
                sent = rt is not None and (a, key) in rt.peer.advertised_routes
                row["peers"].append({"peer": peer_name, "sent": sent,
                                     "state": state.label if state else "not running"})
    rows = [by_key[k] for k in sorted(by_key)]
    if limit:
        rows = rows[:limit]
    return {"family": "ipv6" if afi == AFI.IPV6 else "ipv4", "direction": None, "routes": rows,
            "total": len(by_key)}


def bfd_peers(speaker, args: dict) -> dict:
    rows = []
    if speaker.bfd is not None:
        by_addr = {rt.config.peer_address: name for name, rt in speaker.peers.items()}
        for info in speaker.bfd.sessions():
            d = info.as_dict()
            d["peer_name"] = by_addr.get(info.peer)
            rows.append(d)
    return {"bfd_peers": rows}


def history(speaker, args: dict) -> dict:
    peer = args.get("peer")
    rts = [_find(speaker, peer)] if peer else list(speaker.peers.values())
    events = []
    for rt in rts:
        for h in rt.peer.history:
            events.append({"time": _ts(h.time), "peer": rt.config.name, "from": h.old.label,
                           "to": h.new.label, "cause": h.cause.name.lower(), "detail": h.detail,
                           "flap": h.old == State.ESTABLISHED})
    events.sort(key=lambda e: e["time"] or 0)
    return {"history": events}


def explain(speaker, args: dict) -> dict:
    """Why an address or a Service is (or is not) advertised, and to whom."""
    target = (args.get("target") or "").strip()
    if not target:
        raise ApiError("explain needs an IP address, a prefix or a Service (namespace/name)")
    config, plan = speaker.config, speaker.plan
    lines: list[str] = []
    ips: list[str] = []
    service = None
    if "/" in target and not _is_prefix(target):
        service = config.services.get(target) if config else None
        announcer = getattr(getattr(speaker, "store", None), "announcer", None)  # Kubernetes mode
        if service is None and announcer is not None and target in announcer.services:
            v = announcer.verdict(target)  # a valid Service this node does not announce: why
            return {"target": target, "service": target, "addresses": [], "announce": v.reason,
                    "explanation": [f"Service {target}: not announced from node {speaker.node}: {v}"]}
        withheld = getattr(getattr(speaker, "announcer", None), "withheld", {})  # file mode's announce rules
        if service is not None and target in withheld:
            v = withheld[target]  # its address is still allocated (the same on every node), never routed here
            addrs = list(service.ips or (plan.allocations.get(target, ()) if plan else ()))
            return {"target": target, "service": target, "addresses": addrs, "announce": v.reason,
                    "explanation": [f"Service {target}: {', '.join(addrs) or 'no IP'}: not announced from node "
                                    f"{speaker.node}: {v}"]}
        if service is None:
            matches = [k for k in (config.services if config else {}) if k.endswith("/" + target.split("/")[-1])]
            raise ApiError(f"no Service {target!r}" + (f"; did you mean {', '.join(matches)}?" if matches else ""))
        ips = list(service.ips or plan.allocations.get(service.key, ()))
        lines.append(f"Service {service.key}: " + (", ".join(ips) if ips else "no IP (no pool had a free address?)"))
        if not service.ips and ips:
            lines.append("  IPs allocated by speakerd from a pool (kept across restarts in the state file)")
    elif "/" not in target and not _is_ip(target):
        matches = sorted(k for k in (config.services if config else {}) if k.split("/")[-1] == target)
        if len(matches) == 1:
            return explain(speaker, {"target": matches[0]})
        raise ApiError(f"{target!r} is not an IP address, a prefix or a Service (namespace/name)"
                       + (f"; services named so: {', '.join(matches)}" if matches else ""))
    else:
        ips = [target]
    results = []
    for ip in ips:
        results.append(_explain_ip(speaker, ip, lines))
    return {"target": target, "service": service.key if service else None, "addresses": results,
            "explanation": lines}


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def _is_prefix(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
        return True
    except ValueError:
        return False


def _explain_ip(speaker, ip: str, lines: list[str]) -> dict:
    config, plan = speaker.config, speaker.plan
    net = ipaddress.ip_network(ip, strict=False)
    afi = AFI.IPV4 if net.version == 4 else AFI.IPV6
    addr = int(net.network_address)
    pool = None
    for p in config.pools.values():
        for a, first, last in p.ranges:
            if a == afi and first <= addr <= last:
                pool = p.name
    lines.append(f"{ip}: " + (f"in IPAddressPool {pool}" if pool else "in no IPAddressPool: never advertised"))
    peers_out = []
    for peer_name, table in sorted(plan.routes.items()):
        found = None
        for (a, key), r in table.items():
            if a != afi:
                continue
            length = key & 0xFF
            bits = 32 if afi == AFI.IPV4 else 128
            mask = ((1 << bits) - 1) ^ ((1 << (bits - length)) - 1)
            if (addr & mask) == (key >> 8) and length <= net.prefixlen and (found is None or length > found.key & 0xFF):
                found = r  # the most specific prefix holding the address
        rt = speaker.peers.get(peer_name)
        if found is None:
            lines.append(f"  peer {peer_name}: not advertised (no BGPAdvertisement selects {pool or 'it'} for this peer, "
                         "or nodeSelectors exclude this node)")
            peers_out.append({"peer": peer_name, "advertised": False})
            continue
        sent = rt is not None and (afi, found.key) in rt.peer.advertised_routes
        ev = speaker.route_events.get((afi, found.key))
        state = rt.peer.state.label if rt else "not running"
        chain = "; ".join(f"{x.service} → {x.ip} → pool {x.pool} → advertisement {x.advertisement}"
                          for x in found.reasons)
        when = None
        if rt is not None and sent:
            est = rt.peer.established_since or 0
            t = max(ev[0] if ev and ev[1] != "withdraw" else 0, est)
            when = _ts(t)
        lines.append(f"  peer {peer_name} ({state}): advertised as {found.prefix}"
                     f"{' — on the wire' if sent else ' — not sent yet (session not established)'}")
        lines.append(f"    because: {chain}")
        attrs = found.attrs
        extras = []
        if attrs.communities:
            extras.append("communities " + " ".join(f"{c >> 16}:{c & 0xFFFF}" for c in attrs.communities))
        if attrs.large_communities:
            extras.append("large " + " ".join(f"{x}:{y}:{z}" for x, y, z in attrs.large_communities))
        pc = rt.config if rt else config.peers.get(peer_name)
        if pc is not None and pc.ibgp:
            extras.append(f"local-pref {attrs.local_pref if attrs.local_pref is not None else 100}")
        elif attrs.local_pref is not None:
            extras.append(f"local-pref {attrs.local_pref} not sent (eBGP)")
        if attrs.weight is not None:
            extras.append(describe(attrs.weight))
        if extras:
            lines.append("    with " + ", ".join(extras))
        if when:
            lines.append(f"    last UPDATE for it sent at {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(when))}")
        peers_out.append({"peer": peer_name, "advertised": True, "prefix": found.prefix, "sent": sent,
                          "state": state, "last_update_time": when,
                          "reasons": [{"service": x.service, "ip": x.ip, "pool": x.pool,
                                       "advertisement": x.advertisement} for x in found.reasons]})
    # withdrawn recently?
    for (a, key), (t, kind) in speaker.route_events.items():
        if a == afi and kind == "withdraw" and key >> 8 == addr and not any(p.get("advertised") for p in peers_out):
            lines.append(f"  withdrawn at {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(t))}")
            break
    return {"ip": ip, "pool": pool, "peers": peers_out}


async def reload(speaker, args: dict) -> dict:
    return await speaker.reload("speakerctl reload")


async def drain(speaker, args: dict) -> dict:
    try:
        wait = float(args.get("wait", 10.0))
    except (TypeError, ValueError):
        raise ApiError(f"drain: --wait must be a number of seconds, not {args.get('wait')!r}") from None
    if wait < 0:
        raise ApiError("drain: --wait must not be negative")
    return await speaker.drain(wait, args.get("message") or "node drained (speakerctl drain)")


async def plan_diff(speaker, args: dict) -> dict:
    """What reloading ``paths`` (default: the daemon's own files) would change, per peer."""
    import asyncio
    from ..commands.plan import against_running, read_and_plan
    paths = args.get("paths") or list(getattr(speaker, "paths", []) or [])
    if not paths:
        raise ApiError("this daemon reads its objects from the Kubernetes API, not from files: "
                       "no configuration files to compare")
    allocations = dict(speaker.plan.allocations) if speaker.plan else {}
    proposed = await asyncio.to_thread(read_and_plan, paths, speaker.node, allocations)
    return against_running(speaker, proposed)  # in the loop: the running plan does not move meanwhile


async def undrain(speaker, args: dict) -> dict:
    return await speaker.undrain()


def health(speaker, args: dict) -> dict:
    return {"ok": True, "peers": len(speaker.peers),
            "established": sum(1 for rt in speaker.peers.values() if rt.peer.state == State.ESTABLISHED)}


def resolve_peer(speaker, name: str):
    return _find(speaker, name)


HANDLERS = {
    "summary": summary,
    "neighbors": neighbors,
    "routes": routes,
    "bfd": bfd_peers,
    "history": history,
    "explain": explain,
    "reload": reload,
    "health": health,
    "drain": drain,
    "undrain": undrain,
    "plan_diff": plan_diff,
}
