"""`speakerd check -c PATH… [--json]`: validate a configuration, report every issue.

Exit 0 prints a one-line summary and the warnings; exit 1 prints every error,
one per line as ``file: Kind/name: spec.field: reason``, then what the daemon
would run on anyway: a bad Service, EndpointSlice or Node is skipped and every
other one announced; an error in a MetalLB object refuses the MetalLB
configuration (a running daemon keeps its previous one).
"""
from __future__ import annotations

import json
import sys

from ..config import read_config
from ..config.model import Config


def register(sub):
    p = sub.add_parser("check", help="validate MetalLB manifests (files or directories) and report every problem")
    p.add_argument("-c", "--config", action="append", required=True, metavar="PATH",
                   help="file or directory of manifests (repeatable)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    return p


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else (plural or word + 's')}"


def summary(config: Config) -> str:
    warnings = [i for i in config.issues if i.severity == "warning"]
    return ("ok: " + ", ".join([
        _plural(len(config.peers), "peer"), _plural(len(config.pools), "pool"),
        _plural(len(config.advertisements), "advertisement"), _plural(len(config.services), "service"),
        _plural(len(config.bfd_profiles), "BFD profile"),
    ]) + f"; {_plural(len(warnings), 'warning')}")


def _issue_json(i) -> dict:
    return {"file": i.file, "object": i.obj, "field": i.field, "message": i.message, "severity": i.severity}


def main(args) -> int:
    config, errors = read_config(args.config)
    if errors:
        refused = any(i.obj.split("/")[0] not in ("Service", "EndpointSlice", "Node") for i in errors)
        if args.json:
            json.dump({"ok": False, "errors": [_issue_json(i) for i in errors], "metallb_refused": refused,
                       "summary": summary(config)}, sys.stdout, indent=2)
            print()
        else:
            for issue in errors:
                print(issue)
            print(f"{_plural(len(errors), 'error')}; "
                  + ("the MetalLB configuration is refused" if refused else
                     f"each object in error is skipped, the rest would run ({summary(config)[4:]})"), file=sys.stderr)
        return 1
    notes = [i for i in config.issues if i.severity == "warning"]
    if args.json:
        json.dump({
            "ok": True, "summary": summary(config),
            "counts": {"peers": len(config.peers), "pools": len(config.pools),
                       "advertisements": len(config.advertisements), "services": len(config.services),
                       "bfd_profiles": len(config.bfd_profiles), "nodes": len(config.nodes)},
            "warnings": [_issue_json(i) for i in notes],
            "notes": [_issue_json(i) for i in config.issues if i.severity == "info"],
        }, sys.stdout, indent=2)
        print()
        return 0
    print(summary(config))
    for issue in notes:
        print(f"warning: {issue}")
    return 0
