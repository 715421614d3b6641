"""A thin raw-dict client over ``kubernetes_asyncio``'s ApiClient.

kubernetes_asyncio supplies what is hard to get right (kubeconfig contexts, exec and OIDC
credential plugins, client certificates, token refresh, in-cluster service-account files, TLS);
speakerd calls its ``call_api`` with ``_preload_content=False`` and decodes the bytes with orjson
into plain dicts, skipping its typed models (for a list of 100k Services, 6.6x the CPU and 1.7x
the memory of the raw decode; see ``bench/kube_clients.py``).

:class:`KubeClient` has one method per verb: ``get``, ``list``, ``watch`` (an async iterator of event
dicts), ``create``, ``replace``, ``patch`` (merge patch by default; ``subresource="status"``),
``delete``. Failures are :class:`ApiError` (HTTP status and the API's Status object) or
:class:`ConnectionError`-family errors from aiohttp / asyncio timeouts.
"""
from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator

import aiohttp
import orjson

from .kinds import Kind

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


class ApiError(Exception):
    """A non-2xx answer of the API server: ``status`` (HTTP code), ``reason`` and ``body`` (Status)."""

    def __init__(self, status: int, body: dict | None, text: str = "") -> None:
        self.status = status
        self.body = body or {}
        self.reason = self.body.get("reason", "")
        super().__init__(f"{status} {self.reason}: {self.body.get('message', text)[:300]}")

    @property
    def conflict(self) -> bool:
        return self.status == 409 and self.reason != "AlreadyExists"

    @property
    def already_exists(self) -> bool:
        return self.status == 409 and self.reason == "AlreadyExists"

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def gone(self) -> bool:
        return self.status == 410


# Errors that mean "the API server is unreachable or the stream broke": retry, keep the cache.
TRANSIENT = (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError, OSError)


class KubeClient:
    """Raw JSON access to the API; build it with :func:`speakerd.kube.config.load_client`."""

    def __init__(self, api_client: Any) -> None:
        self.api = api_client  # kubernetes_asyncio.client.ApiClient

    @property
    def host(self) -> str:
        return self.api.configuration.host

    async def close(self) -> None:
        await self.api.close()

    async def __aenter__(self) -> "KubeClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def _call(self, method: str, path: str, query: list[tuple[str, str]] | None = None,
                    body: Any = None, content_type: str = "application/json",
                    timeout: float | None = 30.0) -> aiohttp.ClientResponse:
        headers = {"Accept": "application/json", "Content-Type": content_type}
        resp = await self.api.call_api(
            path, method, query_params=query or [], header_params=headers,
            body=body, auth_settings=["BearerToken"], _preload_content=False,
            _return_http_data_only=True, _request_timeout=timeout)
        return resp

    async def _json(self, method: str, path: str, query=None, body=None, content_type="application/json") -> dict:
        from kubernetes_asyncio.client.exceptions import ApiException
        try:
            resp = await self._call(method, path, query, body, content_type)
            data = await resp.read()
        except ApiException as exc:
            raise _api_error(exc.status, exc.body) from None
        if resp.status >= 400:
            raise _api_error(resp.status, data)
        return orjson.loads(data)

    # -- verbs -----------------------------------------------------------------------------------

    async def get(self, kind: Kind, namespace: str | None, name: str, subresource: str | None = None) -> dict:
        return await self._json("GET", kind.path(namespace, name, subresource))

    async def list(self, kind: Kind, namespace: str | None = None, *, label_selector: str | None = None,
                   field_selector: str | None = None, limit: int | None = None,
                   continue_: str | None = None, resource_version: str | None = None) -> dict:
        q = _selectors(label_selector, field_selector)
        if limit:
            q.append(("limit", str(limit)))
        if continue_:
            q.append(("continue", continue_))
        if resource_version is not None:
            q.append(("resourceVersion", resource_version))
        return await self._json("GET", kind.path(namespace), q)

    async def watch(self, kind: Kind, namespace: str | None = None, *, resource_version: str | None = None,
                    label_selector: str | None = None, field_selector: str | None = None,
                    timeout_seconds: int | None = None, bookmarks: bool = True,
                    idle_timeout: float | None = None, on_open=None) -> AsyncIterator[dict]:
        """Yield watch events (``{"type", "object"}`` dicts) until the server ends the stream.

        ``idle_timeout``: give up (raise ``asyncio.TimeoutError``) when nothing, not even a
        bookmark, arrived for that long: a half-open connection would otherwise wait forever.
        ``on_open()`` is called once the server accepted the watch (HTTP 200).
        """
        from kubernetes_asyncio.client.exceptions import ApiException
        q = _selectors(label_selector, field_selector)
        q.append(("watch", "1"))
        if resource_version:
            q.append(("resourceVersion", resource_version))
        if bookmarks:
            q.append(("allowWatchBookmarks", "true"))
        if timeout_seconds:
            q.append(("timeoutSeconds", str(timeout_seconds)))
        try:
            resp = await self._call("GET", kind.path(namespace), q, timeout=aiohttp.ClientTimeout(
                total=None, sock_connect=30, sock_read=idle_timeout))
        except ApiException as exc:
            raise _api_error(exc.status, exc.body) from None
        try:
            if resp.status >= 400:
                raise _api_error(resp.status, await resp.read())
            if on_open is not None:
                on_open()
            async for line in resp.content:
                if line.strip():
                    yield orjson.loads(line)
        finally:
            resp.release()

    async def create(self, kind: Kind, namespace: str | None, body: dict) -> dict:
        return await self._json("POST", kind.path(namespace), body=body)

    async def replace(self, kind: Kind, namespace: str | None, name: str, body: dict,
                      subresource: str | None = None) -> dict:
        return await self._json("PUT", kind.path(namespace, name, subresource), body=body)

    async def patch(self, kind: Kind, namespace: str | None, name: str, body: Any,
                    subresource: str | None = None, content_type: str = MERGE) -> dict:
        return await self._json("PATCH", kind.path(namespace, name, subresource), body=body,
                                content_type=content_type)

    async def delete(self, kind: Kind, namespace: str | None, name: str,
                     preconditions: dict | None = None) -> dict:
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": preconditions} if preconditions else None
        return await self._json("DELETE", kind.path(namespace, name), body=body)


def _selectors(label_selector: str | None, field_selector: str | None) -> list[tuple[str, str]]:
    q = []
    if label_selector:
        q.append(("labelSelector", label_selector))
    if field_selector:
        q.append(("fieldSelector", field_selector))
    return q


def _api_error(status: int, data) -> ApiError:
    text = data.decode(errors="replace") if isinstance(data, (bytes, bytearray)) else str(data or "")
    try:
        body = orjson.loads(data) if data else None
    except orjson.JSONDecodeError:
        body = None
    return ApiError(status, body if isinstance(body, dict) else None, text)
