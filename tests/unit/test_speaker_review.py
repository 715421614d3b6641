"""Speaker edge cases found in review: stop racing a reload, BFD that cannot
start, flap counting on a config-change reset, capture arguments.

Everything runs in-process on 127.0.0.0/8 with ports nothing listens on; the
speakers are stopped in ``finally`` blocks.
"""
from __future__ import annotations

import asyncio

import pytest

from speakerd.speaker import Speaker
from test_daemon_harness import loopback_endpoints

PEER = """apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {{name: {name}, namespace: metallb-system}}
spec:
  myASN: {my}
  peerASN: {other}
  peerAddress: {peer}
  peerPort: {port}
  sourceAddress: {source}
  connectTime: 60s
  holdTime: 9s
{extra}---
"""


def peer_yaml(name, peer, source, port, my=64512, other=64513, extra=""):
    return PEER.format(name=name, peer=peer, source=source, port=port, my=my, other=other, extra=extra)


@pytest.mark.asyncio
async def test_stop_waits_for_a_reload_in_progress_and_leaves_nothing_running(tmp_path):
    a, b, port = loopback_endpoints()
    cfg = tmp_path / "peers.yaml"
    cfg.write_text(peer_yaml("old", b, a, port))
    sp = Speaker([str(cfg)], "node-a", state_path=str(tmp_path / "state.json"))
    await sp.start()
    gate = asyncio.Event()
    entered = asyncio.Event()
    old_peer = sp.peers["old"].peer
    real_stop = old_peer.stop

    async def slow_stop(*args, **kwargs):  # a Cease that takes a while to flush
        entered.set()
        await gate.wait()
        await real_stop(*args, **kwargs)

    old_peer.stop = slow_stop
    try:
        # "old" removed, "new" added: the reload blocks in the removal
        cfg.write_text(peer_yaml("new", b, a, port + 1))
        reload_task = asyncio.ensure_future(sp.reload("test"))
        await entered.wait()
        stop_task = asyncio.ensure_future(sp.stop())
        while not sp._stopping:  # stop has begun and now waits for the reload
            await asyncio.sleep(0)
        assert not stop_task.done()
        gate.set()
        result = await reload_task
        await stop_task
        assert result["ok"] and result["added"] == ["new"]
        # the session the reload started was stopped too, and no listener is left open
        assert all(rt.peer.sessions.main.stopped for rt in sp.peers.values())
        assert sp.listeners == {}
        # a reload after stop starts nothing
        cfg.write_text(peer_yaml("later", b, a, port))
        after = await sp.reload("test")
        assert after == {"ok": False, "errors": ["speakerd is stopping"]}
        assert "later" not in sp.peers and sp.listeners == {}
    finally:
        gate.set()
        await sp.stop()


BFD_PROFILE = """apiVersion: metallb.io/v1beta1
kind: BFDProfile
metadata: {name: fast, namespace: metallb-system}
spec: {receiveInterval: 300, transmitInterval: 300}
---
"""


class _OneSessionPerAddress:
    """A BfdManager stand-in with its rule: one session per (VRF, peer address)."""

    def __init__(self):
        self.sessions_by_peer = {}

    def add(self, peer_address, local, profile, multihop, vrf, on_state):
        if (vrf, peer_address) in self.sessions_by_peer:
            raise ValueError(f"BFD session for {peer_address} already exists")
        self.sessions_by_peer[(vrf, peer_address)] = profile

    def remove(self, peer_address, vrf=None):
        self.sessions_by_peer.pop((vrf, peer_address), None)

    def update_profile(self, peer_address, profile, vrf=None):
        self.sessions_by_peer[(vrf, peer_address)] = profile

    def close(self, quiet=frozenset()):
        pass


@pytest.mark.asyncio
async def test_two_peers_with_bfd_to_one_address_do_not_stop_the_daemon(tmp_path):
    # the same router on two ports of one VRF, both with a BFD profile
    a, b, port = loopback_endpoints()
    cfg = tmp_path / "peers.yaml"
    bfd = "  bfdProfile: fast\n"
    cfg.write_text(BFD_PROFILE + peer_yaml("p1", b, a, port, extra=bfd) + peer_yaml("p2", b, a, port + 1, extra=bfd))
    sp = Speaker([str(cfg)], "node-a", state_path=str(tmp_path / "state.json"))
    sp.bfd = _OneSessionPerAddress()
    try:
        await sp.start()
        assert sorted(sp.peers) == ["p1", "p2"]
        assert [rt.bfd_active for _, rt in sorted(sp.peers.items())] == [True, False]
        assert len(sp.listeners) == 2
    finally:
        await sp.stop()


async def _established(sp: Speaker, name: str, timeout: float = 10.0) -> None:
    """Wait until the session ``name`` is Established, woken by its own events."""
    changed = asyncio.Event()
    real = sp._on_peer_event

    def spy(rt, event) -> None:
        real(rt, event)
        changed.set()

    sp._on_peer_event = spy  # the speaker's per-peer callbacks call self._on_peer_event
    try:
        async with asyncio.timeout(timeout):  # a safety net, not a synchronisation
            while sp.peers[name].peer.state.label != "Established":
                changed.clear()
                await changed.wait()
    finally:
        del sp._on_peer_event


@pytest.mark.asyncio
async def test_config_change_reset_counts_one_flap_and_none_when_not_established(tmp_path):
    a, b, port = loopback_endpoints()
    cfg_a, cfg_b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    cfg_a.write_text(peer_yaml("to-b", b, a, port, my=64512, other=64513))
    cfg_b.write_text(peer_yaml("to-a", a, b, port, my=64513, other=64512))
    sa = Speaker([str(cfg_a)], "node-a", state_path=str(tmp_path / "sa.json"))
    sb = Speaker([str(cfg_b)], "node-b", state_path=str(tmp_path / "sb.json"))
    try:
        await sa.start()
        # a session that never came up (nobody listens yet) did not flap
        cfg_a.write_text(cfg_a.read_text().replace("holdTime: 9s", "holdTime: 12s"))
        assert (await sa.reload("test"))["reset"] == ["to-b"]
        assert dict(sa.peers["to-b"].flaps) == {}
        await sb.start()
        await _established(sa, "to-b")
        cfg_a.write_text(cfg_a.read_text().replace("holdTime: 12s", "holdTime: 6s"))
        assert (await sa.reload("test"))["reset"] == ["to-b"]
        assert dict(sa.peers["to-b"].flaps) == {"config_change": 1}
    finally:
        await sa.stop()
        await sb.stop()


@pytest.mark.asyncio
@pytest.mark.parametrize("seconds", ["abc", "nan", -1, [1]])
async def test_capture_with_bad_seconds_is_answered_and_the_connection_stays_usable(tmp_path, seconds):
    import json

    from speakerd.control.server import ControlServer
    a, b, port = loopback_endpoints()
    cfg = tmp_path / "peers.yaml"
    cfg.write_text(peer_yaml("p1", b, a, port))
    sp = Speaker([str(cfg)], "node-a", state_path=str(tmp_path / "state.json"))
    await sp.start()
    server = ControlServer(sp, str(tmp_path / "ctl.sock"))
    await server.start()
    writer = None
    try:
        reader, writer = await asyncio.open_unix_connection(str(tmp_path / "ctl.sock"))
        writer.write(json.dumps({"command": "capture", "args": {"peer": "p1", "seconds": seconds}}).encode() + b"\n")
        writer.write(b'{"command": "health"}\n')
        first = json.loads(await asyncio.wait_for(reader.readline(), 5))
        assert first["ok"] is False and "seconds" in first["error"]
        second = json.loads(await asyncio.wait_for(reader.readline(), 5))
        assert second == {"ok": True, "result": {"ok": True, "peers": 1, "established": 0}}
        assert sp.capture_subscribers.get("p1", []) == []
    finally:
        if writer is not None:
            writer.close()
        await server.close()
        await sp.stop()


@pytest.mark.asyncio
async def test_a_new_peer_port_drops_the_old_ports_metric_series(tmp_path):
    from speakerd.metrics import Metrics, peer_label
    a, b, port = loopback_endpoints()
    cfg = tmp_path / "peers.yaml"
    cfg.write_text(peer_yaml("p1", b, a, port) + peer_yaml("p2", a, b, port))
    metrics = Metrics()
    sp = Speaker([str(cfg)], "node-a", state_path=str(tmp_path / "state.json"), metrics=metrics)
    await sp.start()
    try:
        assert metrics.peers() == sorted([peer_label(b, port), peer_label(a, port)])
        cfg.write_text(peer_yaml("p1", b, a, port + 1) + peer_yaml("p2", a, b, port))
        assert (await sp.reload("test"))["reset"] == ["p1"]
        assert metrics.peers() == sorted([peer_label(b, port + 1), peer_label(a, port)])
        assert f'peer="{peer_label(b, port)}"' not in metrics.render().decode()
        # a reset that keeps the address and port keeps the series
        cfg.write_text(peer_yaml("p1", b, a, port + 1).replace("holdTime: 9s", "holdTime: 6s")
                       + peer_yaml("p2", a, b, port))
        assert (await sp.reload("test"))["reset"] == ["p1"]
        assert metrics.peers() == sorted([peer_label(b, port + 1), peer_label(a, port)])
    finally:
        await sp.stop()


@pytest.mark.asyncio
async def test_reset_of_an_unconnected_peer_keeps_its_listener(tmp_path):
    # the router is down (nobody listens there) when the operator changes the hold time
    a, b, port = loopback_endpoints()
    cfg = tmp_path / "peers.yaml"
    cfg.write_text(peer_yaml("p1", b, a, port))
    sp = Speaker([str(cfg)], "node-a", state_path=str(tmp_path / "state.json"))
    await sp.start()
    try:
        cfg.write_text(peer_yaml("p1", b, a, port).replace("holdTime: 9s", "holdTime: 6s"))
        assert (await sp.reload("test"))["reset"] == ["p1"]
        assert list(sp.listeners) == [(a, port, None)]
        # and the router can still connect in
        _, w = await asyncio.wait_for(asyncio.open_connection(a, port, local_addr=(b, 0)), 5)
        w.close()
        # a renamed BGPPeer (removed + added, same address) keeps it too
        cfg.write_text(peer_yaml("p1-renamed", b, a, port))
        assert (await sp.reload("test"))["added"] == ["p1-renamed"]
        assert list(sp.listeners) == [(a, port, None)]
        _, w = await asyncio.wait_for(asyncio.open_connection(a, port, local_addr=(b, 0)), 5)
        w.close()
    finally:
        await sp.stop()
