"""EndpointSlice event -> BGP UPDATE on the wire, for ``speakerd run --kubernetes`` (root; namespaces).

The lab of tests/interop/test_kubernetes_mode.py: the API emulator and speakerd
(node n1) in namespace ``s``, FRR in ``p``. ``--services`` LoadBalancer
Services (externalTrafficPolicy Local, each with its address in
status.loadBalancer.ingress and an EndpointSlice on n1) are created first;
then one Service's EndpointSlice is moved to n2 and back, ``--changes`` times.
The API write is timed just before it is sent; tcpdump on speakerd's side of
the link timestamps the UPDATE that withdraws (or announces) the prefix; the
latency is the difference (one clock, one host).

    sudo .venv/bin/python bench/kube_endpoint_update.py [--services 1000] [--changes 100]
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from speakerd.pcap import tcp_segments  # noqa: E402
from tests.cluster.kubeapi import KubeApi  # noqa: E402
from tests.interop.netlab import Lab, wait_for  # noqa: E402
from tests.interop.netlab_daemons import Frr, Neighbor  # noqa: E402
from tests.interop.test_kubernetes_mode import API_PORT, NS, kubeconfig  # noqa: E402


def slice_of(name: str, node: str) -> dict:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": f"{name}-ep", "namespace": "default", "labels": {"kubernetes.io/service-name": name}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.244.1.5"], "nodeName": node, "conditions": {"ready": True}}]}


def service_of(name: str, ip: str) -> dict:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}",
                         "labels": {"app": name}, "annotations": {"owner": "bench"}},
            "spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local", "selector": {"app": name},
                     "ports": [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080,
                                "protocol": "TCP"}], "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                     "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack"},
            "status": {"loadBalancer": {"ingress": [{"ip": ip, "ipMode": "VIP"}]}}}


def updates(pcap: Path, src: str) -> list[int]:
    """Timestamps (ns) of the segments from `src` that carry a BGP UPDATE."""
    out = []
    want = ipaddress.ip_address(src).packed
    with open(pcap, "rb") as f:
        for seg in tcp_segments(f):
            p = seg.payload
            if seg.src == want and len(p) >= 19 and p[:16] == b"\xff" * 16 and p[18] == 2:
                out.append(seg.ts_ns)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--changes", type=int, default=100)
    a = ap.parse_args()
    with Lab("kube-epupd") as lab:
        s, p = lab.ns("s"), lab.ns("p")
        link = lab.link(s, p)
        me, router = link.addr(s), link.addr(p)
        lab.spawn(s, "kubeemu", [sys.executable, "-m", "tests.kubeemu", "--listen", f"127.0.0.1:{API_PORT}"])
        api = KubeApi(f"http://127.0.0.1:{API_PORT}", netns=s.name, workers=8)
        wait_for(api.ready, 20, "API emulator")
        frr = Frr(p, lab.subdir("frr"), 64501, "192.0.2.2", neighbors=[Neighbor(me, 64500)])
        api.create({"apiVersion": "metallb.io/v1beta2", "kind": "BGPPeer", "metadata": {"name": "tor", "namespace": NS},
                    "spec": {"myASN": 64500, "peerASN": 64501, "peerAddress": router, "connectTime": "1s"}})
        api.create({"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
                    "metadata": {"name": "pool", "namespace": NS}, "spec": {"addresses": ["10.128.0.0/15"]}})
        api.create({"apiVersion": "metallb.io/v1beta1", "kind": "BGPAdvertisement",
                    "metadata": {"name": "adv", "namespace": NS}, "spec": {"ipAddressPools": ["pool"]}})
        for n in ("n1", "n2"):
            api.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": n}})
        net = ipaddress.ip_network("10.128.0.0/15")
        futs = []
        for i in range(a.services):
            name = f"svc{i}"
            svc = service_of(name, str(net[i + 1]))
            futs.append(api.submit("POST", api.path("Service", "default"), svc))
            futs.append(api.submit("POST", api.path("EndpointSlice", "default"), slice_of(name, "n1")))
        for f in futs:
            f.result()
        for i in range(a.services):  # status is a subresource: written like a controller does
            svc = service_of(f"svc{i}", str(net[i + 1]))
            futs.append(api.submit("PUT", api.path("Service", "default", f"svc{i}", "status"), svc))
        for f in futs:
            f.result()
        kc = kubeconfig(lab.dir / "kubeconfig", f"http://127.0.0.1:{API_PORT}")
        t_start = time.monotonic()
        sd = lab.spawn(s, "speakerd", [sys.executable, "-m", "speakerd.cli", "run", "--kubernetes", "--kubeconfig",
                                       str(kc), "--node", "n1", "--namespace", NS, "--socket",
                                       str(lab.dir / "sd.sock")])
        wait_for(lambda: frr.summary().get("peers", {}).get(me, {}).get("pfxRcd", 0) >= a.services, 300,
                 "FRR holds every Service")
        start_to_all = time.monotonic() - t_start
        rss = int(next(l.split()[1] for l in open(f"/proc/{sd.pid}/status") if l.startswith("VmHWM")))
        pcap = lab.dir / "bgp.pcap"
        dump = subprocess.Popen(["ip", "netns", "exec", s.name, "tcpdump", "-i", link.dev(s), "-w", str(pcap),
                                 "-U", "-s", "0", "tcp", "port", "179"], stderr=subprocess.DEVNULL)
        time.sleep(1.0)  # tcpdump's capture starts (bench pacing, not a test)
        prefix = f"{net[1]}/32"
        sent: list[int] = []
        for k in range(a.changes):
            node = "n2" if k % 2 == 0 else "n1"
            sent.append(time.time_ns())
            api.patch("EndpointSlice", "default", "svc0-ep", {"endpoints": slice_of("svc0", node)["endpoints"]})
            wait_for(lambda: (prefix in frr.routes()) == (node == "n1"), 10, f"{prefix} at FRR")
        time.sleep(0.5)
        rss_now = int(next(l.split()[1] for l in open(f"/proc/{sd.pid}/status") if l.startswith("VmRSS")))
        dump.terminate()
        dump.wait()
        ups = updates(pcap, me)
        lat = []
        for t in sent:
            after = [u for u in ups if u >= t]
            if after:
                lat.append((after[0] - t) / 1e6)
        lat.sort()
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        print(json.dumps({"services": a.services, "changes": a.changes, "matched": len(lat),
                          "start_to_frr_holds_all_s": round(start_to_all, 2), "peak_rss_kib": rss, "rss_after_kib": rss_now,
                          "update_ms": {"p50": round(statistics.median(lat), 2), "p99": round(p99, 2),
                                        "max": round(lat[-1], 2)}}, indent=1))
        api.close()
        sd.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
