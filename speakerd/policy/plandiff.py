"""What applying a configuration would change, per peer, without applying anything.

:func:`plan_diff` takes the configuration and plan in effect (or proposed as the old one)
and the new ones and answers, for every peer of this node:

* the session: ``added`` (a new session), ``removed`` (Cease 6/3, every route withdrawn),
  ``reset`` (Cease 6/6 and a new session, with the reasons: the BGPPeer fields that changed,
  old and new, or the BGP identifier) or ``kept`` (only the routes below change);
* the routes: ``announce`` (new prefixes), ``withdraw`` (prefixes gone) and ``update``
  (prefixes re-announced with new attributes, old and new attributes).

The session decisions are :func:`speakerd.reconcile.plan_peer_changes`, the ones
``Speaker._apply`` carries out, and the routes are :func:`speakerd.policy.planner.diff_tables`
of the two plans, the delta a reload hands each session.  Pure: configurations and plans in,
a JSON-ready dict out.
"""
from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Mapping

from ..config.communities import format_community
from ..config.model import Config, Peer
from ..reconcile import _NON_SESSION_FIELDS, peers_for_node, plan_peer_changes
from ..wire.nlri import key_to_str
from .planner import diff_tables
from .types import Plan, RouteAttrs, route_attrs

# BGPPeer spec names (MetalLB spelling) of the session fields
SPEC_NAMES = {
    "local_asn": "myASN", "peer_asn": "peerASN", "peer_address": "peerAddress", "peer_port": "peerPort",
    "source_address": "sourceAddress", "hold_time": "holdTime", "keepalive_time": "keepaliveTime",
    "connect_retry": "connectTime", "router_id": "routerID", "password": "password",
    "ebgp_multihop": "ebgpMultiHop", "vrf": "vrf", "graceful_restart": "enableGracefulRestart",
    "dynamic_asn": "dynamicASN", "max_prefixes": "speakerd.io/max-prefixes", "interface": "interface",
    "dual_stack_address_family": "dualStackAddressFamily", "disable_mp": "disableMP",
    "local_asn_override": "localASN",
}


def attrs_json(ra: RouteAttrs, peer: Peer) -> dict:
    """The attributes a route goes out with, as the session would send them (LOCAL_PREF on iBGP only)."""
    out = {"communities": [format_community(c) for c in ra.communities],
           "large_communities": [format_community(c) for c in ra.large_communities],
           "local_pref": (ra.local_pref if ra.local_pref is not None else 100) if peer.ibgp else None}
    if ra.weight is not None:  # endpoint-weighted ECMP (speakerd.io/link-bandwidth: endpoints)
        out["weight"] = ra.weight
    return out


def session_changes(old: Peer, new: Peer) -> list[dict]:
    """The session fields that differ (the password's value is never shown)."""
    out = []
    for f in dataclasses.fields(old):
        if f.name in _NON_SESSION_FIELDS:
            continue
        a, b = getattr(old, f.name), getattr(new, f.name)
        if a != b:
            if f.name == "password":
                a, b = ("set" if a else "unset"), ("set" if b else "unset")
                if a == b:
                    a, b = "set", "changed"
            out.append({"field": SPEC_NAMES.get(f.name, f.name), "old": a, "new": b})
    return out


def _rid(n: int) -> str:
    return str(ipaddress.IPv4Address(n)) if n else "0.0.0.0"


def _route_rows(delta: Mapping, before: Mapping, peer: Peer) -> tuple[list, list, list]:
    announce, withdraw, update = [], [], []
    for (afi, key) in sorted(delta):
        ra = delta[(afi, key)]
        prefix = key_to_str(afi, key)
        if ra is None:
            withdraw.append(prefix)
        elif (afi, key) in before:
            old, new = attrs_json(before[(afi, key)], peer), attrs_json(ra, peer)
            if old != new:  # a difference the session would not send (local-pref to eBGP) is none
                update.append({"prefix": prefix, "old": old, "new": new})
        else:
            announce.append({"prefix": prefix, **attrs_json(ra, peer)})
    return announce, withdraw, update


def plan_diff(old_config: Config | None, old_plan: Plan | None, new_config: Config, new_plan: Plan,
              node: str, current_router_id: tuple[int, str], derived_router_id: tuple[int, str]) -> dict:
    """Per peer: the session decision and the route changes of going from old to new.

    ``current_router_id`` is the BGP identifier in use (value, how chosen), ``derived_router_id``
    the one the new configuration gives (``speakerd.speaker.derive_router_id``)."""
    changes = plan_peer_changes(old_config, new_config, node, derived_router_id, current_router_id, False)
    before_peers = peers_for_node(old_config, node) if old_config else {}
    after_peers = peers_for_node(new_config, node)
    rid_changed = changes.router_id != current_router_id[0]
    peers = {}
    for name in sorted(before_peers.keys() | after_peers.keys()):
        peer = after_peers.get(name) or before_peers[name]
        before = route_attrs(old_plan.routes.get(name, {})) if old_plan else {}
        after = route_attrs(new_plan.routes.get(name, {})) if name in after_peers else {}
        announce, withdraw, update = _route_rows(diff_tables(before, after) if before else dict(after), before, peer)
        row: dict = {"address": peer.peer_address or peer.interface, "peer_asn": peer.peer_asn, "ibgp": peer.ibgp}
        if name in changes.remove:
            row["session"] = "removed"
            row["notification"] = "Cease/Peer De-configured (6/3)"
        elif name in changes.added:
            row["session"] = "added"
        elif name in changes.reset:
            reasons = session_changes(before_peers[name], after_peers[name])
            if rid_changed:
                reasons.append({"field": "router id", "old": _rid(current_router_id[0]),
                                "new": _rid(changes.router_id)})
            row["session"] = "reset"
            row["notification"] = "Cease/Other Configuration Change (6/6)"
            row["reasons"] = reasons
        else:
            row["session"] = "kept"
        if name in changes.bfd_changed:
            row["bfd_changed"] = True
        row.update(announce=announce, withdraw=withdraw, update=update)
        peers[name] = row
    changed = any(r["session"] != "kept" or r["announce"] or r["withdraw"] or r["update"] or r.get("bfd_changed")
                  for r in peers.values())
    return {"node": node, "changed": changed,
            "router_id": {"old": _rid(current_router_id[0]), "new": _rid(changes.router_id),
                          "source": changes.router_id_source},
            "peers": peers, "notes": list(new_plan.notes)}


__all__ = ["plan_diff", "session_changes", "attrs_json", "SPEC_NAMES"]
