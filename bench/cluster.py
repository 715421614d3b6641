"""The cluster in a box at N=20: the scenarios of tests/cluster, timed.

One cluster (``tests.cluster.harness.Cluster``: N node namespaces, two FRR
ToRs with zebra + bgpd + bfdd, ECMP, BFD 100 ms x 3, graceful restart helper,
a client, an API emulator) runs the scenarios of ``tests/cluster/scenarios.py``
one after the other and prints each figure:

1. 200 Cluster-policy Services at once: last create -> last path on both ToRs;
2. Local policy, an endpoint moved: EndpointSlice change -> both ToRs' tables (p50/p99);
3. a node's link cut (nftables): cut -> its paths gone from both ToRs (BFD), and SIGKILL of its speakerd;
4. speakerd restarted (SIGTERM): samples every 50 ms, paths lost (must be 0);
5. controller leader killed; 6. API server stopped (60 s); 7. churn 50 changes/s for 60 s, CPU.

Times come from the ToRs as polled by the harness (one kept vty connection
per daemon, ~20 ms per table read at 200 prefixes), so they include up to one
poll of delay. The link cut is timed on one probe prefix read back to back
(no whole-table read of bgpd in the window: it would delay the BFD Down being
timed), from the moment the ruleset is handed to an ``nft`` started before.
The API emulator runs at nice -10 (see ``Cluster.start_api``); the churn
reports its CPU and requests per change beside the speakers' CPU (user and
system, and idle over 5 s before the churn). ``bench/cluster_api.py`` measures
the same API load on the emulator alone.  Scenarios that need ``speakerd run --kubernetes`` /
``speakerd controller`` are reported as not run, with the reason, in file mode.

    sudo .venv/bin/python bench/cluster.py [--nodes 20] [--cut-rounds 5] [--outage 60] [--churn 60] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.cluster import harness, scenarios  # noqa: E402
from tests.cluster.conftest import missing  # noqa: E402
from tests.interop import netlab  # noqa: E402


SCENARIOS = ("burst", "local", "cut", "kill", "restart", "failover", "outage", "churn")


def show(r: scenarios.Result) -> None:
    figs = ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in r.figures.items())
    print(f"{r.name}: {figs}; samples={r.samples} lost={len(r.losses)}"
          + (f"; notes: {'; '.join(r.notes)}" if r.notes else ""), flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, default=20)
    ap.add_argument("--services", type=int, default=200)
    ap.add_argument("--moves", type=int, default=50)
    ap.add_argument("--cut-rounds", type=int, default=5)
    ap.add_argument("--outage", type=float, default=60.0)
    ap.add_argument("--churn", type=float, default=60.0)
    ap.add_argument("--mode", choices=("auto", "file", "kube"), default="auto")
    ap.add_argument("--json", type=Path, help="write every result here")
    ap.add_argument("--only", action="append", choices=SCENARIOS, help="run only these scenarios (repeatable)")
    ap.add_argument("--keep", action="store_true", help="keep the lab directory (configs, logs)")
    args = ap.parse_args()
    miss = missing()
    if miss:
        print("cannot run: " + ", ".join(miss), file=sys.stderr)
        return 2
    netlab.sweep()
    kube_reason = harness.kube_mode_missing()
    mode = args.mode if args.mode != "auto" else ("kube" if kube_reason is None else "file")
    if mode == "kube" and kube_reason:
        print(f"cannot run kube mode: {kube_reason}", file=sys.stderr)
        return 2
    results: list[scenarios.Result] = []
    skipped: dict[str, str] = {}
    failed: dict[str, str] = {}
    t_start = time.monotonic()
    with harness.Cluster(args.nodes, mode, name="bench-cluster", keep_dir=args.keep) as c:
        c.setup()
        print(f"cluster: {args.nodes} nodes, mode {mode}, up in {time.monotonic() - t_start:.1f} s", flush=True)

        def run(fn, *a, **kw) -> scenarios.Result | None:
            c.heal()
            try:
                r = fn(c, *a, **kw)
            except (AssertionError, TimeoutError, netlab.LabError) as e:  # report it, go on with the next
                failed[fn.__name__ + str(a)] = str(e)[:500]
                print(f"{fn.__name__}{a}: FAILED: {str(e)[:500]}", flush=True)
                return None
            show(r)
            results.append(r)
            return r

        want = set(args.only or SCENARIOS)
        if "burst" in want:
            run(scenarios.services_at_once, args.services)
        local_reason = harness.file_mode_local_policy_missing() if mode == "file" else None
        if local_reason:
            skipped["local_moves"] = local_reason
        elif "local" in want:
            run(scenarios.local_moves, count=20, moves=args.moves)
        cuts = []
        for k in range(args.cut_rounds if "cut" in want else 0):
            r = run(scenarios.node_failure, "cut", victim_index=k % args.nodes, services=args.services)
            if r is not None and "removal_s" in r.figures:
                cuts.append(r.figures["removal_s"])
        if cuts:
            print(f"BFD removal over {len(cuts)} cuts: p50 {1000 * statistics.median(cuts):.0f} ms, "
                  f"max {1000 * max(cuts):.0f} ms", flush=True)
        if "kill" in want:
            run(scenarios.node_failure, "kill", victim_index=3, services=args.services)
        if "restart" in want:
            run(scenarios.graceful_restart, victim_index=1, services=args.services, how="sigterm")
        if mode == "kube":
            if "failover" in want:
                run(scenarios.controller_failover)
            if "outage" in want:
                run(scenarios.api_outage, args.outage, False)
                run(scenarios.api_outage, args.outage, True)
        if mode == "kube" and "churn" in want:
            r = run(scenarios.churn, args.churn, rate=50)
            if r is not None:
                print("churn CPU per speakerd (% of a core): "
                      + " ".join(f"{k.removeprefix('cpu_pct_')}={v:.1f}" for k, v in r.figures.items()
                                 if k.startswith("cpu_pct_n")), flush=True)
        if mode == "file":
            for name in ("controller_failover", "api_outage", "churn"):
                skipped[name] = kube_reason or "speakers run from files (--mode file)"
    for name, why in skipped.items():
        print(f"{name}: not run ({why})")
    print(f"total {time.monotonic() - t_start:.0f} s; {len(failed)} scenario(s) failed")
    if args.json:
        args.json.write_text(json.dumps({"nodes": args.nodes, "mode": mode, "skipped": skipped, "failed": failed,
                                         "results": [{"name": r.name, "figures": r.figures, "lost": len(r.losses),
                                                      "samples": r.samples, "notes": r.notes} for r in results]},
                                        indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
