"""A fixed BGP sender for the receive benchmark: replays a pre-built UPDATE stream.

Passive: listens on ADDR:179, answers the receiver's OPEN with its own
(4-octet AS, IPv4 unicast, no extended messages: 4096-byte UPDATEs), and as
soon as the session is Established writes every pre-built UPDATE with one
``sendall`` per 1 MB, then an End-of-RIB, then only answers KEEPALIVEs until
killed.  The stream is built by speakerd's own encoder before the socket is
opened, so the sender costs the receiver nothing but the TCP stream.

Prints one JSON line per event (``listening``, ``established``, ``sent``)
with wall-clock times for the harness.

    python bench/blaster.py --listen 198.18.1.1 --asn 65001 -n 1000000
"""
from __future__ import annotations

import argparse
import json
import socket
import struct
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from speakerd.wire.builder import build_updates, end_of_rib  # noqa: E402
from speakerd.wire.capabilities import DEFAULT_CONTEXT, Multiprotocol  # noqa: E402
from speakerd.wire.constants import AFI, SAFI  # noqa: E402
from speakerd.wire.framing import Framer, encode  # noqa: E402
from speakerd.wire.messages import Keepalive, Open  # noqa: E402
from speakerd.wire.update import PathAttributes  # noqa: E402

BASE = 20 << 24  # 20.0.0.0/8: the received prefixes never overlap the advertised ones


def stream(n: int, asn: int, next_hop: int) -> bytes:
    attrs = PathAttributes(origin=0, as_path=((2, (asn,)),), next_hop=next_hop)
    keys = [((BASE + i) << 8) | 32 for i in range(n)]
    return b"".join(build_updates(AFI.IPV4, keys, attrs, DEFAULT_CONTEXT))


def emit(event: str, **kw) -> None:
    print(json.dumps({"event": event, "t": time.time(), **kw}), flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--listen", required=True, help="local address to listen on (inside the namespace)")
    ap.add_argument("--asn", type=int, default=65001)
    ap.add_argument("-n", type=int, required=True, help="number of /32 prefixes")
    args = ap.parse_args()
    addr = struct.unpack("!I", socket.inet_aton(args.listen))[0]
    data = stream(args.n, args.asn, addr)
    emit("built", bytes=len(data))
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((args.listen, 179))
    srv.listen(4)
    emit("listening")
    conn, peer = srv.accept()
    srv.close()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    caps = (Multiprotocol(AFI.IPV4, SAFI.UNICAST),)
    conn.sendall(encode(Open.build(args.asn, 180, addr, caps)) + encode(Keepalive()))
    framer = Framer()
    got_open = got_ka = False
    while not (got_open and got_ka):
        chunk = conn.recv(65536)
        if not chunk:
            emit("closed")
            return 1
        for mtype, _body in framer.feed(chunk):
            if mtype == 1:
                got_open = True
            elif mtype == 4 and got_open:
                got_ka = True
            elif mtype == 3:
                emit("notification", body=bytes(_body).hex())
                return 1
    emit("established", peer=peer[0])
    mv = memoryview(data)
    for off in range(0, len(mv), 1 << 20):
        conn.sendall(mv[off:off + (1 << 20)])
    conn.sendall(end_of_rib())
    emit("sent", bytes=len(data))
    last_ka = time.monotonic()
    conn.settimeout(1.0)
    while True:
        try:
            chunk = conn.recv(65536)
        except socket.timeout:
            chunk = b"."
        if not chunk:
            emit("closed")
            return 0
        if time.monotonic() - last_ka > 30:
            conn.sendall(encode(Keepalive()))
            last_ka = time.monotonic()


if __name__ == "__main__":
    sys.exit(main())
