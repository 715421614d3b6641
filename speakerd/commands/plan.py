"""`speakerd plan -c PATH… [--node NAME] [--state FILE] [--json]`: what this node would advertise.

For each peer, each prefix with its attributes and the chain that produced it:
service → IP → pool → advertisement → peer.  Read-only: the state file (the
previous allocations) is read, never written.
"""
from __future__ import annotations

import json
import socket
import sys

from ..config import read_config
from ..config.communities import format_community
from ..policy import plan
from ..policy.types import Plan, PlannedRoute
from ..state import StateError, load_allocations


def register(sub):
    p = sub.add_parser("plan", help="show the routes this node would advertise to each peer, and why")
    p.add_argument("-c", "--config", action="append", required=True, metavar="PATH",
                   help="file or directory of manifests (repeatable)")
    p.add_argument("--node", default=None, help="node name (default: this host's name)")
    p.add_argument("--state", default=None, metavar="FILE", help="allocation state file (read only; accepted, does not change the assignment: every node computes it from the manifests)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    return p


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
    return "  ".join(parts)


def _sorted_routes(table: dict) -> list[PlannedRoute]:
    return [table[k] for k in sorted(table)]


def to_json(result: Plan, config, node: str) -> dict:
    peers = {}
    for name, table in result.routes.items():
        peer = config.peers[name]
        peers[name] = {
            "address": peer.peer_address, "peer_asn": peer.peer_asn, "my_asn": peer.my_asn, "ibgp": peer.ibgp,
            "routes": [{
                "prefix": r.prefix, "afi": r.afi,
                "communities": [format_community(c) for c in r.attrs.communities],
                "large_communities": [format_community(c) for c in r.attrs.large_communities],
                "local_pref": r.attrs.local_pref,
                "reasons": [{"service": x.service, "ip": x.ip, "pool": x.pool, "advertisement": x.advertisement}
                            for x in r.reasons],
            } for r in _sorted_routes(table)],
        }
    return {"node": node, "peers": peers, "inactive_peers": sorted(set(config.peers) - set(result.routes)),
            "allocations": {k: list(v) for k, v in sorted(result.allocations.items())}, "notes": list(result.notes)}


def main(args) -> int:
    node = args.node or socket.gethostname()
    config, errors = read_config(args.config)
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
    result = plan(config, node, previous)
    if args.json:
        json.dump(to_json(result, config, node), sys.stdout, indent=2)
        print()
        return 1 if errors else 0
    out = [f"node {node}"]
    for name in sorted(config.peers):
        peer = config.peers[name]
        kind = "iBGP" if peer.ibgp else "eBGP"
        head = f"peer {name} ({peer.peer_address} AS {peer.peer_asn}, {kind})"
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
    for note in result.notes:
        out.append(f"note: {note}")
    sys.stdout.write("\n".join(out) + "\n")
    return 1 if errors else 0
