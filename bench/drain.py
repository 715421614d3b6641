"""Packets lost when a node is taken out: ``speakerctl drain`` vs a plain stop.

The lab of :mod:`tests.interop.drainlab`: a client sends a steady UDP flow (``--rate``
datagrams/s for ``--seconds``, 16 source ports) to a Service IP that two speakerd nodes
announce to an FRR router (ECMP, L4 hash, FRR's graceful-shutdown route-map: community
65535:0 -> local-preference 0).  Each round takes node1 out twice while the flow runs:
``drain`` (``speakerctl drain --wait W``, then SIGTERM and node1's receiver ends) and
``stop`` (SIGTERM without graceful restart, node1's receiver ends at the same moment).
Lost = sent - counted by the receivers of both nodes.

    sudo .venv/bin/python bench/drain.py [--rounds 3] [--rate 2000] [--seconds 8] [--wait 3]

Needs root and FRR.  Traffic stays in the lab's namespaces.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.interop import netlab  # noqa: E402
from tests.interop.drainlab import build, restart_node1, take_node_out, wait_ecmp  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rate", type=float, default=2000)
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--wait", type=float, default=3.0, help="speakerctl drain --wait")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    netlab.sweep()
    rows = []
    with netlab.Lab("bench-drain") as lab:
        setup = build(lab)
        wait_ecmp(setup)
        for i in range(a.rounds):
            for mode in ("drain", "stop"):
                r = take_node_out(setup, mode, rate=a.rate, seconds=a.seconds, wait=a.wait)
                r.pop("drain", None)
                r["round"] = i + 1
                rows.append(r)
                if not a.json:
                    print(f"round {i + 1} {mode:5s}: sent {r['sent']}, received {r['received']} "
                          f"(node1 {r['by_node']['node1']}, node2 {r['by_node']['node2']}), lost {r['lost']}",
                          flush=True)
                restart_node1(setup)
    if a.json:
        print(json.dumps(rows, indent=2))
    else:
        for mode in ("drain", "stop"):
            lost = [r["lost"] for r in rows if r["mode"] == mode]
            print(f"{mode}: lost per round {lost} (min {min(lost)}, max {max(lost)}) of "
                  f"{rows[0]['sent']} sent at {a.rate:.0f}/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
