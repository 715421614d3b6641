"""The data path on kubectl-shaped input: bare parse vs check vs start -> FRR holds all; RSS; one change -> UPDATE.

For each N and each input shape (YAML or JSON; one ``kind: List`` or one document
per Service), all in one run, side by side:

* bare parse: the chosen parser alone on the same Service bytes (yaml-rs
  ``loads`` of the file; for JSON, orjson ``loads`` of the List, or of the same
  documents joined into one array), in a fresh process, with its peak RSS;
* ``speakerd check -c DIR``: wall time and peak RSS (wait4);
* ``speakerd run`` in a namespace -> FRR (bgpd in another namespace) holds all N
  routes: from just before the process is spawned to the first poll that sees N;
  the daemon's peak RSS (VmHWM) and its RSS once settled; the RSS of an idle
  daemon (the same MetalLB objects, no Service) gives the growth per Service;
* one Service changed: its ``status.loadBalancer.ingress`` IP is changed and the
  file replaced (rename, as editors and ConfigMaps do); from just before the
  rename to the first UPDATE (BGP payload > 19 bytes) tcpdump sees on the
  receiver side; repeated, p50/p99 (max) reported; also from just after the
  rename returned (the kernel dropping the replaced file's pages is the
  writer's cost, tens of ms for a large file on a loaded machine), and the
  daemon's CPU seconds per change.

CPU seconds (user+system) beside every wall time, and the 1-minute load average
when each row was measured (the machine is shared).

    sudo .venv/bin/python bench/datapath.py [--sizes 10000,100000] [--shapes yaml-list,...] [--changes 20] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import kubegen  # noqa: E402
from lab_extra import ROOT, Usage, netlab, peak_rss, poll  # noqa: E402
from peers import FrrD  # noqa: E402

SENDER, RECEIVER = "198.18.1.1", "198.18.1.2"  # the first link of a netlab.Lab
SHAPES = ("yaml-list", "yaml-docs", "json-list", "json-docs")
PY = sys.executable

BARE = r"""
import sys, time, resource
data = open(sys.argv[1], 'rb').read()
t = time.perf_counter()
if sys.argv[2] == 'yaml':
    import yaml_rs
    r = yaml_rs.loads(data.decode(), parse_datetime=False)
else:
    import orjson
    r = orjson.loads(data)
dt = time.perf_counter() - t
ru = resource.getrusage(resource.RUSAGE_SELF)
print(dt, ru.ru_maxrss * 1024)
"""


# Linux carries a process's peak RSS across exec, so a child forked from this (large) process
# would report ours: a small launcher forks the measured command and reports its wait4 figures.
LAUNCH = r"""
import os, sys, time
t = time.monotonic()
pid = os.posix_spawnp(sys.argv[1], sys.argv[1:], os.environ)
_, status, ru = os.wait4(pid, 0)
print("RUSAGE", time.monotonic() - t, ru.ru_maxrss * 1024, os.waitstatus_to_exitcode(status),
      ru.ru_utime + ru.ru_stime, file=sys.stderr)
"""


def run_rusage(argv: list[str], timeout: float = 3600) -> tuple[float, int, int, str, float]:
    """(wall seconds, peak RSS bytes, exit code, stdout, CPU seconds) of a child process."""
    p = subprocess.run([PY, "-c", LAUNCH, *argv], capture_output=True, text=True, cwd=ROOT, timeout=timeout)
    line = [x for x in p.stderr.splitlines() if x.startswith("RUSAGE ")][-1].split()
    return float(line[1]), int(line[2]), int(line[3]), p.stdout, float(line[4])


def write_inputs(d: Path, n: int, shape: str, peer: str) -> tuple[Path, Path, list[dict]]:
    """The config dir (MetalLB objects + the Services file) and a bare-parse file of the same Service bytes."""
    fmt, form = shape.split("-")
    cfg = d / "cfg"
    cfg.mkdir(parents=True, exist_ok=True)
    (cfg / "metallb.yaml").write_text(kubegen.config_yaml(peer, 65001, 65002, hold="9s"))
    svcs = kubegen.services(n, seed=7)
    text = kubegen.render(svcs, fmt, form)
    svc_file = cfg / f"services.{fmt}"
    svc_file.write_text(text)
    bare = svc_file
    if fmt == "json" and form == "docs":  # orjson parses one value: the same documents as one array
        bare = d / "bare.json"
        bare.write_text("[" + ",".join(json.dumps(o, indent=4) for o in svcs) + "]")
    return cfg, bare, svcs


def update_capture(lab, rcv, dev: str):
    filt = (f"src host {SENDER} and tcp and "
            "(ip[2:2] - ((ip[0]&0xf)<<2) - ((tcp[12]&0xf0)>>2)) > 19")
    p = lab.spawn(rcv, "tcpdump", ["tcpdump", "-i", dev, "-n", "-tt", "--immediate-mode", "-l", filt])
    poll(lambda: "listening on" in p.log_text(), 10, 0.02)
    return p


def capture_times(p) -> list[float]:
    out = []
    for line in p.log_text().splitlines():
        head = line.split(" ", 1)[0]
        if "." in head and head.replace(".", "").isdigit():
            out.append(float(head))
    return out


def daemon(lab, ns, cfg: Path, name: str, watch: bool):
    sd = netlab.Speakerd(ns, cfg, "bench", socket=cfg.parent / f"{name}.sock",
                         extra_args=("--log-level", "warning", "--watch", "1" if watch else "0"), start=False)
    return sd


def e2e(n: int, shape: str, cfg: Path, svcs: list[dict], changes: int) -> dict:
    fmt, form = shape.split("-")
    out: dict = {}
    with netlab.Lab(f"bench-dp-{n // 1000}k") as lab:
        snd, rcv = lab.ns("snd"), lab.ns("rcv")
        link = lab.link(snd, rcv)
        frr = FrrD(rcv, lab.subdir("rcv-frr"), RECEIVER, 65002, [(SENDER, 65001)])
        sd = daemon(lab, snd, cfg, "sd", watch=True)
        t0 = time.time()
        sd.start(timeout=600)
        poll(lambda: frr.count(SENDER) >= n, 600 + n / 100, 0.05)
        out["e2e"] = time.time() - t0
        pid = sd.proc.pid
        out["e2e_cpu"] = Usage.of(pid).cpu
        out["e2e_load"] = os.getloadavg()[0]
        out["peak_rss"] = peak_rss(pid)
        time.sleep(3)  # settle (the measurement, not a test)
        out["rss"] = Usage.of(pid).rss
        # one Service changed -> UPDATE on the wire
        cap = update_capture(lab, rcv, link.dev(rcv))
        svc_file = cfg / f"services.{fmt}"
        # the two versions of the file: the Service in the middle with its IP, and with another one
        text_a = svc_file.read_bytes()
        ip = svcs[n // 2]["status"]["loadBalancer"]["ingress"][0]["ip"]
        token = (f'"ip": "{ip}"' if fmt == "json" else f"ip: {ip}\n").encode()
        assert text_a.count(token) == 1
        text_b = text_a.replace(token, token.replace(ip.encode(), kubegen.service_ip(n + 1).encode()))
        lat, after, cpu = [], [], []
        loads = [os.getloadavg()[0]]
        for k in range(changes):
            tmp = cfg.parent / f"next.{fmt}"
            tmp.write_bytes(text_b if k % 2 == 0 else text_a)
            seen = len(capture_times(cap))
            cpu0 = Usage.of(pid).cpu
            t_change = time.time()
            os.replace(tmp, svc_file)
            t_renamed = time.time()
            poll(lambda: len(capture_times(cap)) > seen, 60, 0.005)
            time.sleep(0.5)  # let the change settle before the next one (the measurement, not a test)
            cpu.append(Usage.of(pid).cpu - cpu0)
            times = capture_times(cap)[seen:]
            lat.append(times[0] - t_change)
            after.append(times[0] - t_renamed)
        loads.append(os.getloadavg()[0])

        def pct(v: list[float], q: float) -> float:
            if not v:  # --changes 0: RSS and start-up only
                return float("nan")
            v = sorted(v)
            return v[min(len(v) - 1, int(round(q * (len(v) - 1))))]
        out["update_p50"], out["update_p99"] = pct(lat, 0.5), pct(lat, 0.99)
        out["after_rename_p50"], out["after_rename_p99"] = pct(after, 0.5), pct(after, 0.99)
        out["change_cpu_p50"] = pct(cpu, 0.5)  # of the whole daemon over 0.5 s+, in 10 ms ticks
        out["change_load"] = (min(loads), max(loads))
        out["changes"] = len(lat)
        sd.stop()
    return out


def idle_rss(d: Path) -> int:
    cfg = d / "idle"
    cfg.mkdir(parents=True, exist_ok=True)
    (cfg / "metallb.yaml").write_text(kubegen.config_yaml(RECEIVER, 65001, 65002, hold="9s"))
    with netlab.Lab("bench-dp-idle") as lab:
        snd, rcv = lab.ns("snd"), lab.ns("rcv")
        lab.link(snd, rcv)
        FrrD(rcv, lab.subdir("rcv-frr"), RECEIVER, 65002, [(SENDER, 65001)])
        sd = daemon(lab, snd, cfg, "idle", watch=True)
        sd.start(timeout=60)
        time.sleep(3)
        rss = Usage.of(sd.proc.pid).rss
        sd.stop()
    return rss


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000")
    ap.add_argument("--shapes", default=",".join(SHAPES))
    ap.add_argument("--changes", type=int, default=20)
    ap.add_argument("--no-e2e", action="store_true")
    ap.add_argument("--json")
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="speakerd-dp-") as tmp:
        base = Path(tmp)
        idle = None if a.no_e2e else idle_rss(base)
        if idle:
            print(f"idle daemon RSS {idle / 2**20:.1f} MiB", flush=True)
        for n in [int(x) for x in a.sizes.split(",")]:
            for shape in a.shapes.split(","):
                d = base / f"{shape}-{n}"
                cfg, bare, svcs = write_inputs(d, n, shape, RECEIVER)
                size = (cfg / f"services.{shape.split('-')[0]}").stat().st_size
                load0 = os.getloadavg()[0]
                bt, brss, _, bout, _ = run_rusage([PY, "-c", BARE, str(bare), shape.split("-")[0]])
                bare_s = float(bout.split()[0])
                ct, crss, code, _, ccpu = run_rusage([PY, "-m", "speakerd.cli", "check", "-c", str(cfg)])
                row = {"n": n, "shape": shape, "bytes": size, "bare": bare_s, "bare_rss": brss,
                       "check": ct, "check_cpu": ccpu, "check_rss": crss, "check_exit": code,
                       "check_load": (load0, os.getloadavg()[0])}
                if not a.no_e2e:
                    row.update(e2e(n, shape, cfg, svcs, a.changes))
                    row["rss_per_service"] = (row["rss"] - idle) / n if idle else None
                rows.append(row)
                msg = (f"N={n:>7,} {shape:9} {size / 2**20:6.1f} MiB  bare {bare_s:6.2f} s ({brss / 2**20:5.0f} MiB)  "
                       f"check {ct:6.2f} s cpu {ccpu:6.2f} s ({crss / 2**20:5.0f} MiB, exit {code}) "
                       f"[load {row['check_load'][0]:.1f}-{row['check_load'][1]:.1f}]")
                if "e2e" in row:
                    msg += (f"  start->FRR all {row['e2e']:6.2f} s cpu {row['e2e_cpu']:6.2f} s ({row['e2e'] / bare_s:4.1f}x bare)"
                            f" [load {row['e2e_load']:.1f}]  peak {row['peak_rss'] / 2**20:5.0f} MiB"
                            f"  +{row['rss_per_service']:.0f} B/Service  change->UPDATE p50 {row['update_p50'] * 1000:.0f} ms"
                            f" p99 {row['update_p99'] * 1000:.0f} ms, after the rename p50 {row['after_rename_p50'] * 1000:.0f}"
                            f" p99 {row['after_rename_p99'] * 1000:.0f} ms, cpu/change p50 {row['change_cpu_p50'] * 1000:.0f} ms"
                            f" ({row['changes']} changes) [load {row['change_load'][0]:.1f}-{row['change_load'][1]:.1f}]")
                print(msg, flush=True)
                del svcs
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
