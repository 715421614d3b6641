"""A steady, bounded UDP flow and a receiver that counts it (run inside lab namespaces).

    python -m tests.interop.udpflow send DST PORT --rate PPS --seconds S --flows N
        sends ``rate`` datagrams a second for ``seconds`` seconds, spread round-robin over
        ``flows`` source ports (so an L4-hashing ECMP router splits them); prints
        ``{"sent": N}`` when done.  Each datagram carries its sequence number.
    python -m tests.interop.udpflow recv PORT --out FILE
        counts the datagrams it receives; on SIGTERM it reads what is already queued,
        writes ``{"received": N, "first": seq, "last": seq}`` to FILE and exits.

A packet is lost when it was sent and no receiver counted it.  Only the namespaces the
lab made are ever addressed.
"""
from __future__ import annotations

import argparse
import json
import signal
import socket
import struct
import sys
import time

_SEQ = struct.Struct("!Q")


def send(dst: str, port: int, rate: float, seconds: float, flows: int) -> int:
    socks = []
    for _ in range(flows):
        s = socket.socket(socket.AF_INET6 if ":" in dst else socket.AF_INET, socket.SOCK_DGRAM)
        s.setblocking(False)
        socks.append(s)
    total = int(rate * seconds)
    start = time.monotonic()
    sent = 0
    for seq in range(total):
        due = start + seq / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)  # pacing of the generator itself, not synchronisation
        try:
            socks[seq % flows].sendto(_SEQ.pack(seq) + b"x" * 56, (dst, port))
            sent += 1
        except (BlockingIOError, ConnectionRefusedError, OSError):
            pass  # an ICMP error of an earlier datagram surfaces here; this one is counted as not sent
    return sent


def recv(port: int, out: str) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind(("0.0.0.0", port))
    count = 0
    first = last = None
    stopping = False

    def on_term(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_term)
    s.settimeout(0.2)
    while True:
        try:
            data = s.recv(2048)
        except socket.timeout:
            if stopping:
                break
            continue
        except InterruptedError:
            continue
        if len(data) >= 8:
            seq = _SEQ.unpack_from(data)[0]
            count += 1
            first = seq if first is None else min(first, seq)
            last = seq if last is None else max(last, seq)
        if stopping:
            s.setblocking(False)
            try:
                while True:
                    data = s.recv(2048)
                    count += 1
            except BlockingIOError:
                break
    with open(out, "w") as f:
        json.dump({"received": count, "first": first, "last": last}, f)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="udpflow")
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("send")
    a.add_argument("dst")
    a.add_argument("port", type=int)
    a.add_argument("--rate", type=float, default=1000)
    a.add_argument("--seconds", type=float, default=10)
    a.add_argument("--flows", type=int, default=16)
    b = sub.add_parser("recv")
    b.add_argument("port", type=int)
    b.add_argument("--out", required=True)
    ns = p.parse_args(argv)
    if ns.cmd == "send":
        print(json.dumps({"sent": send(ns.dst, ns.port, ns.rate, ns.seconds, ns.flows)}), flush=True)
    else:
        recv(ns.port, ns.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
