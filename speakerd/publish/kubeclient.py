"""The publisher's object operations over :class:`speakerd.kube.KubeClient`."""
from __future__ import annotations

from ..kube import Kind, KubeClient


class KubeObjectClient:
    """:class:`speakerd.publish.writer.ObjectClient` over the API layer (errors: ``ApiError.status``)."""

    def __init__(self, client: KubeClient) -> None:
        self.client = client

    async def list(self, kind: Kind, namespace: str, label_selector: str) -> list[dict]:
        data = await self.client.list(kind, namespace, label_selector=label_selector)
        return list(data.get("items") or ())

    async def create(self, kind: Kind, namespace: str, body: dict) -> dict:
        return await self.client.create(kind, namespace, body)

    async def patch(self, kind: Kind, namespace: str, name: str, patch: dict, subresource: str | None = None) -> dict:
        return await self.client.patch(kind, namespace, name, patch, subresource)

    async def delete(self, kind: Kind, namespace: str, name: str) -> None:
        await self.client.delete(kind, namespace, name)


__all__ = ["KubeObjectClient"]
