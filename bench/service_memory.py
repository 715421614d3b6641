"""What a Service costs in memory on the daemon's ingest path, measured in-process.

N kubectl-shaped Services (``kubegen``, the same generator as bench/datapath.py) are
written to a config directory with the MetalLB objects, then read the way
``speakerd run -c DIR`` reads them at start (``Speaker._ingest`` and ``_apply``): the
file source's batches, read in a worker thread, into the store (garbage collection paused, MetalLB objects
settled after the last batch), the file announce rules, the planner's rebuild, the
heap handed back (``Speaker._release_memory``).  Not
included: the sessions' Adj-RIB-Out (bench/datapath.py measures the whole daemon).

Each measurement runs in a fresh process; each is compared with the same steps on
the same MetalLB objects and no Service (an idle daemon):

* RSS growth per Service: /proc/self/statm after the steps, minus the idle run's;
* live bytes per Service (tracemalloc, a separate run: tracing costs memory itself),
  grouped by the source line that allocated them (a string made by the parser is
  charged to the line that called it) and, by a walk of the objects each structure
  holds (every object counted once, for the first holder listed), by holder.

    .venv/bin/python bench/service_memory.py [--n 10000] [--shapes yaml-list,json-list] [--top 15] [--runs 3]
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

PAGE = os.sysconf("SC_PAGE_SIZE")
SHAPES = ("yaml-list", "yaml-docs", "json-list", "json-docs")


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def write_config(d: Path, n: int, shape: str) -> Path:
    import kubegen
    fmt, form = shape.split("-")
    d.mkdir(parents=True, exist_ok=True)
    (d / "metallb.yaml").write_text(kubegen.config_yaml("198.18.1.2", 65001, 65002, hold="9s"))
    if n:
        (d / f"services.{fmt}").write_text(kubegen.render(kubegen.services(n, seed=7), fmt, form))
    return d


def ingest(cfg: Path) -> dict:
    """The daemon's start-up path (speaker.Speaker._init_feed, _ingest, _apply), without sockets."""
    from speakerd import heap
    from speakerd.config.gcpause import gc_paused
    from speakerd.policy.fileannounce import FileAnnouncer
    from speakerd.policy.planner import Planner
    from speakerd.sources.files import FileSource
    from speakerd.store import Changes, Store

    source = FileSource([str(cfg)])
    store = Store(uids=False)  # as Speaker._init_feed
    announcer = FileAnnouncer(store, "bench-node")
    planner = Planner("bench-node", announcer.withheld)
    planner.endpoints = announcer.announcer.endpoints
    changes = Changes()
    batches = source.batches(500)  # Speaker.INGEST_BATCH
    with gc_paused(), ThreadPoolExecutor(1) as worker:  # read in a worker thread, as the daemon does
        while (batch := worker.submit(next, batches, None).result()) is not None:
            changes.merge(store.apply(batch, settle=False))
            del batch
        changes.merge(store.settle())
    announcer.apply(changes)
    del changes
    with gc_paused():
        deltas = planner.rebuild(store.config(), {})
    del deltas
    heap.release()  # Speaker._release_memory after the start-up
    return {"source": source, "store": store, "announcer": announcer, "planner": planner}


def service_fields() -> list[str]:
    from speakerd.config.model import Service
    return [f for cls in Service.__mro__ for f in getattr(cls, "__slots__", ())]


def holders(held: dict) -> dict[str, int]:
    """Bytes reachable from each structure, each object counted once (first holder wins);
    objects every run has (modules, classes, interned constants) are not reached."""
    seen: set[int] = set()
    out: dict[str, int] = {}
    store, planner, source = held["store"], held["planner"], held["source"]
    roots = [
        ("store: Service keys", lambda: list(store.services)),
        ("store: Service objects", lambda: list(store.services.values())),
        *((f"store: Service.{f}", lambda f=f: [getattr(s, f) for s in store.services.values()])
          for f in service_fields()),
        ("store: services dict", lambda: [store.services]),
        ("planner: planned", lambda: [planner.planned]),
        ("planner: route tables", lambda: list(planner.tables.values())),
        ("planner: allocations, notes", lambda: [planner.allocations, planner.notes]),
        ("announcer", lambda: [held["announcer"]]),
        ("file source", lambda: [source]),
        ("store: rest", lambda: [store]),
    ]
    skip = (type, type(sys), type(len))
    alive = []  # every root made here stays alive: ids in ``seen`` are not reused
    for name, get in roots:
        total = 0
        alive.append(get())
        seen.add(id(alive[-1]))  # the list made to hold the root, not the root
        stack = list(alive[-1])
        if name in ("store: Service keys", "store: Service objects"):  # the objects alone
            for o in stack:
                if id(o) not in seen:
                    seen.add(id(o))
                    total += sys.getsizeof(o)
            out[name] = total
            continue
        while stack:
            o = stack.pop()
            if id(o) in seen or isinstance(o, skip):
                continue
            seen.add(id(o))
            total += sys.getsizeof(o)
            if type(o) in (str, bytes, int, float, bool) or o is None:
                continue
            stack.extend(gc.get_referents(o))
        out[name] = total
    return out


def child(cfg: str, mode: str, top: int) -> None:
    import speakerd.policy.planner  # noqa: F401  # imports before the first figure
    import speakerd.sources.files  # noqa: F401
    if mode == "live":
        import tracemalloc
        tracemalloc.start(1)
        before = tracemalloc.take_snapshot()
    base = rss()
    held = ingest(Path(cfg))
    result: dict = {"rss": rss() - base, "services": len(held["store"].services)}
    if mode == "live":
        snap = tracemalloc.take_snapshot()
        stats = snap.compare_to(before, "lineno")
        result["live"] = sum(s.size_diff for s in stats)
        result["lines"] = [(str(s.traceback[0]), s.size_diff, s.count_diff) for s in stats[:top]]
        tracemalloc.stop()
        result["holders"] = holders(held)
    print(json.dumps(result))


def run_child(cfg: Path, mode: str, top: int) -> dict:
    argv = [sys.executable, __file__, "--child", str(cfg), "--mode", mode, "--top", str(top)]
    p = subprocess.run(argv, capture_output=True, text=True, check=True)
    return json.loads(p.stdout.splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--shapes", default="yaml-list,json-list")
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--runs", type=int, default=1, help="RSS runs per shape (the median is shown)")
    ap.add_argument("--no-live", action="store_true", help="RSS only, no tracemalloc run")
    ap.add_argument("--child")
    ap.add_argument("--mode", default="rss")
    a = ap.parse_args()
    if a.child:
        child(a.child, a.mode, a.top)
        return 0
    with tempfile.TemporaryDirectory(prefix="speakerd-mem-") as tmp:
        idle = write_config(Path(tmp) / "idle", 0, "yaml-list")
        base_rss = sorted(run_child(idle, "rss", a.top)["rss"] for _ in range(a.runs))[a.runs // 2]
        base_live = None if a.no_live else run_child(idle, "live", a.top)
        print(f"load {open('/proc/loadavg').read().split()[0]}; idle ingest: RSS +{base_rss / 1024:.0f} KiB", flush=True)
        for shape in a.shapes.split(","):
            cfg = write_config(Path(tmp) / shape, a.n, shape)
            rs = sorted(run_child(cfg, "rss", a.top)["rss"] for _ in range(a.runs))
            n = a.n
            print(f"N={n} {shape}: RSS growth / Service {(rs[len(rs) // 2] - base_rss) / n:.0f} B"
                  f" (runs: {', '.join(f'{(r - base_rss) / n:.0f}' for r in rs)})", flush=True)
            if a.no_live:
                continue
            live = run_child(cfg, "live", a.top)
            print(f"  live (tracemalloc) / Service {(live['live'] - base_live['live']) / n:.0f} B; by line:")
            for where, size, count in live["lines"]:
                print(f"    {size / n:7.1f} B {count / n:6.2f} blocks  {where}")
            print("  by holder (bytes reachable / Service):")
            for name, size in live["holders"].items():
                per = (size - base_live["holders"].get(name, 0)) / n
                if abs(per) >= 0.5:
                    print(f"    {per:7.1f} B  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
