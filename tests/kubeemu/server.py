"""The emulator's HTTP front: kube-apiserver URL layout over aiohttp, backed by :class:`Store`.

Paths: ``/api/v1/...`` and ``/apis/GROUP/VERSION/...`` with ``[namespaces/NS/]PLURAL[/NAME[/status]]``;
discovery (``/api``, ``/apis``, ``/api/v1``, ``/apis/G/V``, ``/version``). Watches: ``?watch=1|true``
with ``resourceVersion``, ``allowWatchBookmarks``, ``timeoutSeconds``; lists: ``limit``/``continue``.
Selectors: ``labelSelector``, ``fieldSelector``. Control endpoints for tests and harnesses (not
Kubernetes API): ``GET /_emulator/stats``, ``POST /_emulator/compact``, ``/_emulator/bookmark``,
``/_emulator/close-watches``, ``/_emulator/save``, ``/_emulator/churn?rate=R&count=N`` (benchmarks).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import orjson
from aiohttp import web

from .resources import Registry, ResourceInfo
from .selectors import SelectorError, combine, field_matcher, label_matcher
from .store import ApiError, Store, entries_json

log = logging.getLogger("kubeemu")

_TRUE = {"1", "true", "True", "yes"}


def _json(data, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _error(exc: ApiError) -> web.Response:
    return _json(exc.status(), exc.code)


class Emulator:
    """A Kubernetes API server emulator. ``async with Emulator() as emu:`` serves on ``emu.url``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, history: int = 10_000,
                 bookmark_interval: float = 0.0, state_file: str | Path | None = None,
                 registry: Registry | None = None, rv_start: int = 0) -> None:
        self.host, self.port = host, port
        self.registry = registry or Registry()
        self.store = Store(history=history, rv_start=rv_start)
        self.bookmark_interval = bookmark_interval
        self.state_file = Path(state_file) if state_file else None
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task] = set()
        self._churn_seq = 0
        self._by_storage = {i.storage: i for i in self.registry.all()}
        if self.state_file and self.state_file.exists():
            n = self.store.restore(self.state_file.read_bytes(), self._by_storage.get)
            log.info("restored %d objects at resourceVersion %d from %s", n, self.store.rv, self.state_file)
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.router.add_route("*", "/{tail:.*}", self._dispatch)

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False,
                                     shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        if self.bookmark_interval > 0:
            self._spawn(self._bookmarks())

    async def stop(self) -> None:
        self.store.close_watches()
        for t in list(self._tasks):
            t.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.save()

    def save(self) -> None:
        if self.state_file:
            tmp = self.state_file.with_suffix(self.state_file.suffix + ".tmp")
            tmp.write_bytes(self.store.dump())
            tmp.replace(self.state_file)

    async def __aenter__(self) -> "Emulator":
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    def _spawn(self, coro) -> None:
        t = asyncio.ensure_future(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    async def _bookmarks(self) -> None:
        while True:
            await asyncio.sleep(self.bookmark_interval)
            self.store.bookmark()

    async def churn(self, info: ResourceInfo, rate: float, count: int) -> int:
        """Change ``count`` objects of a kind at ``rate`` per second (a label each: one MODIFIED
        event per change, the whole object sent as a watch delivers it). For benchmarks."""
        loop = asyncio.get_running_loop()
        keys = list(self.store.objects.get(info.storage, {}))
        if not keys:
            return 0
        start, done = loop.time(), 0
        while done < count:
            due = min(count, int((loop.time() - start) * rate) + 1)
            while done < due:
                ns, name = keys[done % len(keys)]
                self._churn_seq += 1
                self.store.patch(info, ns, name, {"metadata": {"labels": {"bench.speakerd.io/rev": str(self._churn_seq)}}},
                                 "application/merge-patch+json")
                done += 1
            await asyncio.sleep(max(0.0, start + done / rate - loop.time()))
        return done

    # -- in-process helpers for tests ------------------------------------------------------------

    def resource(self, api_version: str, plural: str) -> ResourceInfo:
        group, _, version = api_version.rpartition("/")
        info = self.registry.get(group, version, plural)
        if info is None:
            raise KeyError(f"{api_version} {plural}")
        return info

    def put(self, api_version: str, plural: str, obj: dict) -> dict:
        """Create (or replace, status included) an object as a client would see it written."""
        info = self.resource(api_version, plural)
        md = obj["metadata"]
        ns = md.get("namespace", "default") if info.namespaced else ""
        try:
            current = self.store.get(info, ns, md["name"])
        except ApiError:
            entry = self.store.create(info, ns, obj)
            if info.has_status and "status" in obj:
                entry = self.store.replace(info, ns, md["name"], {**entry.obj, "status": obj["status"]}, "status")
            return entry.obj
        body = {**obj, "metadata": {**md, "resourceVersion": current.obj["metadata"]["resourceVersion"]}}
        entry = self.store.replace(info, ns, md["name"], body)
        if info.has_status:
            entry = self.store.replace(info, ns, md["name"], {**entry.obj, "status": obj.get("status")}
                                       if "status" in obj else {k: v for k, v in entry.obj.items() if k != "status"},
                                       "status")
        return entry.obj

    # -- HTTP ------------------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["tail"].strip("/")
        parts = path.split("/") if path else []
        try:
            if parts and parts[0] == "_emulator":
                return self._control(request, parts[1:])
            if parts == ["version"]:
                return _json({"major": "1", "minor": "31", "gitVersion": "v1.31.0-kubeemu", "platform": "linux/amd64"})
            if parts == ["api"]:
                return _json({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})
            if parts == ["apis"]:
                return _json(self._group_list())
            if parts[:1] == ["api"] and len(parts) >= 2:
                group, version, rest = "", parts[1], parts[2:]
            elif parts[:1] == ["apis"] and len(parts) >= 3:
                group, version, rest = parts[1], parts[2], parts[3:]
            elif parts[:1] == ["apis"] and len(parts) == 2:
                g = self.registry.groups().get(parts[1])
                if g is None:
                    raise ApiError(404, "NotFound", "the server could not find the requested resource")
                return _json(self._group(parts[1], g))
            else:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            if not rest:
                doc = self.registry.resource_list(group, version)
                if doc is None:
                    raise ApiError(404, "NotFound", "the server could not find the requested resource")
                return _json(doc)
            return await self._resource(request, group, version, rest)
        except ApiError as exc:
            return _error(exc)
        except SelectorError as exc:
            return _error(ApiError(400, "BadRequest", str(exc)))

    def _group(self, name: str, versions: list[str]) -> dict:
        vs = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
        return {"kind": "APIGroup", "apiVersion": "v1", "name": name, "versions": vs,
                "preferredVersion": vs[-1]}

    def _group_list(self) -> dict:
        return {"kind": "APIGroupList", "apiVersion": "v1",
                "groups": [self._group(n, vs) for n, vs in self.registry.groups().items()]}

    def _control(self, request: web.Request, parts: list[str]) -> web.Response:
        s = self.store
        if parts == ["stats"]:
            return _json({"resourceVersion": s.rv, "compactedResourceVersion": s.compacted_rv,
                          "writes": s.writes, "requests": dict(s.requests),
                          "watchers": sum(len(w) for w in s.watchers.values()),
                          "objects": {k: len(v) for k, v in s.objects.items()}})
        if request.method != "POST":
            raise ApiError(405, "MethodNotAllowed", "POST only")
        if parts == ["compact"]:
            s.compact()
            return _json({"compactedResourceVersion": s.compacted_rv})
        if parts == ["bookmark"]:
            return _json({"sent": s.bookmark()})
        if parts == ["close-watches"]:
            return _json({"closed": s.close_watches()})
        if parts == ["churn"]:
            q = request.query
            info = self.resource(q.get("apiVersion", "v1"), q.get("plural", "services"))
            self._spawn(self.churn(info, float(q.get("rate", 500)), int(q.get("count", 1000))))
            return _json({"started": True})
        if parts == ["save"]:
            self.save()
            return _json({"saved": str(self.state_file)})
        raise ApiError(404, "NotFound", "unknown control endpoint")

    async def _body(self, request: web.Request):
        data = await request.read()
        if not data:
            return None
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            if "yaml" in request.content_type:
                import yaml
                return yaml.safe_load(data)
            raise ApiError(400, "BadRequest", "request body is not valid JSON") from None

    async def _resource(self, request: web.Request, group: str, version: str,
                        rest: list[str]) -> web.StreamResponse:
        ns: str | None = None
        if rest[0] == "namespaces" and len(rest) >= 3 and not (len(rest) == 3 and rest[2] == "status"):
            ns, rest = rest[1], rest[2:]
        plural = rest[0]
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if len(rest) > 3:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        info = self.registry.get(group, version, plural)
        if info is None:
            raise ApiError(404, "NotFound", f"the server could not find the requested resource ({plural})")
        if sub is not None and sub not in info.subresources:
            raise ApiError(404, "NotFound", f"no subresource {sub!r} for {plural}")
        if info.namespaced and name is not None and ns is None:
            raise ApiError(404, "NotFound", "a namespaced object needs a namespace in its path")
        if not info.namespaced:
            if ns is not None:
                raise ApiError(404, "NotFound", f"{plural} is not namespaced")
        q = request.query
        method = request.method
        ons = ns if info.namespaced else ""
        if name is None:
            if method == "GET":
                matcher = combine(label_matcher(q.get("labelSelector")), field_matcher(q.get("fieldSelector"), info.supports_field))
                if q.get("watch") in _TRUE:
                    return await self._watch(request, info, ns if info.namespaced else None, matcher)
                return self._list(info, ns if info.namespaced else None, matcher, q)
            if method == "POST":
                if info.namespaced and ns is None:
                    raise ApiError(405, "MethodNotAllowed", "create needs a namespace in its path")
                entry = self.store.create(info, ons or "", await self._body(request))
                return web.Response(body=entries_json([entry], info)[0], status=201, content_type="application/json")
            raise ApiError(405, "MethodNotAllowed", f"{method} not allowed on a collection")
        if method == "GET":
            self.store.requests["get"] += 1
            entry = self.store.get(info, ons, name)
        elif method == "PUT":
            entry = self.store.replace(info, ons, name, await self._body(request), sub)
        elif method == "PATCH":
            entry = self.store.patch(info, ons, name, await self._body(request), request.content_type, sub)
        elif method == "DELETE":
            entry = self.store.delete(info, ons, name, await self._body(request))
        else:
            raise ApiError(405, "MethodNotAllowed", f"{method} not allowed")
        return web.Response(body=entries_json([entry], info)[0], content_type="application/json")

    def _list(self, info: ResourceInfo, ns: str | None, matcher, q) -> web.Response:
        self.store.requests["list"] += 1
        try:
            limit = int(q.get("limit") or 0)
        except ValueError:
            raise ApiError(400, "BadRequest", "limit must be an integer") from None
        rv, entries, cont, remaining = self.store.list(info, ns, matcher, limit, q.get("continue"))
        meta: dict = {"resourceVersion": str(rv)}
        if cont:
            meta["continue"] = cont
            meta["remainingItemCount"] = remaining
        head = orjson.dumps({"kind": info.kind + "List", "apiVersion": info.api_version, "metadata": meta})
        body = head[:-1] + b',"items":[' + b",".join(entries_json(entries, info)) + b"]}"
        return web.Response(body=body, content_type="application/json")

    async def _watch(self, request: web.Request, info: ResourceInfo, ns: str | None, matcher) -> web.StreamResponse:
        q = request.query
        self.store.requests["watch"] += 1
        timeout = q.get("timeoutSeconds")
        w = self.store.watch(info, ns, matcher, q.get("resourceVersion"), q.get("allowWatchBookmarks") in _TRUE)
        resp = web.StreamResponse(headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
        loop = asyncio.get_running_loop()
        deadline = loop.time() + float(timeout) if timeout else None
        try:
            await resp.prepare(request)
            while not w.ended:
                wait = 5.0 if deadline is None else min(5.0, deadline - loop.time())
                if wait <= 0:
                    break
                await w.wait(wait)
                data = w.take()
                if data:
                    await resp.write(data)
                elif not w.closed and (request.transport is None or request.transport.is_closing()):
                    # nothing for a while: a client that went away frees its watcher even when
                    # nothing is written to it (aiohttp does not cancel the handler)
                    break
            with contextlib.suppress(ConnectionError, RuntimeError):
                await resp.write_eof()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.store.unwatch(w)
        return resp
