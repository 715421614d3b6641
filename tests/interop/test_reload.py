"""Reloads that change what FRR has without resetting its session, and allocations kept across a restart.

speakerd runs in namespace ``s`` (iBGP to FRR in ``p``, so LOCAL_PREF is
visible on the router).  After every step FRR's table must equal what
``speakerd plan --json`` says this peer should get: prefixes, communities,
large communities and local-pref.  FRR's ``connectionsEstablished`` /
``connectionsDropped`` for speakerd show whether the session was reset.

The helpers here are shared by the other robustness interop tests
(test_faults, test_graceful_restart, test_reload_storm).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterable

import pytest

from tests.interop.netlab import (Frr, GoBgp, Neighbor, NotImplementedYet, Speakerd, advertisement, bgp_peer,
                                  holds_for, manifests, node, pool, service, sh, wait_for)

pytestmark = [pytest.mark.interop, pytest.mark.usefixtures("speakerd_ready")]

ASN = 64500  # iBGP: speakerd and FRR share it
EBGP_PEER_ASN = 64501
NODE = "node1"
PEER = "peer"  # BGPPeer name of the main peer
POOL4 = "203.0.113.0/24"


# ---------------------------------------------------------------- shared helpers

class GrFrr(Frr):
    """FRR with ``bgp graceful-restart`` (restarting speaker and helper) when asked."""

    def __init__(self, *args: Any, graceful_restart: bool = False, **kw: Any) -> None:
        self.graceful_restart = graceful_restart  # before Frr.__init__, which writes the config
        super().__init__(*args, **kw)

    def config(self) -> str:
        text = super().config()
        if self.graceful_restart:
            rid = f" bgp router-id {self.router_id}\n"
            text = text.replace(rid, rid + " bgp graceful-restart\n")
        return text


def auto_service(name: str, namespace: str = "default") -> dict:
    """A LoadBalancer Service with no IP yet: speakerd allocates one from a pool."""
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace},
            "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "protocol": "TCP"}], "ipFamilies": ["IPv4"],
                     "ipFamilyPolicy": "SingleStack"}}


def peer_spec(**over: Any) -> dict:
    return {"holdTime": "9s", "keepaliveTime": "3s", "connectTime": "1s", **over}


def start_speakerd(lab, ns, config_dir: Path) -> Speakerd:
    """speakerd without the file watcher: every change in these tests is applied by `speakerctl reload`."""
    try:
        return Speakerd(ns, config_dir, NODE, socket=lab.dir / "speakerd.sock",
                        extra_args=("--log-level", "debug", "--watch", "0"))
    except NotImplementedYet as e:
        pytest.skip(str(e))


def _norm(communities: Iterable[str], large: Iterable[str], local_pref: int | None, ibgp: bool) -> dict:
    # plan --json spells large communities "large:A:B:C", FRR and GoBGP "A:B:C"
    return {"communities": sorted(communities), "large_communities": sorted(c.removeprefix("large:") for c in large),
            "local_pref": (local_pref if local_pref is not None else 100) if ibgp else None}


def plan_table(config_dir: Path, state: Path, peer: str = PEER, cli: bool = True) -> dict[str, dict]:
    """What ``speakerd plan --json`` says ``peer`` should have: {prefix: attrs}.

    ``cli=False`` runs the same code (``speakerd.commands.plan.to_json``) in
    this process: the reload storm asks hundreds of times.
    """
    if cli:
        out = subprocess.run([sys.executable, "-m", "speakerd.cli", "plan", "-c", str(config_dir), "--node", NODE,
                              "--state", str(state), "--json"], capture_output=True, text=True, timeout=60,
                             stdin=subprocess.DEVNULL)
        assert out.returncode == 0, out.stderr
        data = json.loads(out.stdout)
    else:
        from speakerd.commands.plan import to_json
        from speakerd.config import load_config
        from speakerd.policy import plan
        from speakerd.state import load_allocations
        config = load_config([str(config_dir)])
        data = to_json(plan(config, NODE, load_allocations(str(state))), config, NODE)
    p = data["peers"].get(peer)
    if p is None:
        return {}
    return {r["prefix"]: _norm(r["communities"], r["large_communities"], r["local_pref"], p["ibgp"])
            for r in p["routes"]}


def frr_table(frr: Frr, afi: int = 4, ibgp: bool = True) -> dict[str, dict]:
    """FRR's table in the shape of :func:`plan_table` (only routes from speakerd are expected)."""
    return {prefix: _norm(r["communities"], r["large_communities"], r["local_pref"], ibgp)
            for prefix, r in frr.routes(afi).items()}


def wait_table(frr: Frr, want: dict[str, dict], timeout: float = 15, ibgp: bool = True, what: str = "") -> dict:
    last: list = [None]

    def same():
        last[0] = frr_table(frr, ibgp=ibgp)
        return last[0] == want
    try:
        wait_for(same, timeout, what or "FRR's table to equal the plan")
    except TimeoutError as e:
        raise AssertionError(f"{what or 'FRR table != plan'}\nwant {want}\nhave {last[0]}") from e
    return want


def sessions(frr: Frr, ip: str) -> tuple[int, int]:
    """FRR's (connectionsEstablished, connectionsDropped) for ``ip``."""
    n = frr.neighbor(ip)
    return int(n.get("connectionsEstablished", 0)), int(n.get("connectionsDropped", 0))


def reload(sd: Speakerd) -> tuple[int, dict | str]:
    """``speakerctl reload``: (exit code, JSON answer or the error text)."""
    p = subprocess.run([sys.executable, "-m", "speakerd.ctl", "--socket", str(sd.socket), "--json", "reload"],
                       capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    try:
        return p.returncode, json.loads(p.stdout)
    except json.JSONDecodeError:
        return p.returncode, p.stdout + p.stderr


def flaps(sd: Speakerd) -> list[dict]:
    """History entries of sessions leaving Established."""
    return [e for e in sd.ctl("show", "history")["history"] if e["flap"]]


# ---------------------------------------------------------------- tests

def _objects(peer_addr: str, services: list[dict], communities=("64500:100",), aggregation: int | None = None,
             local_pref: int = 150) -> list[dict]:
    ad: dict[str, Any] = {"ipAddressPools": ["lab"], "communities": list(communities), "localPref": local_pref}
    if aggregation is not None:
        ad["aggregationLength"] = aggregation
    return [node(NODE), bgp_peer(PEER, ASN, ASN, peer_addr, **peer_spec()), pool("lab", [POOL4]),
            advertisement("lab", **ad), *services]


def test_reload_changes_routes_without_reset(lab):
    s, p = lab.ns("s"), lab.ns("p")
    link = lab.link(s, p)
    frr = Frr(p, lab.subdir("frr"), ASN, "192.0.2.2", neighbors=[Neighbor(link.v4_a, ASN)])
    cdir = lab.subdir("config")
    svc = {n: service(n, [f"203.0.113.{10 + i}"]) for i, n in enumerate("abc")}
    manifests(cdir, _objects(link.v4_b, [svc["a"], svc["b"]]))
    sd = start_speakerd(lab, s, cdir)
    frr.wait_established(link.v4_a)
    want = wait_table(frr, plan_table(cdir, sd.state), what="initial table")
    assert set(want) == {"203.0.113.10/32", "203.0.113.11/32"}
    base = sessions(frr, link.v4_a)

    steps = [
        ("add c, remove a", _objects(link.v4_b, [svc["b"], svc["c"]]), {"203.0.113.11/32", "203.0.113.12/32"}),
        ("community change", _objects(link.v4_b, [svc["b"], svc["c"]], communities=("64500:200", "65000:7")), None),
        ("local-pref change", _objects(link.v4_b, [svc["b"], svc["c"]], local_pref=250), None),
        ("aggregationLength 24", _objects(link.v4_b, [svc["b"], svc["c"]], aggregation=24), {"203.0.113.0/24"}),
        ("back to /32", _objects(link.v4_b, [svc["a"], svc["c"]]), {"203.0.113.10/32", "203.0.113.12/32"}),
    ]
    prev = want
    for what, objects, prefixes in steps:
        manifests(cdir, objects)
        rc, out = reload(sd)
        assert rc == 0, (what, out)
        want = plan_table(cdir, sd.state)
        assert want != prev, f"{what}: the step must change the plan"
        if prefixes is not None:
            assert set(want) == prefixes, what
        wait_table(frr, want, what=what)
        assert sessions(frr, link.v4_a) == base, f"{what}: FRR's session was reset"
        prev = want

    # an invalid MetalLB config (unknown pool reference) is rejected and changes nothing
    # (the same Services: a Service change is applied even beside a rejected MetalLB config)
    bad = _objects(link.v4_b, [svc["a"], svc["c"]])
    bad[3]["spec"]["ipAddressPools"] = ["no-such-pool"]
    manifests(cdir, bad)
    rc, out = reload(sd)
    assert rc == 3, out
    assert holds_for(lambda: frr_table(frr) == prev, 2), "a rejected config changed FRR's table"
    assert sessions(frr, link.v4_a) == base
    assert flaps(sd) == []


def test_allocations_persist_across_restart(lab):
    """Services without an IP get one from the pool; after a restart with the same --state file
    (and one service deleted meanwhile) the others keep theirs: FRR sees the same prefixes."""
    s, p = lab.ns("s"), lab.ns("p")
    link = lab.link(s, p)
    frr = Frr(p, lab.subdir("frr"), ASN, "192.0.2.2", neighbors=[Neighbor(link.v4_a, ASN)])
    cdir = lab.subdir("config")
    manifests(cdir, _objects(link.v4_b, [auto_service(n) for n in ("a", "b", "c")]))
    sd = start_speakerd(lab, s, cdir)
    frr.wait_established(link.v4_a)
    before = wait_table(frr, plan_table(cdir, sd.state), what="allocated prefixes")
    assert len(before) == 3
    alloc = json.loads(sd.state.read_text())["allocations"]
    assert set(alloc) == {"default/a", "default/b", "default/c"}

    assert sd.stop() == 0
    wait_for(lambda: not frr.established(link.v4_a), 10, "FRR sees speakerd gone")
    # service a is deleted while speakerd is down: a fresh allocation would renumber b and c
    manifests(cdir, _objects(link.v4_b, [auto_service(n) for n in ("b", "c")]))
    sd.start()
    frr.wait_established(link.v4_a)
    kept = {f"{alloc[k][0]}/32" for k in ("default/b", "default/c")}
    after = wait_table(frr, plan_table(cdir, sd.state), what="prefixes after the restart")
    assert set(after) == kept
    assert json.loads(sd.state.read_text())["allocations"] == {k: alloc[k] for k in ("default/b", "default/c")}
