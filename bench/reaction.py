"""Reaction: one service added to (then removed from) a running speakerd with 1,000 services.

speakerd (``--watch 0``) peers with FRR over a veth.  Each repetition writes
``extra.yaml`` (one more Service) into the config directory, or deletes it,
and asks for a reload over the control socket.  Measured from just before the
reload request:
  * wire: the first speakerd segment carrying more than a KEEPALIVE, seen by
    tcpdump inside FRR's namespace (kernel timestamp), waited for first so that
    no vtysh process competes with speakerd for the CPU meanwhile;
  * FRR: then the first back-to-back vtysh poll that shows the route (or its absence).

    sudo .venv/bin/python bench/reaction.py [--quick] [--reps 100] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lab_extra import ipv4, netlab, poll, service_yaml  # noqa: E402
from peers import FrrD, SpeakerdD  # noqa: E402

from speakerd import ctl  # noqa: E402

SPEAKER, FRR = "198.18.1.1", "198.18.1.2"


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(p / 100 * len(xs) + 0.5) - 1))]


class Wire:
    """tcpdump lines (kernel timestamps) of speakerd segments longer than a KEEPALIVE."""

    def __init__(self, lab, ns, dev):
        filt = f"src host {SPEAKER} and tcp and (ip[2:2] - ((ip[0]&0xf)<<2) - ((tcp[12]&0xf0)>>2)) > 19"
        self.p = lab.spawn(ns, "tcpdump-reaction", ["tcpdump", "-i", dev, "-n", "-tt", "-l",
                                                    "--immediate-mode", filt])
        poll(lambda: "listening on" in self.p.log_text(), 10, 0.02)

    def first_after(self, t: float) -> float | None:
        for line in self.p.log_text().splitlines():
            head = line.split(" ", 1)[0]
            try:
                ts = float(head)
            except ValueError:
                continue
            if ts > t:
                return ts
        return None


def _stable(sd: SpeakerdD, neighbor: str, seconds: float = 2.0) -> bool:
    p = sd._peer(neighbor)
    return bool(p.get("established")) and p.get("up_down_seconds", 0) >= seconds


def has_route(frr: FrrD, prefix: str) -> bool:
    out = frr.f.vtysh(f"show bgp ipv4 unicast {prefix} json")
    return bool(out.get("paths"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="20 repetitions")
    ap.add_argument("--reps", type=int, default=100)
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    reps = 20 if args.quick else args.reps
    res: dict[str, list[float]] = {"add_wire": [], "add_frr": [], "del_wire": [], "del_frr": []}
    with netlab.Lab("bench-react") as lab:
        sns, fns = lab.ns("spk"), lab.ns("frr")
        link = lab.link(sns, fns)
        frr = FrrD(fns, lab.subdir("frr"), FRR, 65002, [(SPEAKER, 65001)])
        d = lab.subdir("spk")
        sd = SpeakerdD(sns, d, FRR, 65001, 65002, n_services=args.services)
        poll(lambda: frr.count(SPEAKER) >= args.services, 60, 0.05)
        # FRR may drop a session that came up before zebra reported the connected
        # route (a BGP_Stop ~100 ms after Established, seen in its neighbor-events
        # log); measure only on a session that has stayed up for two seconds.
        poll(lambda: _stable(sd, FRR) and frr.count(SPEAKER) >= args.services, 60, 0.05)
        wire = Wire(lab, fns, link.dev(fns))
        sock = str(sd.sd.socket)
        extra = sd.cfg / "extra.yaml"
        for r in range(reps):
            ip = ipv4(args.services + 1 + r)
            extra.write_text(service_yaml(f"extra{r}", ip))
            t0 = time.time()
            reply = ctl.call(sock, "reload", timeout=30)
            if not reply.get("ok", True):
                raise SystemExit(f"reload failed: {reply}")
            res["add_wire"].append(poll(lambda: wire.first_after(t0), 5, 0.002)[0] - t0)
            poll(lambda: has_route(frr, ip + "/32"), 10, 0.002)
            res["add_frr"].append(time.time() - t0)
            extra.unlink()
            t1 = time.time()
            ctl.call(sock, "reload", timeout=30)
            res["del_wire"].append(poll(lambda: wire.first_after(t1), 5, 0.002)[0] - t1)
            poll(lambda: not has_route(frr, ip + "/32"), 10, 0.002)
            res["del_frr"].append(time.time() - t1)
    rows = []
    for k, xs in res.items():
        ms = [x * 1000 for x in xs]
        row = {"what": k, "n": len(ms), "p50": statistics.median(ms), "p99": pct(ms, 99), "max": max(ms),
               "min": min(ms), "slowest_rep": ms.index(max(ms))}
        rows.append(row)
        print(f"{k:9} n={row['n']:3}  p50 {row['p50']:6.1f} ms  p99 {row['p99']:6.1f} ms  "
              f"min {row['min']:6.1f}  max {row['max']:6.1f} (repetition {row['slowest_rep']})", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"services": args.services, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
