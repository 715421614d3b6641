"""The derived BGP identifier survives reloads that add or remove peers."""
from __future__ import annotations

import ipaddress

import pytest

from speakerd.speaker import Speaker

PEER = """apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {{name: {name}, namespace: metallb-system}}
spec:
  myASN: 64512
  peerASN: 64513
  peerAddress: {peer}
  peerPort: 14179
  sourceAddress: {source}
  connectTime: 60s
---
"""


def _write(path, peers):
    path.write_text("".join(PEER.format(name=n, peer=p, source=s) for n, p, s in peers))


@pytest.mark.asyncio
async def test_adding_a_peer_keeps_the_derived_router_id(tmp_path):
    cfg = tmp_path / "peers.yaml"
    _write(cfg, [("z-peer", "127.0.61.2", "127.0.61.1")])
    sp = Speaker([str(cfg)], "node-a", state_path=str(tmp_path / "state.json"))
    await sp.start()
    try:
        assert ipaddress.IPv4Address(sp.router_id) == ipaddress.IPv4Address("127.0.61.1")
        assert sp.router_id_source == "source address"
        # a peer sorted before the first one, with another source address: a fresh
        # derivation would pick 127.0.62.1 and reset every session
        _write(cfg, [("a-peer", "127.0.62.2", "127.0.62.1"), ("z-peer", "127.0.61.2", "127.0.61.1")])
        result = await sp.reload("test")
        assert result["ok"] and result["added"] == ["a-peer"] and result["reset"] == []
        assert ipaddress.IPv4Address(sp.router_id) == ipaddress.IPv4Address("127.0.61.1")
        # a configured routerID does change it (and therefore every session)
        text = cfg.read_text().replace("  connectTime: 60s\n", "  connectTime: 60s\n  routerID: 10.9.9.9\n")
        cfg.write_text(text)
        result = await sp.reload("test")
        assert result["ok"] and sorted(result["reset"]) == ["a-peer", "z-peer"]
        assert ipaddress.IPv4Address(sp.router_id) == ipaddress.IPv4Address("10.9.9.9")
    finally:
        await sp.stop()
