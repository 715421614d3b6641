"""The little of the Kubernetes API the controller needs, over aiohttp: credentials
(kubeconfig or in-cluster service account), requests, and a list+watch reflector that
resumes from the last resourceVersion and re-lists on 410 Gone.

Objects stay plain dicts (as the API server sends them).  ``ApiError`` carries the HTTP
status (409 Conflict, 404 Not Found...)."""
from __future__ import annotations

import asyncio
import base64
import logging
import os
import ssl
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
import orjson
import yaml

log = logging.getLogger("speakerd.controller.kube")

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
MERGE = "application/merge-patch+json"


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


@dataclass
class Credentials:
    server: str
    token: str | None = None
    ssl: ssl.SSLContext | bool | None = None
    namespace: str = "default"


def _data_file(data: str, suffix: str) -> str:
    fd, path = tempfile.mkstemp(suffix=suffix)
    with os.fdopen(fd, "wb") as fh:
        fh.write(base64.b64decode(data))
    return path


def load_kubeconfig(path: str, context: str | None = None) -> Credentials:
    """Server, token/client certificate and CA of the current (or named) context."""
    with open(path, encoding="utf-8") as fh:
        cfg = yaml.safe_load(fh) or {}
    ctx_name = context or cfg.get("current-context")
    ctx = next((c["context"] for c in cfg.get("contexts") or () if c.get("name") == ctx_name), None)
    if ctx is None:
        raise ValueError(f"{path}: no context {ctx_name!r}")
    cluster = next(c["cluster"] for c in cfg.get("clusters") or () if c.get("name") == ctx.get("cluster"))
    user = next((u.get("user") or {} for u in cfg.get("users") or () if u.get("name") == ctx.get("user")), {})
    server = cluster["server"]
    sslctx: ssl.SSLContext | bool | None = None
    if server.startswith("https"):
        if cluster.get("insecure-skip-tls-verify"):
            sslctx = False
        else:
            ca = cluster.get("certificate-authority")
            if cluster.get("certificate-authority-data"):
                ca = _data_file(cluster["certificate-authority-data"], ".crt")
            sslctx = ssl.create_default_context(cafile=ca)
        cert, key = user.get("client-certificate"), user.get("client-key")
        if user.get("client-certificate-data"):
            cert = _data_file(user["client-certificate-data"], ".crt")
        if user.get("client-key-data"):
            key = _data_file(user["client-key-data"], ".key")
        if cert and isinstance(sslctx, ssl.SSLContext):
            sslctx.load_cert_chain(cert, key)
    token = user.get("token")
    if not token and user.get("tokenFile"):
        with open(user["tokenFile"], encoding="utf-8") as fh:
            token = fh.read().strip()
    return Credentials(server.rstrip("/"), token, sslctx, ctx.get("namespace") or "default")


def in_cluster() -> Credentials:
    host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    host = f"[{host}]" if ":" in host else host
    with open(f"{SA_DIR}/token", encoding="utf-8") as fh:
        token = fh.read().strip()
    with open(f"{SA_DIR}/namespace", encoding="utf-8") as fh:
        ns = fh.read().strip()
    return Credentials(f"https://{host}:{port}", token, ssl.create_default_context(cafile=f"{SA_DIR}/ca.crt"), ns)


class Api:
    """Requests to one API server; counts them (``requests``) for the benchmarks and logs."""

    def __init__(self, creds: Credentials) -> None:
        self.creds = creds
        self.requests = 0
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> "Api":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    def _s(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            headers = {"Accept": "application/json", "User-Agent": "speakerd-controller"}
            if self.creds.token:
                headers["Authorization"] = f"Bearer {self.creds.token}"
            conn = aiohttp.TCPConnector(ssl=self.creds.ssl if self.creds.ssl is not None else False, limit=64)
            self._session = aiohttp.ClientSession(self.creds.server, headers=headers, connector=conn,
                                                  json_serialize=lambda o: orjson.dumps(o).decode())
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def request(self, method: str, path: str, body=None, content_type: str = "application/json",
                      params: dict | None = None) -> dict:
        self.requests += 1
        data = orjson.dumps(body) if body is not None else None
        async with self._s().request(method, path, data=data, params=params,
                                     headers={"Content-Type": content_type} if data is not None else None) as r:
            raw = await r.read()
            if r.status >= 400:
                try:
                    msg = orjson.loads(raw).get("message", "")
                except orjson.JSONDecodeError:
                    msg = raw[:200].decode(errors="replace")
                raise ApiError(r.status, msg)
            return orjson.loads(raw) if raw else {}

    async def watch(self, path: str, rv: str, timeout: int = 300):
        """Watch events (type, object) from resourceVersion `rv`; ends when the server ends it."""
        self.requests += 1
        params = {"watch": "1", "resourceVersion": rv, "allowWatchBookmarks": "true", "timeoutSeconds": str(timeout)}
        async with self._s().get(path, params=params, timeout=aiohttp.ClientTimeout(total=None, sock_read=timeout + 30)) as r:
            if r.status >= 400:
                raise ApiError(r.status, (await r.read())[:200].decode(errors="replace"))
            buf = b""
            async for chunk in r.content.iter_any():
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    if line.strip():
                        ev = orjson.loads(line)
                        yield ev.get("type"), ev.get("object") or {}


def obj_key(obj: dict) -> str:
    md = obj.get("metadata") or {}
    ns = md.get("namespace")
    return f"{ns}/{md.get('name')}" if ns else md.get("name", "")


@dataclass
class Reflector:
    """A local copy of one collection kept by list + watch.  ``on_event(type, obj)`` is called for
    each change (ADDED/MODIFIED/DELETED; a re-list reports what changed meanwhile)."""
    api: Api
    path: str
    on_event: Callable[[str, dict], Awaitable[None] | None]
    name: str = ""
    cache: dict[str, dict] = field(default_factory=dict)
    synced: asyncio.Event = field(default_factory=asyncio.Event)
    rv: str = ""
    relists: int = 0

    async def _emit(self, etype: str, obj: dict) -> None:
        r = self.on_event(etype, obj)
        if asyncio.iscoroutine(r):
            await r

    async def relist(self) -> None:
        """A fresh list replacing the cache: events for the difference."""
        data = await self.api.request("GET", self.path)
        self.relists += 1
        fresh = {obj_key(o): o for o in data.get("items") or ()}
        old, self.cache = self.cache, fresh
        self.rv = (data.get("metadata") or {}).get("resourceVersion", "")
        for k, o in fresh.items():
            prev = old.get(k)
            if prev is None:
                await self._emit("ADDED", o)
            elif (prev.get("metadata") or {}).get("resourceVersion") != (o.get("metadata") or {}).get("resourceVersion"):
                await self._emit("MODIFIED", o)
        for k, o in old.items():
            if k not in fresh:
                await self._emit("DELETED", o)
        self.synced.set()

    async def run(self) -> None:
        backoff = 0.2
        while True:
            try:
                if not self.rv:
                    await self.relist()
                async for etype, obj in self.api.watch(self.path, self.rv):
                    backoff = 0.2
                    if etype == "ERROR":
                        if obj.get("code") == 410:
                            self.rv = ""  # too old: list again
                        break
                    rv = (obj.get("metadata") or {}).get("resourceVersion")
                    if rv:
                        self.rv = rv
                    if etype == "BOOKMARK":
                        continue
                    k = obj_key(obj)
                    if etype == "DELETED":
                        self.cache.pop(k, None)
                    else:
                        self.cache[k] = obj
                    await self._emit(etype, obj)
            except asyncio.CancelledError:
                raise
            except ApiError as exc:
                if exc.status == 410:
                    self.rv = ""
                    continue
                log.warning("watch %s: %s; retrying in %.1f s", self.name or self.path, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError, orjson.JSONDecodeError) as exc:
                log.warning("watch %s: %s; retrying in %.1f s", self.name or self.path, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
