"""Receive: a fixed sender pushes N IPv4 /32s into each BGP implementation.

Sender: bench/blaster.py, a raw-socket replayer of a pre-built UPDATE stream
(speakerd's encoder, 4096-byte UPDATEs, one attribute set), passive on
198.18.1.1 in its own namespace; the receiver dials it over a veth.  Time =
from the sender seeing Established to the receiver reporting all N prefixes
(speakerd: control socket summary ``prefixes_received``; FRR: vtysh pfxRcd;
GoBGP: neighbor ``received``; BIRD: ``Routes: N imported``).  CPU = receiver
CPU seconds spent in that window; RSS = receiver RSS at the end, and its growth
over the idle daemon per prefix.

    sudo .venv/bin/python bench/receive.py [--quick] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lab_extra import Usage, median, netlab, poll  # noqa: E402
from peers import BirdD, FrrD, GoBgpD, SpeakerdD  # noqa: E402

SENDER, RECEIVER = "198.18.1.1", "198.18.1.2"
RECEIVERS = ("speakerd", "FRR", "GoBGP", "BIRD")


def blaster_event(proc: netlab.Proc, event: str) -> dict | None:
    for line in proc.log_text().splitlines():
        if line.startswith("{"):
            obj = json.loads(line)
            if obj["event"] == event:
                return obj
            if obj["event"] in ("closed", "notification"):
                raise netlab.LabError(f"blaster: {line}")
    return None


def start_receiver(kind: str, ns, dir: Path):
    if kind == "speakerd":
        return SpeakerdD(ns, dir, SENDER, 65002, 65001)
    if kind == "FRR":
        return FrrD(ns, dir, RECEIVER, 65002, [(SENDER, 65001)])
    if kind == "GoBGP":
        return GoBgpD(ns, dir, RECEIVER, 65002, [(SENDER, 65001)])
    if kind == "BIRD":
        return BirdD(ns, dir, RECEIVER, RECEIVER, 65002, SENDER, 65001)
    raise ValueError(kind)


def run_one(kind: str, n: int, timeout: float) -> dict:
    with netlab.Lab(f"bench-rx-{kind}") as lab:
        snd, rcv = lab.ns("snd"), lab.ns("rcv")
        lab.link(snd, rcv)
        blaster = lab.spawn(snd, "blaster", [sys.executable, str(Path(__file__).with_name("blaster.py")),
                                             "--listen", SENDER, "-n", str(n)])
        poll(lambda: blaster_event(blaster, "listening"), 60, 0.05)
        d = start_receiver(kind, rcv, lab.subdir(kind.lower()))
        idle = Usage.of(d.pid)
        est, _ = poll(lambda: blaster_event(blaster, "established"), 60, 0.005)
        u0 = Usage.of(d.pid)
        interval = 0.01 if kind == "speakerd" else 0.05
        _, _ = poll(lambda: d.count(SENDER) >= n, timeout, interval)
        t_done = time.time()
        u1 = Usage.of(d.pid)
        count = d.count(SENDER)
        sent = blaster_event(blaster, "sent")
        return {"receiver": kind, "n": n, "seconds": t_done - est["t"], "cpu": u1.cpu - u0.cpu,
                "rss": u1.rss, "rss_idle": idle.rss, "bytes_per_prefix": (u1.rss - idle.rss) / n,
                "count": count, "send_seconds": (sent["t"] - est["t"]) if sent else None}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="N = 100k only, 1 repetition")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--receivers", default=",".join(RECEIVERS))
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    sizes = [100_000] if args.quick else [int(x) for x in args.sizes.split(",")]
    reps = 1 if args.quick else args.reps
    results = []
    for n in sizes:
        for kind in args.receivers.split(","):
            runs = []
            for r in range(reps):
                try:
                    runs.append(run_one(kind, n, timeout=120 + n / 2000))
                except Exception as e:  # noqa: BLE001 - report and go on with the others
                    print(f"{kind} N={n} rep {r}: {e}", file=sys.stderr)
            if not runs:
                results.append({"receiver": kind, "n": n, "error": True})
                continue
            row = {"receiver": kind, "n": n, "reps": len(runs),
                   "seconds": median([x["seconds"] for x in runs]), "cpu": median([x["cpu"] for x in runs]),
                   "rss": median([x["rss"] for x in runs]),
                   "bytes_per_prefix": median([x["bytes_per_prefix"] for x in runs]),
                   "all": [round(x["seconds"], 3) for x in runs]}
            results.append(row)
            print(f"{kind:9} N={n:>8,}  {row['seconds']:7.3f} s  cpu {row['cpu']:6.2f} s  "
                  f"rss {row['rss'] / 2**20:7.1f} MiB  {row['bytes_per_prefix']:6.1f} B/prefix  runs {row['all']}",
                  flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
