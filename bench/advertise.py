"""Advertise: N IPv4 /32s from each BGP implementation into one fixed FRR receiver.

Receiver: FRR bgpd (``-n``: no kernel routes; zebra for next-hop tracking) on
198.18.1.2, polled with ``vtysh show bgp ipv4 unicast summary json`` until
``pfxRcd`` = N.  The sender runs in its own namespace on 198.18.1.1.

Three clocks, all CLOCK_REALTIME on one machine:
  * start: just before the sender process is spawned (its config already written);
  * first UPDATE: the first sender segment with > 400 bytes of BGP payload,
    timestamped by tcpdump inside the receiver namespace;
  * converged: the first poll (back to back, each vtysh call ~10-30 ms) that sees all N.

Senders: speakerd (N Service objects in one YAML file, one pool, one
advertisement), BIRD (N static routes, ``export all``), FRR (N ``network``
statements), ExaBGP (N static routes; N <= 100k: its config parser needs
minutes and GBs for 1M), GoBGP (routes added one ``gobgp global rib add`` at
a time before the neighbor is configured: ~100 adds/s, so only N = 10k).

    sudo .venv/bin/python bench/advertise.py [--quick] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lab_extra import Usage, ipv4, median, netlab, peak_rss, poll  # noqa: E402
from peers import BirdD, ExaBgpD, FrrD, GoBgpD, SpeakerdD, write_speakerd_config  # noqa: E402

SENDER, RECEIVER = "198.18.1.1", "198.18.1.2"
SENDERS = ("speakerd", "BIRD", "FRR", "GoBGP", "ExaBGP")
BASE = 10 << 24
LIMITS = {"ExaBGP": 100_000, "GoBGP": 10_000}


def first_update_capture(lab: netlab.Lab, rcv: netlab.Netns, dev: str) -> netlab.Proc:
    filt = (f"src host {SENDER} and tcp and "
            "(ip[2:2] - ((ip[0]&0xf)<<2) - ((tcp[12]&0xf0)>>2)) > 400")
    p = lab.spawn(rcv, "tcpdump", ["tcpdump", "-i", dev, "-n", "-tt", "-c", "1", "--immediate-mode", "-l", filt])
    poll(lambda: "listening on" in p.log_text(), 10, 0.02)
    return p


def captured_time(p: netlab.Proc) -> float | None:
    for line in p.log_text().splitlines():
        head = line.split(" ", 1)[0]
        if head.replace(".", "").isdigit() and "." in head:
            return float(head)
    return None


def start_sender(kind: str, lab: netlab.Lab, ns: netlab.Netns, n: int):
    d = lab.subdir(f"snd-{kind.lower()}")
    if kind == "speakerd":
        write_speakerd_config(d / "cfg", n, [(RECEIVER, 65001, 65002)])
        t0 = time.time()
        return t0, SpeakerdD(ns, d, RECEIVER, 65001, 65002, write=False)
    if kind == "BIRD":
        t0 = time.time()
        return t0, BirdD(ns, d, SENDER, SENDER, 65001, RECEIVER, 65002, statics=n, static_base=BASE)
    if kind == "FRR":
        nets = [f"{ipv4(i)}/32" for i in range(n)]
        t0 = time.time()
        return t0, FrrD(ns, d, SENDER, 65001, [(RECEIVER, 65002)], networks=nets)
    if kind == "ExaBGP":
        t0 = time.time()
        return t0, ExaBgpD(ns, d, SENDER, SENDER, 65001, RECEIVER, 65002, n, BASE)
    if kind == "GoBGP":
        t0 = time.time()
        g = GoBgpD(ns, d, SENDER, 65001, [])
        for i in range(n):
            g.g.gobgp("global", "rib", "add", "-a", "ipv4", f"{ipv4(i)}/32", "nexthop", SENDER, json_=False)
        g.g.gobgp("neighbor", "add", RECEIVER, "as", "65002", json_=False)
        return t0, g
    raise ValueError(kind)


def run_one(kind: str, n: int, timeout: float) -> dict:
    with netlab.Lab(f"bench-adv-{kind}") as lab:
        snd, rcv = lab.ns("snd"), lab.ns("rcv")
        link = lab.link(snd, rcv)
        frr = FrrD(rcv, lab.subdir("rcv-frr"), RECEIVER, 65002, [(SENDER, 65001)])
        cap = first_update_capture(lab, rcv, link.dev(rcv))
        t0, s = start_sender(kind, lab, snd, n)
        poll(lambda: frr.count(SENDER) >= n, timeout, 0.01)
        t_done = time.time()
        u = Usage.of(s.pid)
        first = poll(lambda: captured_time(cap), 5, 0.05)[0]
        return {"sender": kind, "n": n, "e2e": t_done - t0,
                "first": t_done - first, "cpu": u.cpu, "rss": u.rss, "peak_rss": peak_rss(s.pid)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="N = 10k and 100k, 1 repetition, no GoBGP")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--senders", default=",".join(SENDERS))
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    sizes = [10_000, 100_000] if args.quick else [int(x) for x in args.sizes.split(",")]
    if args.quick:
        LIMITS["GoBGP"] = 0  # its one-CLI-call-per-route loading alone takes ~2 min at 10k
    reps = 1 if args.quick else args.reps
    results = []
    for n in sizes:
        for kind in args.senders.split(","):
            if n > LIMITS.get(kind, n):
                why = f"N > {LIMITS[kind]:,}" if LIMITS[kind] else "not in --quick"
                results.append({"sender": kind, "n": n, "skipped": why})
                continue
            runs = []
            for r in range(reps if not (kind == "GoBGP") else 1):
                try:
                    runs.append(run_one(kind, n, timeout=60 + n / 1000))
                except Exception as e:  # noqa: BLE001 - report and go on with the others
                    print(f"{kind} N={n} rep {r}: {type(e).__name__}: {e}", file=sys.stderr)
            if not runs:
                results.append({"sender": kind, "n": n, "error": True})
                continue
            row = {"sender": kind, "n": n, "reps": len(runs)}
            for k in ("e2e", "first", "cpu", "rss", "peak_rss"):
                vals = [x[k] for x in runs if x[k] is not None]
                row[k] = median(vals) if vals else None
            row["all_first"] = [round(x["first"], 3) for x in runs]
            results.append(row)
            print(f"{kind:9} N={n:>8,}  e2e {row['e2e']:7.2f} s  "
                  f"1st UPDATE->all {row['first']:6.3f} s  cpu {row['cpu']:6.2f} s  "
                  f"rss {row['rss'] / 2**20:7.1f} MiB  runs {row['all_first']}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
