"""A reload storm: many random config changes, valid and invalid, applied with `speakerctl reload`
while FRR is peered.

Seeded (``SPEAKERD_STORM_SEED``, default 1) and bounded
(``SPEAKERD_STORM_STEPS``, default 150; raise it for longer runs).  Each step
rewrites the manifests and reloads:

* valid steps add/remove Services (fixed IPs and pool-allocated ones),
  change communities, local-pref, aggregationLength, add/remove a second
  pool, and add/remove a second BGPPeer (FRR's second, passive neighbor);
  after each, FRR's table must equal ``speakerd plan --json`` (polled with
  a deadline);
* invalid steps (one per validation rule family: bad holdTime, keepalive
  above hold, unknown pool reference, overlapping pools, bad community, bad
  CIDR) must make ``speakerctl reload`` exit 3 and leave FRR's table equal to
  the previous plan;
* the main session is never reset (FRR's connectionsEstablished and
  connectionsDropped stay constant) and the second peer's session is
  established exactly once per time it is added or its own holdTime changes.
"""
from __future__ import annotations

import os
import random

import pytest

from tests.interop.netlab import Frr, Neighbor, advertisement, bgp_peer, holds_for, manifests, node, pool, \
    service, wait_for
from tests.interop.test_reload import (ASN, NODE, PEER, POOL4, auto_service, flaps, frr_table, peer_spec,
                                       plan_table, reload, sessions, start_speakerd, wait_table)

pytestmark = [pytest.mark.interop, pytest.mark.usefixtures("speakerd_ready")]

STEPS = int(os.environ.get("SPEAKERD_STORM_STEPS", "150"))
SEED = int(os.environ.get("SPEAKERD_STORM_SEED", "1"))
EXTRA_POOL = "198.51.100.0/28"
ROUTER_ID = "192.0.2.1"  # fixed: a derived identifier would change (and reset everything) with peer2's source
COMMUNITY_SETS = [["64500:100"], ["64500:200"], ["64500:100", "65000:1"], [], ["large:64500:1:2"],
                  ["64500:300", "large:64500:7:7"]]
INVALID = ["bad_hold", "keepalive_above_hold", "unknown_pool", "overlapping_pools", "bad_community", "bad_cidr"]


def _service_ip(i: int) -> str | None:
    """Service s<i>: a fixed IP in the main pool, one in the extra pool, or none (allocated)."""
    if i % 3 == 0:
        return f"203.0.113.{100 + i}"
    if i % 3 == 1:
        return f"198.51.100.{1 + i % 14}"
    return None


class Model:
    def __init__(self, main_addr: str, p2_addr: str, p2_source: str) -> None:
        self.main_addr, self.p2_addr, self.p2_source = main_addr, p2_addr, p2_source
        self.services: set[int] = {0, 1, 2}
        self.communities = ["64500:100"]
        self.local_pref = 150
        self.aggregation: int | None = None
        self.extra_pool = True
        self.peer2 = False
        self.p2_hold = 9

    def objects(self, invalid: str | None = None) -> list[dict]:
        spec = peer_spec(routerID=ROUTER_ID)
        if invalid == "bad_hold":
            spec["holdTime"] = "2s"
        elif invalid == "keepalive_above_hold":
            spec["keepaliveTime"] = "20s"
        objs = [node(NODE), bgp_peer(PEER, ASN, ASN, self.main_addr, **spec)]
        if self.peer2:
            objs.append(bgp_peer("peer2", ASN, ASN, self.p2_addr,
                                 **peer_spec(routerID=ROUTER_ID, sourceAddress=self.p2_source,
                                             holdTime=f"{self.p2_hold}s")))
        pools = ["lab"] + (["extra"] if self.extra_pool else [])
        objs.append(pool("lab", [POOL4]))
        if invalid == "overlapping_pools":
            objs.append(pool("dup", ["203.0.113.64/26"]))
        if self.extra_pool:
            objs.append(pool("extra", ["198.51.100.0/33" if invalid == "bad_cidr" else EXTRA_POOL],
                             autoAssign=False))
        elif invalid == "bad_cidr":
            objs.append(pool("extra", ["198.51.100.0/33"]))
        ad = {"ipAddressPools": ["no-such-pool"] if invalid == "unknown_pool" else pools,
              "communities": ["bogus"] if invalid == "bad_community" else list(self.communities),
              "localPref": self.local_pref}
        if self.aggregation is not None:
            ad["aggregationLength"] = self.aggregation
        objs.append(advertisement("lab", **ad))
        for i in sorted(self.services):
            ip = _service_ip(i)
            objs.append(service(f"s{i}", [ip]) if ip else auto_service(f"s{i}"))
        return objs

    def mutate(self, rng: random.Random) -> str:
        kind = rng.choices(["add", "remove", "communities", "local_pref", "aggregation", "pool", "peer2",
                            "peer2_hold"], weights=[4, 3, 1, 1, 1, 1, 1, 1])[0]
        if kind == "add":
            free = [i for i in range(24) if i not in self.services]
            if free:
                self.services.add(rng.choice(free))
        elif kind == "remove" and self.services:
            self.services.discard(rng.choice(sorted(self.services)))
        elif kind == "communities":
            self.communities = rng.choice(COMMUNITY_SETS)
        elif kind == "local_pref":
            self.local_pref = rng.randrange(50, 400)
        elif kind == "aggregation":
            self.aggregation = None if self.aggregation else rng.choice([28, 30])
        elif kind == "pool":
            self.extra_pool = not self.extra_pool
        elif kind == "peer2":
            self.peer2 = not self.peer2
        elif kind == "peer2_hold":  # peer2's own session parameter: only peer2 is reset
            self.p2_hold = 15 if self.p2_hold == 9 else 9
        return kind


def test_reload_storm(lab):
    s, p = lab.ns("s"), lab.ns("p")
    link = lab.link(s, p)
    p2_source, p2_addr = "198.18.1.3", "198.18.1.4"
    s.exec("ip", "addr", "add", f"{p2_source}/24", "dev", link.dev(s))
    p.exec("ip", "addr", "add", f"{p2_addr}/24", "dev", link.dev(p))
    frr = Frr(p, lab.subdir("frr"), ASN, "192.0.2.2",
              neighbors=[Neighbor(link.v4_a, ASN), Neighbor(p2_source, ASN, passive=True)])
    model = Model(link.v4_b, p2_addr, p2_source)
    cdir = lab.subdir("config")
    manifests(cdir, model.objects())
    sd = start_speakerd(lab, s, cdir)
    frr.wait_established(link.v4_a)
    prev = wait_table(frr, plan_table(cdir, sd.state), what="initial table")
    base = sessions(frr, link.v4_a)
    rng = random.Random(SEED)
    p2_adds = 0  # sessions peer2 should have had so far
    n_invalid = 0
    kinds: dict[str, int] = {}
    for step in range(STEPS):
        if rng.random() < 0.2:
            bad = INVALID[n_invalid % len(INVALID)]  # every kind, in turn
            n_invalid += 1
            kinds[bad] = kinds.get(bad, 0) + 1
            manifests(cdir, model.objects(invalid=bad))
            rc, out = reload(sd)
            assert rc == 3, f"step {step}: invalid config ({bad}) accepted: {out}"
            if not holds_for(lambda: frr_table(frr) == prev, 0.3, interval=0.1):
                now = frr_table(frr)
                changed = {k: (prev.get(k), now.get(k)) for k in set(prev) | set(now) if prev.get(k) != now.get(k)}
                raise AssertionError(f"step {step}: rejected config ({bad}) changed FRR's table: {changed}")
            continue
        had_p2 = model.peer2
        kind = model.mutate(rng)
        kinds[kind] = kinds.get(kind, 0) + 1
        manifests(cdir, model.objects())
        rc, out = reload(sd)
        assert rc == 0, f"step {step} ({kind}): {out}"
        want = plan_table(cdir, sd.state, cli=False)
        if model.peer2:
            assert plan_table(cdir, sd.state, peer="peer2", cli=False) == want  # one advertisement for both
            if not had_p2 or kind == "peer2_hold":
                p2_adds += 1
                frr.wait_established(p2_source, timeout=15)
        prev = wait_table(frr, want, what=f"step {step} ({kind}): FRR's table equals the plan")
        assert sessions(frr, link.v4_a) == base, f"step {step} ({kind}): the main session was reset"
        if model.peer2:
            wait_for(lambda: sessions(frr, p2_source)[0] == p2_adds and frr.established(p2_source), 10,
                     f"step {step}: peer2 established once per add or own change ({p2_adds})")
    print(f"reload storm: {STEPS} steps, seed {SEED}: {dict(sorted(kinds.items()))}, peer2 sessions {p2_adds}")
    assert [e for e in flaps(sd) if e["peer"] == PEER] == []
    assert set(INVALID) <= kinds.keys() or STEPS < 60
