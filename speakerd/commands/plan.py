"""`speakerd plan -c PATH… [--node NAME] [--state FILE] [--json]`: what this node would advertise.

For each peer, each prefix with its attributes and the chain that produced it:
service → IP → pool → advertisement → peer; for each Service not announced from
this node, the announce rule that says so (MetalLB's speaker rules, on the
EndpointSlices and the Node the files hold: :mod:`speakerd.policy.fileannounce`).
Read-only: the state file (the previous allocations) is read, never written.

`speakerd plan --diff -c NEW… (--old OLD… | --against SOCKET)`: what going from the old
configuration (files, or the running daemon over its control socket) to NEW would change
for each peer: prefixes announced, withdrawn, re-announced with new attributes, sessions
that would reset and why (:mod:`speakerd.policy.plandiff`).  ``-c NEW -c OLD`` (exactly two
paths, neither --old nor --against) is read as NEW then OLD.  Nothing is applied.
"""
from __future__ import annotations

import json
import socket
import sys
from dataclasses import dataclass

from ..config import read_config
from ..config.communities import format_community
from ..policy.fileannounce import plan_store
from ..policy.linkbw import BYTES_PER_ENDPOINT, describe
from ..policy.plandiff import plan_diff
from ..policy.types import Plan, PlannedRoute
from ..state import StateError, load_allocations
from ..store import Store


def register(sub):
    p = sub.add_parser("plan", help="show the routes this node would advertise to each peer, and why")
    p.add_argument("-c", "--config", action="append", required=True, metavar="PATH",
                   help="file or directory of manifests (repeatable)")
    p.add_argument("--node", default=None, help="node name (default: this host's name)")
    p.add_argument("--state", default=None, metavar="FILE", help="allocation state file (read only; accepted, does not change the assignment: every node computes it from the manifests)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    d = p.add_argument_group("differences (--diff)")
    d.add_argument("--diff", action="store_true",
                   help="show what changes from the old configuration to the -c one, per peer")
    d.add_argument("--old", action="append", metavar="PATH", help="the old configuration (repeatable)")
    d.add_argument("--against", metavar="SOCKET", nargs="?", const="/run/speakerd/speakerd.sock",
                   help="the running daemon's configuration, over its control socket "
                        "(default /run/speakerd/speakerd.sock)")
    return p


@dataclass
class Proposed:
    """A configuration read from files, its errors and its plan for one node."""
    paths: list[str]
    config: object
    errors: list
    plan: Plan
    refused: bool  # a MetalLB object is invalid: the daemon would keep its running configuration
    withheld: dict | None = None  # service key -> announce.Verdict: not announced from this node, why


def read_and_plan(paths: list[str], node: str, allocations: dict) -> Proposed:
    """The files' configuration and its plan for `node`, as the daemon would run them."""
    store = Store()
    config, errors = read_config(paths, store)
    refused = any(i.obj.split("/")[0] not in ("Service", "EndpointSlice", "Node") for i in errors)
    result, withheld = plan_store(store, node, allocations)
    return Proposed(list(paths), config, errors, result, refused, withheld)


def _router_ids(config, node: str) -> tuple[int, str]:
    from ..reconcile import peers_for_node
    from ..speaker import derive_router_id
    return derive_router_id(list(peers_for_node(config, node).values()), node)


def _refused(new: Proposed) -> dict:
    return {"ok": False, "errors": [str(i) for i in new.errors], "paths": new.paths}


def against_running(speaker, new: Proposed) -> dict:
    """The difference between a running Speaker and a proposed configuration."""
    if new.refused:
        return _refused(new)
    d = plan_diff(speaker.config, speaker.plan, new.config, new.plan, speaker.node,
                  (speaker.router_id, speaker.router_id_source), _router_ids(new.config, speaker.node))
    return {"ok": True, "paths": new.paths, "errors": [str(i) for i in new.errors], **d}


def against_files(old: Proposed, new: Proposed, node: str) -> dict:
    if old.refused:
        return {"ok": False, "errors": ["the old configuration: " + str(i) for i in old.errors], "paths": old.paths}
    if new.refused:
        return _refused(new)
    d = plan_diff(old.config, old.plan, new.config, new.plan, node, _router_ids(old.config, node),
                  _router_ids(new.config, node))
    return {"ok": True, "paths": new.paths, "errors": [str(i) for i in new.errors], **d}


def _diff_main(args) -> int:
    import os
    from ..control import show
    new_paths, old_paths = list(args.config), args.old
    if args.against is None and not old_paths:
        if len(new_paths) != 2:
            print("plan --diff: give the old configuration: --old PATH, --against SOCKET, or -c NEW -c OLD",
                  file=sys.stderr)
            return 2
        new_paths, old_paths = [new_paths[0]], [new_paths[1]]
    if args.against is not None:
        from ..ctl import CtlError, call
        try:
            result = call(args.against, "plan_diff", {"paths": [os.path.abspath(p) for p in new_paths]})
        except CtlError as e:
            print(f"plan --diff --against {args.against}: {e}", file=sys.stderr)
            return 1
    else:
        node = args.node or socket.gethostname()
        old = read_and_plan(old_paths, node, load_allocations(args.state) if args.state else {})
        new = read_and_plan(new_paths, node, dict(old.plan.allocations))
        result = against_files(old, new, node)
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
    else:
        print(show.plan_diff(result))
    return 0 if result.get("ok", True) else 1


def _attrs_text(route: PlannedRoute, ibgp: bool) -> str:
    parts = []
    a = route.attrs
    if a.communities or a.large_communities:
        parts.append("communities " + " ".join([format_community(c) for c in a.communities]
                                               + [format_community(c) for c in a.large_communities]))
    if ibgp:
        parts.append(f"local-pref {a.local_pref if a.local_pref is not None else 100}")
    elif a.local_pref is not None:
        parts.append(f"local-pref {a.local_pref} (not sent to eBGP)")
    if a.weight is not None:
        parts.append(describe(a.weight))
    return "  ".join(parts)


def _sorted_routes(table: dict) -> list[PlannedRoute]:
    return [table[k] for k in sorted(table)]


def to_json(result: Plan, config, node: str, withheld: dict | None = None) -> dict:
    peers = {}
    for name, table in result.routes.items():
        peer = config.peers[name]
        peers[name] = {
            "address": peer.peer_address, "peer_asn": peer.peer_asn, "my_asn": peer.local_asn,
            "local_asn": peer.local_asn_override, "ibgp": peer.ibgp,
            "families": [f"ipv{f}" for f in peer.families],
            "interface": peer.interface, "dynamic_asn": peer.dynamic_asn,
            "routes": [{
                "prefix": r.prefix, "afi": r.afi,
                "communities": [format_community(c) for c in r.attrs.communities],
                "large_communities": [format_community(c) for c in r.attrs.large_communities],
                "local_pref": r.attrs.local_pref,
                # endpoint-weighted ECMP: ready local endpoints, sent as the link-bandwidth community
                "weight": r.attrs.weight,
                "link_bandwidth": None if r.attrs.weight is None else r.attrs.weight * BYTES_PER_ENDPOINT,
                "reasons": [{"service": x.service, "ip": x.ip, "pool": x.pool, "advertisement": x.advertisement}
                            for x in r.reasons],
            } for r in _sorted_routes(table)],
        }
    return {"node": node, "peers": peers, "inactive_peers": sorted(set(config.peers) - set(result.routes)),
            "allocations": {k: list(v) for k, v in sorted(result.allocations.items())}, "notes": list(result.notes),
            "not_announced": {k: {"reason": v.reason, "message": v.text} for k, v in sorted((withheld or {}).items())}}


def main(args) -> int:
    if args.diff:
        try:
            return _diff_main(args)
        except StateError as exc:
            print(exc, file=sys.stderr)
            return 1
    if args.old or args.against is not None:
        print("plan: --old and --against go with --diff", file=sys.stderr)
        return 2
    node = args.node or socket.gethostname()
    store = Store()
    config, errors = read_config(args.config, store)
    for issue in errors:  # each one skipped; every other object is planned, as the daemon does
        print(f"error: {issue}", file=sys.stderr)
    if any(i.obj.split("/")[0] not in ("Service", "EndpointSlice", "Node") for i in errors):
        print("the MetalLB configuration is refused (speakerd would keep running the previous one)", file=sys.stderr)
        return 1
    previous = {}
    if args.state:
        try:
            previous = load_allocations(args.state)
        except StateError as exc:
            print(exc, file=sys.stderr)
            return 1
    result, withheld = plan_store(store, node, previous)
    if args.json:
        json.dump(to_json(result, config, node, withheld), sys.stdout, indent=2)
        print()
        return 1 if errors else 0
    out = [f"node {node}"]
    for name in sorted(config.peers):
        peer = config.peers[name]
        kind = "iBGP" if peer.ibgp else "eBGP"
        where = peer.peer_address or f"interface {peer.interface}"  # unnumbered: no address yet
        fams = "+".join(f"IPv{f}" for f in peer.families)  # what the session carries
        head = f"peer {name} ({where} AS {peer.dynamic_asn or peer.peer_asn}, {kind}, {fams})"
        if name not in result.routes:
            out.append(f"{head}: not on this node (nodeSelectors)")
            continue
        table = result.routes[name]
        out.append(f"{head}: {len(table)} route{'s' if len(table) != 1 else ''}")
        for r in _sorted_routes(table):
            attrs = _attrs_text(r, peer.ibgp)
            out.append(f"  {r.prefix}" + (f"  {attrs}" if attrs else ""))
            for x in r.reasons:
                out.append(f"    {x.service} → {x.ip} → pool {x.pool} → advertisement {x.advertisement} → peer {name}")
    for key, v in sorted(withheld.items()):
        out.append(f"service {key}: not announced from this node: {v}")
    for note in result.notes:
        out.append(f"note: {note}")
    sys.stdout.write("\n".join(out) + "\n")
    return 1 if errors else 0
