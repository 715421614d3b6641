"""UPDATE codec throughput: speakerd vs ExaBGP's and scapy's decoders on the same bytes.

    .venv/bin/python bench/codec.py            # 1,000,000 IPv4 (/32 + /24) and 200,000 IPv6 /128
    .venv/bin/python bench/codec.py --quick    # a tenth of that

Prefixes are random, packed by speakerd's builder into standard 4096-byte
UPDATEs sharing one attribute set.  speakerd decode = Framer over 64 KB
chunks + Update.decode_body for every message (what a session does);
encode = build_updates (whole framed messages).  ExaBGP and scapy decode a
sample of the same messages (they are far slower; the rate is per prefix).
One core, best of 3 for speakerd.
"""
from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from speakerd.wire.builder import build_updates  # noqa: E402
from speakerd.wire.capabilities import DEFAULT_CONTEXT  # noqa: E402
from speakerd.wire.framing import Framer  # noqa: E402
from speakerd.wire.nlri import make_key  # noqa: E402
from speakerd.wire.update import PathAttributes, Update, clear_intern_cache  # noqa: E402

ATTRS = PathAttributes(origin=0, as_path=((2, (65001, 65002)),), next_hop=0x0A000001, med=0,
                       communities=(0xFDE90064,))
NH6 = bytes.fromhex("20010db8000000000000000000000001")
CHUNK = 65536


def best(fn, runs=3):
    times = []
    result = None
    for _ in range(runs):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return min(times), result


def speakerd_decode(stream: bytes, afi: int) -> int:
    framer = Framer()
    decode = Update.decode_body
    n = 0
    for off in range(0, len(stream), CHUNK):
        for _t, body in framer.feed(stream[off:off + CHUNK]):
            u = decode(body, DEFAULT_CONTEXT)
            n += len(u.nlri) if afi == 1 else len(u.mp_reach.nlri)
    return n


def exabgp_decoder():
    try:
        from exabgp.logger import log
        log.disable()
        from exabgp.bgp.message.direction import Direction
        from exabgp.bgp.message.open.capability.negotiated import Negotiated
        from exabgp.bgp.message.update import Update as XUpdate
        from exabgp.protocol.family import AFI, SAFI
    except Exception as exc:  # pragma: no cover - optional
        print(f"exabgp unavailable: {exc}")
        return None
    neg = Negotiated({"capability": {"aigp": False}})
    neg.asn4 = True
    neg.families = [(AFI.ipv4, SAFI.unicast), (AFI.ipv6, SAFI.unicast)]

    def run(msgs):
        n = 0
        for m in msgs:
            n += len(XUpdate.unpack_message(m[19:], Direction.IN, neg).nlris)
        return n
    return run


def scapy_decoder():
    try:
        from scapy.config import conf
        conf.contribs.setdefault("bgp", {})["use_2_bytes_asn"] = False
        from scapy.contrib.bgp import BGPHeader, BGPUpdate
    except Exception as exc:  # pragma: no cover - optional
        print(f"scapy unavailable: {exc}")
        return None

    def run(msgs):
        n = 0
        for m in msgs:
            u = BGPHeader(m)[BGPUpdate]
            n += len(u.nlri)
            for a in u.path_attr:
                if a.type_code == 14:
                    n += len(a.attribute.nlri)
        return n
    return run


def sample(msgs, prefixes_per_msg, want):
    return msgs[:max(1, min(len(msgs), want // max(1, prefixes_per_msg)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a tenth of the prefixes")
    ap.add_argument("--exabgp-sample", type=int, default=100_000, help="prefixes decoded by ExaBGP per set")
    ap.add_argument("--scapy-sample", type=int, default=10_000, help="prefixes decoded by scapy per set")
    args = ap.parse_args()
    scale = 10 if args.quick else 1
    rnd = random.Random(1)
    sets = [
        ("IPv4 /32", 1, [make_key(1, rnd.getrandbits(32), 32) for _ in range(500_000 // scale)]),
        ("IPv4 /24", 1, [make_key(1, rnd.getrandbits(32), 24) for _ in range(500_000 // scale)]),
        ("IPv6 /128", 2, [make_key(2, rnd.getrandbits(128), 128) for _ in range(200_000 // scale)]),
    ]
    xdec, sdec = exabgp_decoder(), scapy_decoder()
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs; "
          f"4096-byte UPDATEs, one attribute set")
    head = (f"{'set':<10} {'prefixes':>9} {'msgs':>5} {'encode/s':>10} {'decode/s':>10} "
            f"{'exabgp/s':>10} {'scapy/s':>9} {'vs exabgp':>9} {'vs scapy':>9}")
    print(head)
    print("-" * len(head))
    tot = {"n": 0, "enc": 0.0, "dec": 0.0}
    for name, afi, keys in sets:
        enc_t, msgs = best(lambda: build_updates(afi, keys, ATTRS, DEFAULT_CONTEXT, NH6))
        stream = b"".join(msgs)
        clear_intern_cache()
        dec_t, got = best(lambda: speakerd_decode(stream, afi))
        assert got == len(keys), (got, len(keys))
        per = len(keys) // len(msgs)
        dec_rate, enc_rate = len(keys) / dec_t, len(keys) / enc_t
        if afi == 1:
            tot["n"] += len(keys)
            tot["enc"] += enc_t
            tot["dec"] += dec_t
        xr = sr = None
        if xdec:
            part = sample(msgs, per, args.exabgp_sample)
            t, n = best(lambda: xdec(part), 1)
            xr = n / t
        if sdec:
            part = sample(msgs, per, args.scapy_sample)
            t, n = best(lambda: sdec(part), 1)
            sr = n / t

        def fmt(x, unit=1e6, suffix="M"):
            return f"{x / unit:.2f}{suffix}" if x else "-"
        print(f"{name:<10} {len(keys):>9} {len(msgs):>5} {fmt(enc_rate):>10} {fmt(dec_rate):>10} "
              f"{fmt(xr, 1e3, 'k'):>10} {fmt(sr, 1e3, 'k'):>9} "
              f"{(f'{dec_rate / xr:.0f}x' if xr else '-'):>9} {(f'{dec_rate / sr:.0f}x' if sr else '-'):>9}")
    print(f"IPv4 total: {tot['n']} prefixes decoded in {tot['dec'] * 1e3:.0f} ms "
          f"({tot['n'] / tot['dec'] / 1e6:.2f}M/s), encoded in {tot['enc'] * 1e3:.0f} ms "
          f"({tot['n'] / tot['enc'] / 1e6:.2f}M/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
