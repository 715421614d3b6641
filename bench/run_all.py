"""Run every benchmark scenario and regenerate docs/benchmarks.md.

    sudo .venv/bin/python bench/run_all.py [--quick] [--only advertise,receive,...]

Each scenario is its own script (bench/<name>.py) writing JSON; this runs
them one after another, then rewrites the generated blocks of
docs/benchmarks.md (``<!-- generated:NAME -->`` … ``<!-- /generated:NAME -->``)
with tables, one PNG plot per scenario under docs/img/, the machine
description, daemon versions and the git commit measured.  Hand-written text
outside those blocks is kept.  bench/bfd_detect.py rewrites its own section.
Full run of the original six: ~20 min on 2 vCPUs (19.7 min measured); --quick: ~3 min.

The other benches (:data:`EXTRA`: datapath, controller, kube_emulator, cluster_api, kube_clients,
kube_endpoint_update, drain, cluster) run with their own size options, full or ``--quick``, and
their output goes verbatim into a generated block each. ``datapath``, ``kube_endpoint_update``,
``drain`` and ``cluster`` need root and network namespaces (FRR for the last three; ``cluster``
is 20 nodes and two ToRs, ~15 min at full size); without root they are reported as not run.
``--quick`` leaves out the heavy ones (``kube_clients``, ``drain``, ``cluster``) unless named in
``--only``; the full run takes about an hour more than the six.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from lab_extra import ROOT, git_commit, machine, versions  # noqa: E402

DOC = ROOT / "docs" / "benchmarks.md"
IMG = ROOT / "docs" / "img"
SCENARIOS = ("advertise", "receive", "codec", "reaction", "many_peers", "bfd")


@dataclass(frozen=True)
class Extra:
    """One more bench: its arguments at full size and in --quick, a time limit, what it needs."""
    full: tuple[str, ...]
    quick: tuple[str, ...] | None  # None: not run by --quick unless named in --only
    timeout: float
    root: bool = False  # network namespaces (and FRR/nftables where the bench uses them)


EXTRA: dict[str, Extra] = {
    "datapath": Extra(("--sizes", "10000,100000"), ("--sizes", "1000", "--changes", "5"), 2400, root=True),
    "controller": Extra(("1000", "10000"), ("300",), 1800),
    "kube_emulator": Extra((), ("--objects", "2000", "--writes", "4000", "--http-writes", "600"), 900),
    "cluster_api": Extra(("--nodes", "20", "--rate", "50", "--seconds", "30"),
                         ("--nodes", "5", "--rate", "50", "--seconds", "5"), 600),
    "kube_clients": Extra(("--services", "100000"), None, 3600),
    "kube_endpoint_update": Extra(("--services", "10000", "--changes", "100"),
                                  ("--services", "300", "--changes", "20"), 1800, root=True),
    "drain": Extra(("--rounds", "3"), None, 1200, root=True),
    "cluster": Extra(("--nodes", "20"), None, 3600, root=True),
}


def run(argv: list[str], timeout: float) -> tuple[str, float]:
    t = time.monotonic()
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                       stdin=subprocess.DEVNULL)
    out = p.stdout + (f"\n[stderr]\n{p.stderr.strip()}" if p.stderr.strip() else "")
    if p.returncode != 0:
        out += f"\n[exit {p.returncode}]"
    print(out, flush=True)
    return out, time.monotonic() - t


def fmt_s(x: float | None) -> str:
    if x is None or x != x:
        return "—"
    return f"{x * 1000:.0f} ms" if x < 1 else f"{x:.2f} s"


def mib(x: float | None) -> str:
    return "—" if not x or x != x else f"{x / 2**20:.0f} MiB"


# ---------------------------------------------------------------- tables and plots

def advertise_md(rows: list[dict]) -> str:
    out = ["| N | sender | first UPDATE → FRR holds all | end to end (start → FRR holds all) | sender CPU | sender RSS (peak) | runs (first→all) |",
           "|---|---|---|---|---|---|---|"]
    for n in sorted({r["n"] for r in rows}):
        group = [r for r in rows if r["n"] == n]
        ok = [r for r in group if r.get("first") is not None]
        best = min((r["first"] for r in ok), default=None)
        for r in group:
            if r.get("skipped") or r.get("error"):
                out.append(f"| {n:,} | {r['sender']} | {r.get('skipped') or 'failed'} | | | | |")
                continue
            ratio = f" ({r['first'] / best:.2f}x best)" if best else ""
            out.append(f"| {n:,} | {r['sender']} | {fmt_s(r['first'])}{ratio} | {fmt_s(r['e2e'])} | "
                       f"{r['cpu']:.2f} s | {mib(r['rss'])} ({mib(r.get('peak_rss'))}) | {r.get('all_first')} |")
    return "\n".join(out)


def receive_md(rows: list[dict]) -> str:
    out = ["| N | receiver | Established → holds all | receiver CPU | RSS | RSS growth / prefix | runs |",
           "|---|---|---|---|---|---|---|"]
    for r in rows:
        if r.get("error"):
            out.append(f"| {r['n']:,} | {r['receiver']} | failed | | | | |")
            continue
        out.append(f"| {r['n']:,} | {r['receiver']} | {fmt_s(r['seconds'])} | {r['cpu']:.2f} s | {mib(r['rss'])} | "
                   f"{r['bytes_per_prefix']:.0f} B | {r['all']} |")
    return "\n".join(out)


def reaction_md(data: dict) -> str:
    names = {"add_wire": "add → UPDATE on the wire", "add_frr": "add → FRR has the route",
             "del_wire": "remove → UPDATE on the wire", "del_frr": "remove → FRR dropped the route"}
    out = [f"{data['services']:,} services; times from just before the reload request.", "",
           "| what | n | p50 | p99 | min | max |", "|---|---|---|---|---|---|"]
    for r in data["rows"]:
        out.append(f"| {names.get(r['what'], r['what'])} | {r['n']} | {r['p50']:.1f} ms | {r['p99']:.1f} ms | "
                   f"{r['min']:.1f} ms | {r['max']:.1f} ms |")
    return "\n".join(out)


def peers_md(r: dict) -> str:
    return ("| sessions | prefixes each | start → all received | established after window | "
            "steady CPU (keepalives, % of one core) | RSS | reps |\n|---|---|---|---|---|---|---|\n"
            f"| {r['peers']} | {r['routes']:,} | {fmt_s(r['converge'])} ({r.get('converged_runs', '?')}/{r['reps']} runs converged) | {r['established']} | "
            f"{r['cpu_pct']:.2f} % over {r['window']:.0f} s | {mib(r['rss'])} | {r['reps']} |")


def plots(results: dict, img_dir: Path = IMG) -> dict[str, str]:
    if not any(results.get(k) for k in ("advertise", "receive", "reaction", "many_peers")):
        return {}  # nothing to plot (matplotlib, of the bench extra, is not needed)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    IMG = img_dir
    IMG.mkdir(parents=True, exist_ok=True)
    made = {}
    adv = [r for r in results.get("advertise", []) if r.get("first") is not None]
    if adv:
        fig, ax = plt.subplots(figsize=(8, 4))
        sizes = sorted({r["n"] for r in adv})
        senders = sorted({r["sender"] for r in adv})
        w = 0.8 / len(senders)
        for i, s in enumerate(senders):
            xs = [j + i * w for j, n in enumerate(sizes) if any(r["sender"] == s and r["n"] == n for r in adv)]
            ys = [next(r["first"] for r in adv if r["sender"] == s and r["n"] == n) for n in sizes
                  if any(r["sender"] == s and r["n"] == n for r in adv)]
            ax.bar(xs, ys, w, label=s)
        ax.set_xticks([j + 0.4 - w / 2 for j in range(len(sizes))], [f"{n:,}" for n in sizes])
        ax.set_yscale("log")
        ax.set_ylabel("first UPDATE → FRR holds all (s)")
        ax.set_xlabel("IPv4 /32 prefixes")
        ax.legend()
        fig.tight_layout()
        fig.savefig(IMG / "advertise.png", dpi=90)
        plt.close(fig)
        made["advertise"] = "img/advertise.png"
    rx = [r for r in results.get("receive", []) if not r.get("error")]
    if rx:
        fig, ax = plt.subplots(figsize=(8, 4))
        sizes = sorted({r["n"] for r in rx})
        kinds = sorted({r["receiver"] for r in rx})
        w = 0.8 / len(kinds)
        for i, k in enumerate(kinds):
            pts = [(j, r["seconds"]) for j, n in enumerate(sizes) for r in rx if r["receiver"] == k and r["n"] == n]
            ax.bar([j + i * w for j, _ in pts], [y for _, y in pts], w, label=k)
        ax.set_xticks([j + 0.4 - w / 2 for j in range(len(sizes))], [f"{n:,}" for n in sizes])
        ax.set_yscale("log")
        ax.set_ylabel("Established → holds all (s)")
        ax.set_xlabel("IPv4 /32 prefixes received")
        ax.legend()
        fig.tight_layout()
        fig.savefig(IMG / "receive.png", dpi=90)
        plt.close(fig)
        made["receive"] = "img/receive.png"
    rea = results.get("reaction")
    if rea:
        fig, ax = plt.subplots(figsize=(8, 3.5))
        labels = [r["what"] for r in rea["rows"]]
        ax.bar([i - 0.2 for i in range(len(labels))], [r["p50"] for r in rea["rows"]], 0.4, label="p50")
        ax.bar([i + 0.2 for i in range(len(labels))], [r["p99"] for r in rea["rows"]], 0.4, label="p99")
        ax.axhline(20, color="red", linestyle="--", linewidth=1, label="target p99 to the wire")
        ax.set_xticks(range(len(labels)), labels)
        ax.set_ylabel("ms")
        ax.legend()
        fig.tight_layout()
        fig.savefig(IMG / "reaction.png", dpi=90)
        plt.close(fig)
        made["reaction"] = "img/reaction.png"
    mp = results.get("many_peers")
    if mp:
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(8, 3))
        a1.bar(["start → all received"], [mp["converge"] if mp["converge"] == mp["converge"] else 0])
        a1.set_ylabel("s")
        a2.bar(["steady CPU"], [mp["cpu_pct"]])
        a2.axhline(5, color="red", linestyle="--", linewidth=1, label="target")
        a2.set_ylabel("% of one core")
        a2.legend()
        fig.suptitle(f"{mp['peers']} sessions x {mp['routes']:,} prefixes")
        fig.tight_layout()
        fig.savefig(IMG / "many_peers.png", dpi=90)
        plt.close(fig)
        made["many_peers"] = "img/many_peers.png"
    return made


# ---------------------------------------------------------------- the document

def replace_block(text: str, name: str, body: str, heading: str) -> str:
    start, end = f"<!-- generated:{name} -->", f"<!-- /generated:{name} -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    rx = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if rx.search(text):
        return rx.sub(lambda _m: block, text)
    return text.rstrip() + f"\n\n{heading}\n\n{block}\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer sizes and repetitions (~3 min)")
    ap.add_argument("--only", default=None, help="comma-separated subset of " + ",".join((*SCENARIOS, *EXTRA))
                    + " (default: all; with --quick all but " + ",".join(k for k, e in EXTRA.items() if e.quick is None)
                    + ")")
    ap.add_argument("--results", help="directory for the JSON results (default: a temporary one)")
    ap.add_argument("--doc", default=str(DOC), help="document to rewrite (default docs/benchmarks.md; plots go "
                    "to img/ beside it; another path leaves the BFD section of docs/benchmarks.md alone)")
    ap.add_argument("--args", action="append", default=[], metavar="NAME=ARGS",
                    help="arguments for one of " + ",".join(EXTRA) + " instead of its built-in sizes, e.g. "
                    "--args 'cluster=--nodes 10 --churn 30' (repeatable)")
    ap.add_argument("--render-only", action="store_true",
                    help="run nothing: rewrite the document from --results DIR of an earlier run")
    args = ap.parse_args()
    named = args.only is not None
    only = args.only.split(",") if named else [*SCENARIOS, *EXTRA]
    unknown = set(only) - set(SCENARIOS) - set(EXTRA)
    if unknown:
        ap.error(f"unknown bench(es): {', '.join(sorted(unknown))}")
    given: dict[str, tuple[str, ...]] = {}
    for item in args.args:
        name, sep, rest = item.partition("=")
        if not sep or name not in EXTRA:
            ap.error(f"--args {item!r}: NAME=ARGS with NAME one of {', '.join(EXTRA)}")
        given[name] = tuple(shlex.split(rest))
    doc = Path(args.doc)
    own_doc = doc.resolve() == DOC.resolve()
    q = ["--quick"] if args.quick else []
    py = sys.executable
    tmp = Path(args.results or tempfile.mkdtemp(prefix="speakerd-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    results: dict = {}
    texts: dict[str, str] = {}
    took: dict[str, float] = {}
    t_all = time.monotonic()
    commit = git_commit()  # what is measured: the tree as the run starts
    if args.render_only:
        results = json.loads((tmp / "results.json").read_text())
        saved = json.loads((tmp / "texts.json").read_text()) if (tmp / "texts.json").exists() else {}
        texts, took = saved.get("texts", {}), saved.get("took", {})
        commit = saved.get("commit", commit)
        only = []
    for name in only:
        print(f"==== {name}", flush=True)
        if name in ("advertise", "receive", "reaction", "many_peers"):
            js = tmp / f"{name}.json"
            texts[name], took[name] = run([py, str(HERE / f"{name}.py"), *q, "--json", str(js)], 1800)
            if js.exists():
                results[name] = json.loads(js.read_text())
        elif name == "codec":
            texts[name], took[name] = run([py, str(HERE / "codec.py"), *q], 900)
        elif name == "bfd":
            texts[name], took[name] = run([py, str(HERE / "bfd_detect.py"), "--rounds", "10" if args.quick else "20",
                                           *(["--write-docs"] if own_doc else [])], 600)
        elif name in EXTRA:
            e = EXTRA[name]
            argv = e.full if not args.quick else (e.quick if e.quick is not None else e.full)
            argv = given.get(name, argv)
            if args.quick and e.quick is None and not named and name not in given:
                print(f"{name}: not in --quick (name it in --only to run it at full size)")
                continue
            if e.root and os.geteuid() != 0:
                texts[name], took[name] = f"not run: needs root (network namespaces)", 0.0
                print(texts[name])
                continue
            try:
                out, took[name] = run([py, str(HERE / f"{name}.py"), *argv], e.timeout)
            except subprocess.TimeoutExpired:
                out, took[name] = f"[timed out after {e.timeout:.0f} s]", e.timeout
            stdout, _, rest = out.partition("\n[stderr]\n")  # its log lines stay in the console only
            failed = rest.rsplit("\n", 1)[-1] if rest.rstrip().endswith("]") and "[exit" in rest else ""
            texts[name] = (f"$ bench/{name}.py {' '.join(argv)}   (load average {os.getloadavg()[0]:.1f} at the end)\n"
                           + stdout.rstrip() + (f"\n{failed}" if failed else ""))
    total = sum(took.values()) if args.render_only else time.monotonic() - t_all
    if not args.render_only:
        (tmp / "results.json").write_text(json.dumps(results, indent=1))
        (tmp / "texts.json").write_text(json.dumps({"texts": texts, "took": took, "commit": commit}, indent=1))
    imgs = plots(results, doc.parent / "img")
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    m, v = machine(), versions()
    env = (f"Measured at commit `{commit}` on {m['nproc']} vCPU ({m['cpu']}), {m['memory']} RAM, "
           f"Linux {m['kernel']}; `bench/run_all.py{' --quick' if args.quick else ''}` took {total / 60:.1f} min "
           f"({', '.join(f'{k} {s:.0f} s' for k, s in took.items())}).\n\n"
           + "| software | version |\n|---|---|\n" + "\n".join(f"| {k} | {val} |" for k, val in v.items()))
    text = replace_block(text, "environment", env, "## Environment")

    def img(name: str) -> str:
        return f"\n\n![{name}]({imgs[name]})" if name in imgs else ""
    if "advertise" in results:
        text = replace_block(text, "advertise", advertise_md(results["advertise"]) + img("advertise"),
                             "## Advertise (bench/advertise.py)")
    if "receive" in results:
        text = replace_block(text, "receive", receive_md(results["receive"]) + img("receive"),
                             "## Receive (bench/receive.py)")
    if "codec" in texts:
        text = replace_block(text, "codec", "Latest `bench/codec.py` output:\n\n```\n" + texts["codec"].strip()
                             + "\n```", "## Codec (bench/codec.py)")
    if "reaction" in results:
        text = replace_block(text, "reaction", reaction_md(results["reaction"]) + img("reaction"),
                             "## Reaction (bench/reaction.py)")
    if "many_peers" in results:
        text = replace_block(text, "many_peers", peers_md(results["many_peers"]) + img("many_peers"),
                             "## Many peers (bench/many_peers.py)")
    for name in EXTRA:
        if name in texts:
            text = replace_block(text, f"run-{name}", f"Latest `bench/{name}.py` output (bench/run_all.py):\n\n```\n"
                                 + texts[name].strip() + "\n```", f"## bench/{name}.py: latest bench/run_all.py output")
    if "bfd" in texts and not own_doc:
        text = replace_block(text, "bfd", "```\n" + texts["bfd"].strip() + "\n```", "## BFD detection (bench/bfd_detect.py)")
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text)
    print(f"wrote {doc} ({total / 60:.1f} min); raw results in {tmp}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
