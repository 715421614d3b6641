"""An unnumbered peer's router address is the holder of the main connection: a collision
candidate from another link-local source, which may still lose, does not replace it."""
from __future__ import annotations

import asyncio

from speakerd.fsm.settings import SessionSettings
from speakerd.net.peer import PeerTransport, _Conn
from speakerd.wire.capabilities import IPV6_UNICAST


class FakeTransport(asyncio.Transport):
    def __init__(self, local: str, remote: str) -> None:
        super().__init__()
        self.extra = {"sockname": (local, 179, 0, 9), "peername": (remote, 40000, 0, 9), "socket": None}
        self.written: list[bytes] = []
        self.closed = False
        self.protocol: _Conn | None = None

    def get_extra_info(self, name, default=None):
        return self.extra.get(name, default)

    def set_write_buffer_limits(self, high=None, low=None) -> None:
        pass

    def write(self, data) -> None:
        self.written.append(bytes(data))

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            asyncio.get_running_loop().call_soon(self.protocol.connection_lost, None)

    def is_closing(self) -> bool:
        return self.closed


def connection(remote: str) -> _Conn:
    conn = _Conn()
    transport = FakeTransport("fe80::1", remote)
    transport.protocol = conn
    conn.connection_made(transport)
    return conn


async def scenario() -> PeerTransport:
    peer = PeerTransport(SessionSettings(local_asn=64512, peer_asn=64513, router_id=1, name="tor",
                                         interface="eth9", passive=True, families=(IPV6_UNICAST,)))
    peer.start()
    first = connection("fe80::aa")
    peer.accept_connection(first)  # the main machine: Active -> OpenSent
    assert peer.discovered_address == "fe80::aa%eth9"
    second = connection("fe80::bb")
    peer.accept_connection(second)  # a collision candidate while the main is in OpenSent
    assert peer.sessions.candidate is not None and not second.transport.closed
    return peer


def test_a_collision_candidate_does_not_replace_the_router_address():
    async def run():
        peer = await scenario()
        assert peer.discovered_address == "fe80::aa%eth9"
        await asyncio.wait_for(peer.stop("test", notify=False), 5)
    asyncio.run(run())
