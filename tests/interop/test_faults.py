"""Network faults between speakerd and its router: detection, backoff, recovery to the exact plan.

speakerd (namespace ``s``, hold time 3 s, keepalive 1 s, connectTime 1 s) peers
iBGP with FRR or GoBGP (namespace ``p``).  Each fault is checked for

* detection within the configured time (generous polling bounds, the cause
  from ``speakerctl show history``: hold timer expiry for silent faults),
* reconnection with backoff, never a tight loop: SYNs speakerd sends to
  port 179 are counted by an nftables counter in ``s`` over a fixed window
  while the peer is unreachable (kernel SYN retransmits included),
* recovery: the router's table equals ``speakerd plan --json`` for the peer
  (prefixes, communities, local-pref).
"""
from __future__ import annotations

import dataclasses
import re
import time

import pytest

from tests.interop.netlab import (Frr, GoBgp, Neighbor, advertisement, bgp_peer, holds_for, manifests, node,
                                  pool, service, wait_for)
from tests.interop.test_reload import (ASN, NODE, PEER, POOL4, _norm, flaps, peer_spec, plan_table, reload,
                                       start_speakerd)

pytestmark = [pytest.mark.interop, pytest.mark.usefixtures("speakerd_ready")]

HOLD = 3
DETECT_BOUND = 3 * HOLD + 2  # polling bound, clearly above the hold time
WINDOW = 8.0  # seconds of counting connection attempts while the peer is unreachable
# connect attempts every 1, 2, 4 s (backoff, jitter 0.75-1) plus the kernel's SYN retransmits within an
# attempt that runs into a black hole: measured 3 (link down, peer dead) to 9 (black hole) in 8 s;
# a reconnect loop would send hundreds
MAX_SYNS = 15


def peer_table(peer, afi: int = 4) -> dict[str, dict]:
    return {prefix: _norm(r["communities"], r["large_communities"], r["local_pref"], True)
            for prefix, r in peer.routes(afi).items()}


class Setup:
    def __init__(self, lab, kind: str, password: str | None = None) -> None:
        s, p = lab.ns("s"), lab.ns("p")
        self.link = link = lab.link(s, p)
        self.s, self.p, self.kind = s, p, kind
        self.speaker_addr, self.peer_addr = link.v4_a, link.v4_b
        nbr = Neighbor(self.speaker_addr, ASN, password=password)
        cls = Frr if kind == "frr" else GoBgp
        self.peer = cls(p, lab.subdir(kind), ASN, "192.0.2.2", neighbors=[nbr])
        self.cdir = lab.subdir("config")
        spec = peer_spec(holdTime=f"{HOLD}s", keepaliveTime="1s", **({"password": password} if password else {}))
        self.objects = [node(NODE), bgp_peer(PEER, ASN, ASN, self.peer_addr, **spec), pool("lab", [POOL4]),
                        advertisement("lab", ipAddressPools=["lab"], communities=["64500:100"],
                                      localPref=120),
                        *(service(f"svc{i}", [f"203.0.113.{10 + i}"]) for i in range(3))]
        manifests(self.cdir, self.objects)
        self.sd = start_speakerd(lab, s, self.cdir)
        self._syn_counter()
        self.sd.wait_established(self.peer_addr)
        self.wait_plan("initial table")

    # -- observations
    def wait_plan(self, what: str, timeout: float = 30) -> None:
        want = plan_table(self.cdir, self.sd.state)
        assert want, "the plan must not be empty"
        last: list = [None]

        def same():
            last[0] = peer_table(self.peer)
            return last[0] == want
        try:
            wait_for(same, timeout, what)
        except TimeoutError as e:
            raise AssertionError(f"{what}: {self.kind} table != plan\nwant {want}\nhave {last[0]}") from e

    def wait_down(self, what: str) -> float:
        t0 = time.monotonic()
        wait_for(lambda: not self.sd.established(self.peer_addr), DETECT_BOUND, what)
        return time.monotonic() - t0

    def causes(self) -> list[str]:
        return [e["cause"] for e in flaps(self.sd)]

    def _syn_counter(self) -> None:
        for cmd in ("add table inet sdsyn",
                    "add chain inet sdsyn out { type filter hook output priority -20 ; }",
                    "add rule inet sdsyn out tcp dport 179 tcp flags & (syn | ack) == syn counter"):
            self.s.exec("nft", cmd)

    def syns(self) -> int:
        out = self.s.exec("nft", "list", "table", "inet", "sdsyn")
        m = re.search(r"counter packets (\d+)", out)
        return int(m.group(1)) if m else 0

    def attempts_while_down(self) -> int:
        """SYNs speakerd sends during WINDOW seconds (the peer is unreachable)."""
        before = self.syns()
        assert holds_for(lambda: not self.sd.established(self.peer_addr), WINDOW, interval=0.5)
        n = self.syns() - before
        print(f"{self.kind}: {n} SYNs in {WINDOW:g} s while unreachable")
        return n


KINDS = ["frr", "gobgp"]


@pytest.mark.parametrize("kind", KINDS)
def test_peer_killed_and_restarted(lab, kind):
    st = Setup(lab, kind)
    st.peer.kill()  # SIGKILL: the kernel closes the connection
    st.wait_down("speakerd notices the dead peer")
    assert st.causes()[-1] in ("tcp_failed", "notification_received"), st.causes()
    n = st.attempts_while_down()
    assert 1 <= n <= MAX_SYNS, f"{n} SYNs in {WINDOW}s while the peer was down"
    st.peer.start() if kind == "gobgp" else st.peer.restart()
    st.sd.wait_established(st.peer_addr, timeout=30)
    st.wait_plan("table after the peer came back")


@pytest.mark.parametrize("kind", KINDS)
def test_link_down_and_up(lab, kind):
    st = Setup(lab, kind)
    dev = st.link.dev(st.p)
    st.p.exec("ip", "link", "set", dev, "down")
    st.wait_down("hold timer expiry after link down")
    assert st.causes()[-1] == "hold_timer_expired", st.causes()
    n = st.attempts_while_down()
    assert n <= MAX_SYNS, f"{n} SYNs in {WINDOW}s while the link was down"
    st.p.exec("ip", "link", "set", dev, "up")
    st.sd.wait_established(st.peer_addr, timeout=30)
    st.wait_plan("table after link up")


@pytest.mark.parametrize("kind", KINDS)
def test_blackhole_hold_timer(lab, kind):
    st = Setup(lab, kind)
    st.p.cut(st.speaker_addr)  # nftables DROP in the peer's namespace, both directions
    st.wait_down("hold timer expiry in a black hole")
    assert st.causes()[-1] == "hold_timer_expired", st.causes()
    n = st.attempts_while_down()
    assert 1 <= n <= MAX_SYNS, f"{n} SYNs in {WINDOW}s into the black hole"
    st.p.restore()
    st.sd.wait_established(st.peer_addr, timeout=30)
    st.wait_plan("table after the black hole is lifted")


@pytest.mark.parametrize("kind", KINDS)
def test_tcp_reset(lab, kind):
    st = Setup(lab, kind)
    base = len(st.causes())
    # destroy the router's socket: the kernel sends speakerd a RST
    st.p.exec("ss", "-K", "dst", st.speaker_addr, "dport", "=", "179")
    st.p.exec("ss", "-K", "dst", st.speaker_addr, "sport", "=", "179")
    wait_for(lambda: len(st.causes()) > base, DETECT_BOUND, "speakerd sees the reset")
    assert st.causes()[-1] == "tcp_failed", st.causes()
    st.sd.wait_established(st.peer_addr, timeout=30)
    st.wait_plan("table after the reset")
    assert st.sd.proc.alive


@pytest.mark.parametrize("kind", KINDS)
def test_md5_key_changed(lab, kind):
    st = Setup(lab, kind, password="s3cret")
    if kind == "frr":
        st.peer.configure(f"router bgp {ASN}", f"neighbor {st.speaker_addr} password n3w")
    else:  # GoBGP takes a new key with a restart
        st.peer.neighbors = [dataclasses.replace(n, password="n3w") for n in st.peer.neighbors]
        st.peer.restart()
    st.wait_down("session down after FRR's key changed")
    fails = st.s.nstat("TcpExtTCPMD5Failure") + st.p.nstat("TcpExtTCPMD5Failure")
    # never re-established while the keys differ; the kernel drops the mismatched segments
    assert holds_for(lambda: not st.sd.established(st.peer_addr) and not st.peer.established(st.speaker_addr), 5)
    wait_for(lambda: st.s.nstat("TcpExtTCPMD5Failure") + st.p.nstat("TcpExtTCPMD5Failure") > fails, 10,
             "TCP-MD5 failures counted")
    # speakerd gets the new key by reload: a session parameter, so a new session
    st.objects[1]["spec"]["password"] = "n3w"
    manifests(st.cdir, st.objects)
    rc, out = reload(st.sd)
    assert rc == 0, out
    st.sd.wait_established(st.peer_addr, timeout=30)
    st.wait_plan("table once the keys match again")
