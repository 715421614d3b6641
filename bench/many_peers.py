"""Many peers: one speakerd with 200 BGP sessions, 1,000 prefixes to each.

The other side is one GoBGP with 200 neighbors.  Every session has its own
pair of addresses on the one veth: speakerd's BGPPeer ``i`` dials
198.18.3.(10+i) from ``sourceAddress`` 198.18.2.(10+i); GoBGP's neighbor
``i`` is 198.18.2.(10+i) with local address 198.18.3.(10+i).  speakerd has
holdTime 30 s (a KEEPALIVE every 10 s per session: 20 per second; --hold) and 1,000
Services.

Measured: speakerd start -> all sessions Established and GoBGP holding
1,000 prefixes from each (``gobgp neighbor -j``); then speakerd's CPU over a
steady-state window (keepalives only) as a percentage of one core; RSS.

    sudo .venv/bin/python bench/many_peers.py [--quick] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lab_extra import Usage, median, netlab, poll, write_speakerd_config  # noqa: E402
from peers import SpeakerdD  # noqa: E402


def spk_addr(i: int) -> str:
    return f"198.18.{2 + (10 + i) // 250}.{(10 + i) % 250}"


def gob_addr(i: int) -> str:
    return f"198.18.{4 + (10 + i) // 250}.{(10 + i) % 250}"


class ManyGoBgp(netlab.GoBgp):
    def __init__(self, ns, dir, n_peers: int, hold: int):
        self.n_peers, self.hold = n_peers, hold
        super().__init__(ns, dir, 65002, "198.18.1.2")

    def config(self) -> str:
        lines = ["[global.config]", "  as = 65002", '  router-id = "198.18.1.2"', ""]
        for i in range(self.n_peers):
            lines += ["[[neighbors]]", "  [neighbors.config]", f'    neighbor-address = "{spk_addr(i)}"',
                      "    peer-as = 65001", "  [neighbors.transport.config]",
                      f'    local-address = "{gob_addr(i)}"', "    passive-mode = true",
                      "  [neighbors.timers.config]", "    connect-retry = 1",
                      f"    hold-time = {self.hold}", f"    keepalive-interval = {self.hold // 3}",
                      "  [[neighbors.afi-safis]]", "    [neighbors.afi-safis.config]",
                      '      afi-safi-name = "ipv4-unicast"', ""]
        return "\n".join(lines) + "\n"

    def totals(self) -> tuple[int, int]:
        """(established neighbors, prefixes received over all of them)."""
        est = rcv = 0
        for nb in self.gobgp("neighbor") or []:
            st = nb.get("state", {}) or {}
            if st.get("session_state") == 6:
                est += 1
            for af in nb.get("afi_safis", []) or []:
                rcv += int((af.get("state", {}) or {}).get("received", 0) or 0)
        return est, rcv


def run_one(n_peers: int, n_routes: int, window: float, hold: int) -> dict:
    with netlab.Lab("bench-peers") as lab:
        sns, gns = lab.ns("spk"), lab.ns("gob")
        link = lab.link(sns, gns)
        for i in range(n_peers):
            sns.exec("ip", "addr", "add", f"{spk_addr(i)}/15", "dev", link.dev(sns))
            gns.exec("ip", "addr", "add", f"{gob_addr(i)}/15", "dev", link.dev(gns))
        gob = ManyGoBgp(gns, lab.subdir("gob"), n_peers, hold)
        d = lab.subdir("spk")
        peers = [(gob_addr(i), 65001, 65002, spk_addr(i)) for i in range(n_peers)]
        write_speakerd_config(d / "cfg", n_routes, peers, hold=hold)
        t0 = time.time()
        sd = SpeakerdD(sns, d, peers[0][0], 65001, 65002, write=False)
        want = n_peers * n_routes
        try:
            poll(lambda: gob.totals()[1] >= want, 120, 0.1)
            t_conv: float | None = time.time() - t0
        except TimeoutError:
            t_conv = None  # reported as not converged, with how many sessions made it
        est_conv, rcv_conv = gob.totals()
        time.sleep(2)  # let the last UPDATE bursts drain before the steady-state window
        u0, w0 = Usage.of(sd.pid), time.monotonic()
        time.sleep(window)  # the measurement itself: CPU over a fixed wall-clock window
        u1, w1 = Usage.of(sd.pid), time.monotonic()
        est_after = gob.totals()[0]
        return {"peers": n_peers, "routes": n_routes, "converge": t_conv, "established_after": est_after,
                "established_at_converge": est_conv, "received": rcv_conv, "hold": hold,
                "cpu_pct": 100 * (u1.cpu - u0.cpu) / (w1 - w0), "rss": u1.rss, "window": w1 - w0}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1 repetition")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--peers", type=int, default=200)
    ap.add_argument("--routes", type=int, default=1000)
    ap.add_argument("--window", type=float, default=30.0)
    ap.add_argument("--hold", type=int, default=30, help="hold time both sides (keepalive = hold / 3)")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    reps = 1 if args.quick else args.reps
    runs = []
    for r in range(reps):
        x = run_one(args.peers, args.routes, args.window, args.hold)
        runs.append(x)
        conv = f"{x['converge']:.2f} s" if x["converge"] is not None else f"NOT ({x['received']:,} received)"
        print(f"rep {r}: converged {conv}  established after window {x['established_after']}/"
              f"{args.peers}  steady CPU {x['cpu_pct']:.2f} % of one core  RSS {x['rss'] / 2**20:.1f} MiB",
              flush=True)
    row = {k: median([x[k] for x in runs if x[k] is not None]) for k in ("converge", "cpu_pct", "rss")}
    row.update(peers=args.peers, routes=args.routes, reps=reps, window=args.window, hold=args.hold,
               converged_runs=sum(1 for x in runs if x["converge"] is not None),
               established=min(x["established_after"] for x in runs))
    print(f"median: converged {row['converge']:.2f} s  steady CPU {row['cpu_pct']:.2f} %  "
          f"RSS {row['rss'] / 2**20:.1f} MiB")
    if args.json:
        Path(args.json).write_text(json.dumps(row, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
