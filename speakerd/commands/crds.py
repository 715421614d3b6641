"""`speakerd crds [--kind KIND]... [--json]`: print CustomResourceDefinitions for the kinds speakerd reads and writes.

For a cluster without MetalLB: ``speakerd crds | kubectl apply -f -``.
Where MetalLB's own CRDs are installed, they are what speakerd reads; these
would replace them.
"""
from __future__ import annotations

import json
import sys

import yaml

from ..crds import DEFINITIONS, all_crds


def register(sub):
    p = sub.add_parser("crds", help="print the CustomResourceDefinitions (MetalLB's kinds) as YAML")
    p.add_argument("--kind", action="append", default=None, metavar="KIND",
                   help="only this kind (repeatable): " + ", ".join(d.kind for d in DEFINITIONS))
    p.add_argument("--json", action="store_true", help="one JSON List instead of YAML documents")
    return p


def main(args) -> int:
    crds = all_crds(args.kind)
    if args.kind and len(crds) != len(set(k.lower() for k in args.kind)):
        known = ", ".join(d.kind for d in DEFINITIONS)
        print(f"speakerd crds: unknown kind in {args.kind}; known: {known}", file=sys.stderr)
        return 2
    if args.json:
        json.dump({"apiVersion": "v1", "kind": "List", "items": crds}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(yaml.safe_dump_all(crds, sort_keys=False, explicit_start=True))
    return 0
