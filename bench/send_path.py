"""Send path alone: a peer's planned routes -> UPDATE bytes, sans-IO, no parsing timed.

The input is what the planner makes of a real configuration: kubectl-shaped
Services (``kubegen``: annotations, last-applied-configuration, labels, uid,
managedFields, status; one ``kubectl get svc -A -o json`` List) and MetalLB
objects, read and planned once by ``speakerd plan``'s own path (untimed); the
routes of the one peer are what the daemon gives its session
(``route_attrs``).  Two configurations:

* ``single``: one pool, one BGPAdvertisement, eBGP (the advertise bench's shape);
* ``multi``: four IPv4 pools and one IPv6 pool, a BGPAdvertisement per pool
  with its own communities / large communities / localPref, over iBGP, so
  the routes carry several attribute sets and both families.

Timed (process time, one fresh :class:`speakerd.fsm.SessionPair` per
repetition; the peer's OPEN and KEEPALIVE are bytes, as from a socket):

* ``initial``: set_routes before the session is up, then the peer's KEEPALIVE
  -> Established -> every UPDATE and End-of-RIB (what a daemon start sends);
* ``delta``: update_routes of 1 % of the routes (half withdrawn, half new) -> UPDATEs;
* ``reload``: set_routes of the whole table with that 1 % changed (a full re-plan);
* ``bare``: builder.build_updates of the same prefixes, one call per attribute
  set: the encoding alone, the floor under ``initial``.

Each repetition's output is decoded (untimed) and the announced prefixes
counted against the table, so a run that sends less fails instead of being fast.

    .venv/bin/python bench/send_path.py [--n 100000] [--reps 7] [--shape single,multi]
        [--max-message 65535|4096] [--json OUT]
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import kubegen  # noqa: E402

from speakerd.commands.plan import read_and_plan  # noqa: E402
from speakerd.fsm import SessionPair, SessionSettings  # noqa: E402
from speakerd.fsm.actions import Send  # noqa: E402
from speakerd.fsm.open import open_message  # noqa: E402
from speakerd.policy.types import route_attrs  # noqa: E402
from speakerd.rib.adj_out import AdjRibOut, next_hops  # noqa: E402
from speakerd.wire import builder  # noqa: E402
from speakerd.wire.constants import AFI, MessageType  # noqa: E402
from speakerd.wire.framing import Framer, encode  # noqa: E402
from speakerd.wire.messages import KEEPALIVE  # noqa: E402
from speakerd.wire.update import Update  # noqa: E402

LOCAL, PEER = "198.18.1.1", "198.18.1.2"
MY_ASN, PEER_ASN = 65001, 65002
V6_BASE = 0x20010DB8 << 96  # 2001:db8::/32, documentation space

MULTI_POOLS = (  # name, CIDR, advertisement spec (MetalLB BGPAdvertisement fields)
    ("web", "100.64.0.0/12", "communities: ['64512:100']\n  localPref: 200\n"),
    ("data", "100.80.0.0/12", "communities: ['64512:200', '64512:201']\n  localPref: 150\n"),
    ("edge", "100.96.0.0/12", "communities: ['no-export']\n"),
    ("ops", "100.112.0.0/12", "localPref: 90\n"),
    ("v6", "2001:db8::/96", "communities: ['64512:600']\n  localPref: 120\n"),
)


def _metallb(shape: str) -> str:
    if shape == "single":
        return kubegen.config_yaml(PEER, MY_ASN, PEER_ASN)
    # multi: iBGP, so localPref is sent
    docs = [f"apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {{name: router, namespace: metallb-system}}\n"
            f"spec:\n  myASN: {MY_ASN}\n  peerASN: {MY_ASN}\n  peerAddress: {PEER}\n"]
    for name, cidr, adv in MULTI_POOLS:
        docs.append(f"apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: {name}, "
                    f"namespace: metallb-system}}\nspec:\n  addresses: ['{cidr}']\n")
        docs.append(f"apiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {{name: {name}, "
                    f"namespace: metallb-system}}\nspec:\n  ipAddressPools: [{name}]\n  {adv}")
    return "---\n".join(docs)


def _services(shape: str, n: int) -> list[dict]:
    if shape == "single":
        return kubegen.services(n, seed=7)
    import random
    rng = random.Random(7)
    out = []
    for i in range(n):
        name, cidr, _ = MULTI_POOLS[i % len(MULTI_POOLS)]
        j = i // len(MULTI_POOLS)
        if name == "v6":
            v = V6_BASE + 1 + j
            ip = ":".join(f"{(v >> s) & 0xFFFF:x}" for s in range(112, -1, -16))
        else:
            base = int.from_bytes(bytes(int(x) for x in cidr.split("/")[0].split(".")), "big")
            ip = kubegen.service_ip(j, base)
        svc = kubegen.service(i, rng, ip, name)
        if name == "v6":
            svc["spec"]["ipFamilies"] = ["IPv6"]
        out.append(svc)
    return out


def planned_routes(shape: str, n: int) -> tuple[dict, SessionSettings]:
    """The peer's routes as the daemon gives them to its session, and its session settings."""
    with tempfile.TemporaryDirectory(prefix="send-path-") as d:
        (Path(d) / "metallb.yaml").write_text(_metallb(shape))
        (Path(d) / "services.json").write_text(kubegen.render(_services(shape, n), "json", "list"))
        proposed = read_and_plan([d], "bench", {})
    (peer,) = proposed.config.peers.values()
    routes = route_attrs(proposed.plan.routes.get(peer.name, {}))
    return routes, SessionSettings.from_peer(peer, router_id=0x0A000001)


def _peer_open(settings: SessionSettings, max_message: int) -> bytes:
    """The OPEN the other side sends: its own AS and identifier, speakerd's capabilities."""
    from dataclasses import replace
    peer = replace(settings, local_asn=settings.peer_asn, peer_asn=settings.local_asn,
                   router_id=0x0A000002, extended_message=max_message > 4096, graceful_restart=False)
    return encode(open_message(peer))


def _established(settings: SessionSettings, routes: dict, peer_open: bytes) -> tuple[SessionPair, list, float]:
    """A pair taken to Established with ``routes`` wanted: (pair, its Sends, process seconds)."""
    pair = SessionPair(settings, trace=True)  # the daemon traces (speakerctl capture ring)
    now = 1000.0
    pair.start(now)
    m = pair.main
    t0 = time.process_time()
    pair.set_routes(now, routes)
    t_set = time.process_time() - t0
    pair.connection_made(m, now, LOCAL)
    pair.data_received(m, peer_open, now)
    pair.pop_actions()
    t0 = time.process_time()
    pair.data_received(m, encode(KEEPALIVE), now)
    sends = [a for _, a in pair.pop_actions() if type(a) is Send]
    return pair, sends, t_set + time.process_time() - t0


def _announced(sends: list, ctx) -> tuple[int, int]:
    """(prefixes announced, prefixes withdrawn) in the UPDATEs sent."""
    framer = Framer(ctx.max_message_len)
    ann = wd = 0
    for s in sends:
        for mtype, body in framer.feed(s.data):
            if mtype != MessageType.UPDATE:
                continue
            u = Update.decode_body(body, ctx)
            ann += len(u.nlri) + (len(u.mp_reach.nlri) if u.mp_reach else 0)
            wd += len(u.withdrawn) + (len(u.mp_unreach.withdrawn) if u.mp_unreach else 0)
    return ann, wd


def _changed(routes: dict, frac: float) -> tuple[dict, dict]:
    """A change of ``frac`` of the routes: half withdrawn, as many new keys (the same attributes)."""
    keys = list(routes)
    k = max(2, int(len(keys) * frac)) // 2
    gone = keys[:k]
    new = {}
    for afi, key in keys[-k:]:
        plen = key & 0xFF
        step = 1 << ((32 if afi == AFI.IPV4 else 128) - plen + 8)
        nk = key + step * (len(keys) + 1)
        while (afi, nk) in routes or (afi, nk) in new:
            nk += step
        new[(afi, nk)] = routes[(afi, key)]
    delta = {**dict.fromkeys(gone), **new}
    after = {rk: ra for rk, ra in routes.items() if rk not in delta}
    after.update(new)
    return delta, after


def _bare(routes: dict, settings: SessionSettings, ctx) -> float:
    """The same prefixes through the builder alone, grouped by attribute set."""
    nh6 = next_hops(LOCAL, None, None)[1]
    rib = AdjRibOut(settings.local_asn, settings.ibgp)
    rib.connected(LOCAL)
    groups: dict = {}
    for (afi, key), ra in routes.items():
        groups.setdefault((afi, ra), []).append(key)
    pas = {g: rib.path_attributes(g[0], g[1]) for g in groups}
    t0 = time.process_time()
    for (afi, ra), keys in groups.items():
        keys.sort()
        builder.build_updates(afi, keys, pas[(afi, ra)], ctx, nh6 if afi == AFI.IPV6 else None)
    return time.process_time() - t0


def run_shape(shape: str, n: int, reps: int, max_message: int) -> dict:
    t0 = time.perf_counter()
    routes, settings = planned_routes(shape, n)
    setup = time.perf_counter() - t0
    peer_open = _peer_open(settings, max_message)
    delta, after = _changed(routes, 0.01)
    times: dict[str, list[float]] = {"initial": [], "delta": [], "reload": [], "bare": []}
    msgs = 0
    gc.collect()
    for _ in range(reps):
        pair, sends, t = _established(settings, routes, peer_open)
        ctx = pair.main.negotiated
        ann, _ = _announced(sends, ctx)
        if ann != len(routes):
            raise SystemExit(f"{shape}: {ann} prefixes announced of {len(routes)}")
        times["initial"].append(t)
        msgs = sum(1 for s in sends if s.mtype == MessageType.UPDATE)
        def timed(stage: str, pair, call, table) -> list:
            """CPU of one route hand-over and its UPDATEs; half the changed keys withdrawn, half announced."""
            t0 = time.process_time()
            call(1000.0, table)
            sent = [a for _, a in pair.pop_actions() if type(a) is Send]
            times[stage].append(time.process_time() - t0)
            if _announced(sent, ctx) != (len(delta) // 2, len(delta) // 2):
                raise SystemExit(f"{shape}: {stage} sent {_announced(sent, ctx)}, changed {len(delta)}")
            return sent

        timed("delta", pair, pair.update_routes, delta)
        pair2, _, _ = _established(settings, routes, peer_open)
        sent = timed("reload", pair2, pair2.set_routes, after)
        times["bare"].append(_bare(routes, settings, ctx))
        del pair, pair2, sends, sent
    attrs = len({id(ra) for ra in routes.values()})
    row = {"shape": shape, "routes": len(routes), "attr_objects": attrs,
           "ipv6": sum(1 for afi, _ in routes if afi == AFI.IPV6), "updates": msgs,
           "max_message": max_message, "reps": reps, "setup_s": round(setup, 2)}
    for k, v in times.items():
        row[k] = statistics.median(v)
        row[k + "_all"] = [round(x, 4) for x in v]
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000, help="Services (one route each)")
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--shape", default="single,multi")
    ap.add_argument("--max-message", type=int, default=65535, choices=(4096, 65535),
                    help="the peer offers extended messages (RFC 8654, as FRR does) or not")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    load = os.getloadavg()
    rows = []
    for shape in args.shape.split(","):
        row = run_shape(shape, args.n, args.reps, args.max_message)
        rows.append(row)
        print(f"{shape:6} {row['routes']:>7,} routes ({row['ipv6']:,} IPv6, {row['attr_objects']} attribute "
              f"objects) -> {row['updates']} UPDATEs of <= {args.max_message} B; process time, median of "
              f"{args.reps}: initial {row['initial'] * 1e3:7.1f} ms  delta 1% {row['delta'] * 1e3:6.1f} ms  "
              f"reload 1% {row['reload'] * 1e3:7.1f} ms  bare encode {row['bare'] * 1e3:6.1f} ms", flush=True)
    end = os.getloadavg()
    print(f"load average {load[0]:.2f} at start, {end[0]:.2f} at end")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "load": [load[0], end[0]]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
