"""Fixtures for the Kubernetes API layer tests: an emulator on loopback and an HTTP session to it."""
from __future__ import annotations

import aiohttp
import orjson
import pytest

from tests.kubeemu import Emulator


@pytest.fixture
async def emu():
    async with Emulator("127.0.0.1", 0) as e:
        yield e


class Http:
    """A tiny JSON client for asserting the emulator's answers byte-for-byte as a client gets them."""

    def __init__(self, base: str, session: aiohttp.ClientSession) -> None:
        self.base, self.session = base, session

    async def req(self, method: str, path: str, body=None, ctype: str = "application/json"):
        data = orjson.dumps(body) if body is not None else None
        async with self.session.request(method, self.base + path, data=data,
                                        headers={"Content-Type": ctype}) as r:
            return r.status, orjson.loads(await r.read())

    async def watch(self, path: str, until=None, limit: int | None = None) -> list[dict]:
        """Read watch events until the stream ends, ``until(event)`` is true, or ``limit`` events."""
        out = []
        async with self.session.get(self.base + path) as r:
            assert r.status == 200, await r.text()
            async for line in r.content:
                if not line.strip():
                    continue
                ev = orjson.loads(line)
                out.append(ev)
                if (until and until(ev)) or (limit and len(out) >= limit):
                    break
        return out


@pytest.fixture
async def http(emu):
    async with aiohttp.ClientSession() as s:
        yield Http(emu.url, s)
