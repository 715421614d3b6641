"""`speakerd run --kubernetes` at scale: start -> FRR holds every Service, and EndpointSlice write -> UPDATE.

The lab of tests/interop/test_kubernetes_mode.py: the API emulator and speakerd
(node n1) in namespace ``s``, FRR in ``p``. ``--services`` LoadBalancer
Services shaped as ``kubectl get svc -o json`` returns them (bench/kubegen.py:
last-applied-configuration, labels, uid, managedFields, clusterIPs, nodePorts,
selector; externalTrafficPolicy Local; the address in status.loadBalancer.ingress,
from 100.64.0.0/10) and one EndpointSlice each as the endpointslice controller
writes it (ownerReferences, managed-by label, conditions, targetRef, zone,
managedFields), endpoint on n1, are put in the emulator's state file before it
starts (300k HTTP writes would only measure the emulator). Then speakerd starts:

- start -> the first full list is done (its log line), -> FRR holds every prefix
  (``show bgp ipv4 unicast summary json``, pfxRcd), speakerd's CPU seconds and
  peak RSS (VmHWM) at that moment, its RSS 5 s later (steady);
- then one Service's EndpointSlice is moved to n2 and back, ``--changes`` times.
  The API write is timed just before it is sent; tcpdump on speakerd's side of
  the link timestamps the UPDATE that withdraws (or announces) the prefix; the
  latency is the difference (one clock, one host). Whether FRR got it is read
  for that one prefix (``show bgp ipv4 unicast P/32 json``), not the whole table.

    sudo .venv/bin/python bench/kube_endpoint_update.py [--services 1000] [--changes 40] [--py-spy FILE]

``--py-spy FILE`` samples speakerd from its start until FRR holds all (py-spy,
collapsed stacks; not a dependency of speakerd: install it by hand to use this).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import kubegen  # noqa: E402
from speakerd.pcap import tcp_segments  # noqa: E402
from tests.cluster.kubeapi import KubeApi  # noqa: E402
from tests.interop.netlab import Lab, wait_for  # noqa: E402
from tests.interop.netlab_daemons import Frr, Neighbor  # noqa: E402
from tests.interop.test_kubernetes_mode import API_PORT, NS, kubeconfig  # noqa: E402

POOL = "100.64.0.0/10"  # kubegen.service_ip's range; only inside the lab's namespaces
TICK = os.sysconf("SC_CLK_TCK")


def cluster_state(n: int, seed: int = 1) -> tuple[bytes, dict, dict]:
    """The emulator's state file holding `n` Services and their EndpointSlices (endpoints on n1),
    and the first Service and its slice (the one the bench moves)."""
    import orjson
    rng = random.Random(seed)
    items = []
    rv = 1000
    for i in range(n):
        svc = kubegen.service(i, rng, kubegen.service_ip(i), traffic_policy="Local")
        eps = kubegen.endpoint_slice(svc, "n1", rng)
        for obj, storage in ((svc, "/services"), (eps, "discovery.k8s.io/endpointslices")):
            rv += 1
            obj["metadata"]["resourceVersion"] = str(rv)
            items.append({"storage": storage, "object": obj})
    return orjson.dumps({"resourceVersion": rv, "objects": items}), items[0]["object"], items[1]["object"]


def proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def proc_kib(pid: int, key: str) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key):
            return int(line.split()[1])
    return 0


def updates(pcap: Path, src: str) -> list[int]:
    """Timestamps (ns) of the segments from `src` that carry a BGP UPDATE."""
    import ipaddress
    out = []
    want = ipaddress.ip_address(src).packed
    with open(pcap, "rb") as f:
        for seg in tcp_segments(f):
            p = seg.payload
            if seg.src == want and len(p) >= 19 and p[:16] == b"\xff" * 16 and p[18] == 2:
                out.append(seg.ts_ns)
    return out


def py_spy(pid: int, path: str) -> subprocess.Popen:
    exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    return subprocess.Popen([exe, "record", "--pid", str(pid), "--format", "raw", "--rate", "50", "--nonblocking",
                             "-o", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def frr_has(frr: Frr, prefix: str) -> bool:
    """FRR's table holds `prefix` (one prefix asked, not the whole table read)."""
    return bool(frr.vtysh(f"show bgp ipv4 unicast {prefix} json").get("paths"))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--changes", type=int, default=40)
    ap.add_argument("--py-spy", metavar="FILE", help="sample speakerd from start to FRR holds all (collapsed stacks)")
    ap.add_argument("--py-spy-changes", metavar="FILE", help="sample speakerd during the endpoint moves")
    ap.add_argument("--keep-log", metavar="FILE", help="copy speakerd's log here")
    a = ap.parse_args()
    out: dict = {"services": a.services, "load_average_before": os.getloadavg()}
    t0 = time.monotonic()
    state, svc0, eps0 = cluster_state(a.services)
    out["generated_mb"] = round(len(state) / 1e6, 1)
    out["generate_s"] = round(time.monotonic() - t0, 1)
    with Lab("kube-epupd") as lab:
        s, p = lab.ns("s"), lab.ns("p")
        link = lab.link(s, p)
        me, router = link.addr(s), link.addr(p)
        state_file = lab.dir / "kube-state.json"
        state_file.write_bytes(state)
        del state
        emu = lab.spawn(s, "kubeemu", [sys.executable, "-m", "tests.kubeemu", "--listen", f"127.0.0.1:{API_PORT}",
                                       "--state", str(state_file)])
        api = KubeApi(f"http://127.0.0.1:{API_PORT}", netns=s.name, timeout=120)
        wait_for(api.ready, 300, "API emulator")
        frr = Frr(p, lab.subdir("frr"), 64501, "192.0.2.2", neighbors=[Neighbor(me, 64500)])
        api.create({"apiVersion": "metallb.io/v1beta2", "kind": "BGPPeer", "metadata": {"name": "tor", "namespace": NS},
                    "spec": {"myASN": 64500, "peerASN": 64501, "peerAddress": router, "connectTime": "1s"}})
        api.create({"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
                    "metadata": {"name": "pool", "namespace": NS}, "spec": {"addresses": [POOL]}})
        api.create({"apiVersion": "metallb.io/v1beta1", "kind": "BGPAdvertisement",
                    "metadata": {"name": "adv", "namespace": NS}, "spec": {"ipAddressPools": ["pool"]}})
        for n in ("n1", "n2"):
            api.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": n}})
        kc = kubeconfig(lab.dir / "kubeconfig", f"http://127.0.0.1:{API_PORT}")
        emu_cpu0 = proc_cpu(emu.pid)
        t_start = time.monotonic()
        sd = lab.spawn(s, "speakerd", [sys.executable, "-m", "speakerd.cli", "run", "--kubernetes", "--kubeconfig",
                                       str(kc), "--node", "n1", "--namespace", NS, "--socket",
                                       str(lab.dir / "sd.sock")])
        spy = py_spy(sd.pid, a.py_spy) if a.py_spy else None
        marks: dict[str, float] = {}

        def held_all() -> bool:
            text = sd.log.read_text(errors="replace") if "listed" not in marks or "running" not in marks else ""
            now = time.monotonic() - t_start
            if "listed" not in marks and "initial list of every watched kind done" in text:
                marks["listed"] = now
            if "running" not in marks and "speakerd running" in text:
                marks["running"] = now
            got = frr.summary().get("peers", {}).get(me, {}).get("pfxRcd", 0)
            if got and "first_prefix" not in marks:
                marks["first_prefix"] = now
            return got >= a.services
        wait_for(held_all, 1800, "FRR holds every Service", interval=0.2)
        out["start_to_frr_holds_all_s"] = round(time.monotonic() - t_start, 2)
        out["cpu_s_to_all"] = round(proc_cpu(sd.pid), 2)
        out["peak_rss_mib"] = round(proc_kib(sd.pid, "VmHWM") / 1024, 1)
        out["emulator_cpu_s_to_all"] = round(proc_cpu(emu.pid) - emu_cpu0, 2)
        out["marks_s"] = {k: round(v, 2) for k, v in marks.items()}
        out["load_average_at_all"] = os.getloadavg()
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(60)
            spy = None
        time.sleep(5.0)  # steady state: nothing changes in the cluster (bench pacing, not a test)
        out["steady_rss_mib"] = round(proc_kib(sd.pid, "VmRSS") / 1024, 1)
        out["steady_rss_per_service_kib"] = round(proc_kib(sd.pid, "VmRSS") / a.services, 2)
        pcap = lab.dir / "bgp.pcap"
        dump = subprocess.Popen(["ip", "netns", "exec", s.name, "tcpdump", "-i", link.dev(s), "-w", str(pcap),
                                 "-U", "--immediate-mode", "-s", "0", "tcp", "port", "179"], stderr=subprocess.DEVNULL)
        time.sleep(1.0)  # tcpdump's capture starts (bench pacing, not a test)
        prefix = f"{svc0['status']['loadBalancer']['ingress'][0]['ip']}/32"
        ns0, name0 = eps0["metadata"]["namespace"], eps0["metadata"]["name"]
        sent: list[int] = []
        if a.py_spy_changes:
            spy = py_spy(sd.pid, a.py_spy_changes)
        cpu0 = proc_cpu(sd.pid)
        for k in range(a.changes):
            node = "n2" if k % 2 == 0 else "n1"
            eps = [dict(eps0["endpoints"][0], nodeName=node)]
            sent.append(time.time_ns())
            api.patch("EndpointSlice", ns0, name0, {"endpoints": eps})
            wait_for(lambda: frr_has(frr, prefix) == (node == "n1"), 30, f"{prefix} at FRR")
        out["cpu_ms_per_change"] = round((proc_cpu(sd.pid) - cpu0) * 1000 / max(a.changes, 1), 1)
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(60)
        time.sleep(1.0)  # the last UPDATE reaches the capture file
        out["rss_after_changes_mib"] = round(proc_kib(sd.pid, "VmRSS") / 1024, 1)
        dump.terminate()
        dump.wait()
        ups = updates(pcap, me)
        lat = []
        for t, t_next in zip(sent, sent[1:] + [1 << 63]):
            after = [u for u in ups if t <= u < t_next]  # this change's UPDATE, never the next one's
            if after:
                lat.append((after[0] - t) / 1e6)
        lat.sort()
        out["changes"], out["matched"] = a.changes, len(lat)
        if lat:
            p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
            out["update_ms"] = {"p50": round(statistics.median(lat), 2), "p99": round(p99, 2), "max": round(lat[-1], 2)}
        out["load_average_after"] = os.getloadavg()
        if a.keep_log:
            shutil.copy(sd.log, a.keep_log)
        print(json.dumps(out, indent=1), flush=True)
        api.close()
        sd.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
