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


def write_kubeconfig(path, url: str) -> str:
    path.write_bytes(orjson.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "emu",
        "clusters": [{"name": "emu", "cluster": {"server": url}}],
        "users": [{"name": "u", "user": {"token": "test-token"}}],
        "contexts": [{"name": "emu", "context": {"cluster": "emu", "user": "u", "namespace": "default"}}]}))
    return str(path)


@pytest.fixture
async def kube(emu, tmp_path):
    from speakerd.kube.config import load_client
    client = await load_client(write_kubeconfig(tmp_path / "kubeconfig", emu.url))
    yield client
    await client.close()


async def wait_until(pred, timeout: float = 10.0, what: str = "condition"):
    """Wait for ``pred()`` to hold (polling the event loop); fail after ``timeout`` s."""
    import asyncio
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not pred():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)
