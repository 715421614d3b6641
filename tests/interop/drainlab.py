"""Two nodes announce one Service IP through an FRR router; a client sends a steady UDP flow.

    client c ── r (FRR, AS 64500, ECMP over both nodes, FRR's graceful-shutdown policy)
                ├── n1 (speakerd node1, AS 64501, the Service IP on lo, a UDP receiver)
                └── n2 (speakerd node2, AS 64501, the Service IP on lo, a UDP receiver)

FRR's documented receiver-side policy for RFC 8326: a route-map on the sessions from the
nodes matching the GRACEFUL_SHUTDOWN community (``bgp community-list ... graceful-shutdown``)
and setting ``local-preference 0``.  The router hashes on L4 ports
(``fib_multipath_hash_policy=1``) so the flow's source ports spread over both nodes.

:func:`take_node_out` runs one way of taking node1 out while the flow runs and returns the
packets sent, received (on both nodes) and lost.  In both, node1's Service stops answering
(its receiver ends) when node1's speakerd is told to stop — as when a node is shut down and
its workloads go with the speaker:

* ``"drain"``: ``speakerctl drain --wait W`` first (routes marked 65535:0, W seconds, withdraw,
  Cease 6/2), then SIGTERM and the receiver ends;
* ``"stop"``: SIGTERM (Cease 6/2 at once, no graceful restart) and the receiver ends at the
  same moment.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .netlab import Lab, Netns, wait_for
from .netlab_daemons import Frr, Neighbor, Speakerd, advertisement, bgp_peer, manifests, pool, service

ROUTER_ASN = 64500
NODE_ASN = 64501
SERVICE_IP = "198.51.100.10"
PORT = 5000

GSHUT_POLICY = (
    "bgp community-list standard GSHUT seq 5 permit graceful-shutdown",
    "route-map FROM-NODES permit 10", "match community GSHUT", "set local-preference 0", "exit",
    "route-map FROM-NODES permit 20", "exit",
)


@dataclass
class Setup:
    lab: Lab
    client: Netns
    router: Netns
    nodes: dict[str, Netns]
    node_addrs: dict[str, str]
    router_addrs: dict[str, str]  # the router's address on each node's link
    frr: Frr
    speakers: dict[str, Speakerd]


def build(lab: Lab, extra_node_args: tuple[str, ...] = ()) -> Setup:
    c, r = lab.ns("c"), lab.router("r")
    n1, n2 = lab.ns("n1"), lab.ns("n2")
    lc = lab.link(c, r)
    l1, l2 = lab.link(r, n1), lab.link(r, n2)
    c.exec("ip", "route", "add", "default", "via", lc.addr(r))
    r.exec("sysctl", "-qw", "net.ipv4.fib_multipath_hash_policy=1")
    nodes = {"node1": n1, "node2": n2}
    addrs = {"node1": l1.addr(n1), "node2": l2.addr(n2)}
    routers = {"node1": l1.addr(r), "node2": l2.addr(r)}
    frr = Frr(r, lab.subdir("frr"), ROUTER_ASN, "198.18.255.1",
              [Neighbor(addrs["node1"], NODE_ASN), Neighbor(addrs["node2"], NODE_ASN)], start=True)
    frr.configure("no bgp no-rib", *GSHUT_POLICY, f"router bgp {ROUTER_ASN}", "address-family ipv4 unicast", "maximum-paths 8",
                  *(f"neighbor {a} route-map FROM-NODES in" for a in addrs.values()), "exit-address-family")
    speakers = {}
    for name, ns in nodes.items():
        ns.exec("ip", "addr", "add", f"{SERVICE_IP}/32", "dev", "lo")
        ns.exec("ip", "route", "add", "default", "via", routers[name])
        cfg = manifests(lab.subdir(f"{name}-config"), [
            bgp_peer("router", NODE_ASN, ROUTER_ASN, routers[name], holdTime="9s", connectTime="1s"),
            pool("pool", [f"{SERVICE_IP}/32"]),
            advertisement("adv", ipAddressPools=["pool"]),
            service("web", [SERVICE_IP]),
        ])
        speakers[name] = Speakerd(ns, cfg, name, socket=lab.dir / f"{name}.sock",
                                  extra_args=("--watch", "0", *extra_node_args))
    return Setup(lab, c, r, nodes, addrs, routers, frr, speakers)


def fib_next_hops(setup: Setup) -> list[str]:
    """The next hops of the Service prefix in the router's kernel FIB (what forwards)."""
    out = setup.router.exec("ip", "-j", "route", "show", f"{SERVICE_IP}/32")
    routes = json.loads(out or "[]")
    hops = []
    for rt in routes:
        if "gateway" in rt:
            hops.append(rt["gateway"])
        hops += [h["gateway"] for h in rt.get("nexthops", []) if "gateway" in h]
    return sorted(hops)


def wait_ecmp(setup: Setup, timeout: float = 30) -> None:
    want = sorted(setup.node_addrs.values())
    wait_for(lambda: fib_next_hops(setup) == want, timeout, "both nodes as ECMP next hops in the router's FIB")


def _receiver(setup: Setup, name: str, tag: str):
    out = setup.lab.dir / f"recv-{tag}-{name}.json"
    out.unlink(missing_ok=True)
    proc = setup.nodes[name].spawn(f"recv-{tag}-{name}", [sys.executable, "-m", "tests.interop.udpflow", "recv",
                                                          str(PORT), "--out", str(out)])
    return proc, out


def _ctl(setup: Setup, name: str, *words: str, timeout: float = 60) -> subprocess.CompletedProcess:
    sd = setup.speakers[name]
    return subprocess.run([sys.executable, "-m", "speakerd.ctl", "--socket", str(sd.socket), "--json", *words],
                          capture_output=True, text=True, timeout=timeout)


def _listening(setup: Setup, name: str) -> bool:
    return f":{PORT} " in setup.nodes[name].exec("ss", "-Huln")


def take_node_out(setup: Setup, mode: str, *, rate: float = 2000, seconds: float = 8, at: float = 2.0,
                  wait: float = 3.0, flows: int = 16) -> dict:
    """Run the flow for ``seconds``; at ``at`` seconds take node1 out (``mode`` drain|stop)."""
    assert mode in ("drain", "stop")
    tag = f"{mode}-{int(time.monotonic() * 1000)}"
    receivers = {name: _receiver(setup, name, tag) for name in setup.nodes}
    for name in setup.nodes:
        wait_for(lambda n=name: _listening(setup, n), 10, f"receiver on {name}")
    wait_ecmp(setup)
    repo = Path(__file__).resolve().parents[2]
    sender = subprocess.Popen(["ip", "netns", "exec", setup.client.name, sys.executable, "-m", "tests.interop.udpflow",
                               "send", SERVICE_IP, str(PORT), "--rate", str(rate), "--seconds", str(seconds),
                               "--flows", str(flows)], cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    t0 = time.monotonic()
    time.sleep(at)  # the flow runs undisturbed first (the generator's schedule, not synchronisation)
    sd1 = setup.speakers["node1"]
    result: dict = {"mode": mode}
    if mode == "drain":
        r = _ctl(setup, "node1", "drain", "--wait", str(wait), timeout=wait + 60)
        if r.returncode != 0:
            raise AssertionError(f"speakerctl drain: {r.returncode} {r.stderr}")
        result["drain"] = json.loads(r.stdout)
    result["action_at"] = round(time.monotonic() - t0, 3)
    sd1.proc.signal(15)
    receivers["node1"][0].signal(15)  # node1's Service ends with its speaker
    out, err = sender.communicate(timeout=seconds + 60)
    if sender.returncode != 0:
        raise AssertionError(f"udpflow send: {sender.returncode} {err}")
    sent = json.loads(out)["sent"]
    sd1.proc.popen.wait(30)
    counts = {}
    for name, (proc, path) in receivers.items():
        proc.signal(15)
        proc.popen.wait(10)
        counts[name] = json.loads(path.read_text())["received"]
    received = sum(counts.values())
    result.update(sent=sent, received=received, lost=sent - received, by_node=counts,
                  rate=rate, seconds=seconds, wait=wait if mode == "drain" else None)
    return result


def restart_node1(setup: Setup) -> None:
    setup.speakers["node1"].start()
    wait_ecmp(setup)
