"""The publisher's object operations over any Kubernetes REST client with a ``request`` method.

``request(method, path, body=None, content_type=..., params=None) -> dict``,
raising an exception with the HTTP status in ``.status`` — the shape of the
API clients in speakerd (``controller.kubeapi.Api``).
"""
from __future__ import annotations

from typing import Any, Protocol

from .status import Kind

MERGE_PATCH = "application/merge-patch+json"


class RestClient(Protocol):
    async def request(self, method: str, path: str, body: Any = None, content_type: str = "application/json",
                      params: dict | None = None) -> dict: ...


def collection_path(kind: Kind, namespace: str) -> str:
    base = f"/apis/{kind.group}/{kind.version}" if kind.group else f"/api/{kind.version}"
    return f"{base}/namespaces/{namespace}/{kind.plural}"


class RestObjectClient:
    """:class:`speakerd.publish.writer.ObjectClient` over a REST client."""

    def __init__(self, api: RestClient) -> None:
        self.api = api

    async def list(self, kind: Kind, namespace: str, label_selector: str) -> list[dict]:
        data = await self.api.request("GET", collection_path(kind, namespace), params={"labelSelector": label_selector})
        return list(data.get("items") or ())

    async def create(self, kind: Kind, namespace: str, body: dict) -> dict:
        return await self.api.request("POST", collection_path(kind, namespace), body)

    async def patch(self, kind: Kind, namespace: str, name: str, patch: dict, subresource: str | None = None) -> dict:
        path = f"{collection_path(kind, namespace)}/{name}" + (f"/{subresource}" if subresource else "")
        return await self.api.request("PATCH", path, patch, MERGE_PATCH)

    async def delete(self, kind: Kind, namespace: str, name: str) -> None:
        await self.api.request("DELETE", f"{collection_path(kind, namespace)}/{name}")


__all__ = ["RestObjectClient", "RestClient", "collection_path"]
