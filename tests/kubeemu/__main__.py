"""``python -m tests.kubeemu --listen HOST:PORT [--state FILE]``: serve the emulator until SIGTERM/SIGINT.

With ``--state`` the objects (and the resourceVersion counter) are read at start and written at stop,
so an emulator stopped and started again serves the same objects; without it, it starts empty.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import sys

from .server import Emulator


def parse_listen(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


async def serve(args: argparse.Namespace) -> None:
    host, port = parse_listen(args.listen)
    emu = Emulator(host, port, history=args.history, bookmark_interval=args.bookmark_interval,
                   state_file=args.state, rv_start=args.rv_start)
    # A restored state is hundreds of thousands of long-lived dicts: keep the cyclic GC from
    # walking them on every collection (they are never garbage while the server runs).
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await emu.start()
    print(f"kubeemu listening on {emu.url}", flush=True)
    await stop.wait()
    await emu.stop()


def run_loop(coro) -> None:
    """On uvloop where it is installed (the test extra has it): the emulator plays the API server of
    a 20-node cluster on the machine that also runs the nodes, and libuv's loop and transports cost
    about half of asyncio's per request and per watch write; asyncio's loop otherwise."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)
        return
    uvloop.run(coro)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.kubeemu", description=__doc__)
    p.add_argument("--listen", default="127.0.0.1:8080", help="HOST:PORT (port 0: any free port)")
    p.add_argument("--state", help="state file: read at start, written at stop")
    p.add_argument("--history", type=int, default=10_000, help="events kept for watch resumption")
    p.add_argument("--bookmark-interval", type=float, default=5.0, help="seconds between BOOKMARKs (0: none)")
    p.add_argument("--rv-start", type=int, default=0, help="first resourceVersion counter value when empty")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr)
    run_loop(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
