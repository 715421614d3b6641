"""The publisher's object operations over :class:`speakerd.kube.KubeClient`."""
from __future__ import annotations

from ..kube import Kind as KubeKind
from ..kube import KubeClient
from .status import Kind


def _kind(kind: Kind) -> KubeKind:
    return KubeKind(kind.group, kind.version, kind.plural, kind.kind)


class KubeObjectClient:
    """:class:`speakerd.publish.writer.ObjectClient` over the API layer (errors: ``ApiError.status``)."""

    def __init__(self, client: KubeClient) -> None:
        self.client = client

    async def list(self, kind: Kind, namespace: str, label_selector: str) -> list[dict]:
        data = await self.client.list(_kind(kind), namespace, label_selector=label_selector)
        return list(data.get("items") or ())

    async def create(self, kind: Kind, namespace: str, body: dict) -> dict:
        return await self.client.create(_kind(kind), namespace, body)

    async def patch(self, kind: Kind, namespace: str, name: str, patch: dict, subresource: str | None = None) -> dict:
        return await self.client.patch(_kind(kind), namespace, name, patch, subresource)

    async def delete(self, kind: Kind, namespace: str, name: str) -> None:
        await self.client.delete(_kind(kind), namespace, name)


__all__ = ["KubeObjectClient"]
