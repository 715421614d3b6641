"""What the speaker list+watches on the API server: kinds, versions, scopes and server-side selectors.

The speaker reads, as MetalLB's speaker does:

- in its own namespace: BGPPeer (v1beta2, else v1beta1 where v1beta2 is not
  served), IPAddressPool, BGPAdvertisement, BFDProfile, Community, and the
  Secrets BGPPeer ``passwordSecret`` names — MetalLB requires those to be of
  type ``kubernetes.io/basic-auth``, so only that type is listed
  (``fieldSelector=type=...``) and no other Secret reaches the process;
- cluster-wide: Services, EndpointSlices that belong to a Service
  (``labelSelector=kubernetes.io/service-name``), and this node's own Node
  only (``fieldSelector=metadata.name=NODE``): the announce rules read no
  other node.

A reflector per :class:`Watch` list+watches :meth:`Watch.path` with
:meth:`Watch.params`; :data:`ACCESS` is the RBAC those calls need.
"""
from __future__ import annotations

from dataclasses import dataclass

from .rbac import Access

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
BASIC_AUTH = "kubernetes.io/basic-auth"


@dataclass(frozen=True, slots=True)
class Watch:
    kind: str
    group: str  # "" = core
    versions: tuple[str, ...]  # preferred first; the next is tried when one is not served (404)
    plural: str
    namespaced: bool  # False: cluster-wide (every namespace, or a cluster-scoped kind)
    label_selector: str = ""
    field_selector: str = ""  # "{node}" is replaced by the node name

    def path(self, version: str, namespace: str) -> str:
        base = f"/apis/{self.group}/{version}" if self.group else f"/api/{version}"
        return f"{base}/namespaces/{namespace}/{self.plural}" if self.namespaced else f"{base}/{self.plural}"

    def params(self, node: str) -> dict[str, str]:
        out = {}
        if self.label_selector:
            out["labelSelector"] = self.label_selector
        if self.field_selector:
            out["fieldSelector"] = self.field_selector.format(node=node)
        return out


METALLB = "metallb.io"

WATCHES: tuple[Watch, ...] = (
    Watch("BGPPeer", METALLB, ("v1beta2", "v1beta1"), "bgppeers", True),
    Watch("IPAddressPool", METALLB, ("v1beta1",), "ipaddresspools", True),
    Watch("BGPAdvertisement", METALLB, ("v1beta1",), "bgpadvertisements", True),
    Watch("BFDProfile", METALLB, ("v1beta1",), "bfdprofiles", True),
    Watch("Community", METALLB, ("v1beta1",), "communities", True),
    Watch("Secret", "", ("v1",), "secrets", True, field_selector=f"type={BASIC_AUTH}"),
    Watch("Service", "", ("v1",), "services", False),
    Watch("EndpointSlice", "discovery.k8s.io", ("v1",), "endpointslices", False, label_selector=SERVICE_NAME_LABEL),
    Watch("Node", "", ("v1",), "nodes", False, field_selector="metadata.name={node}"),
)

ACCESS = tuple(Access(w.group, w.plural, ("list", "watch"), "namespace" if w.namespaced else "cluster")
               for w in WATCHES)

__all__ = ["Watch", "WATCHES", "ACCESS", "SERVICE_NAME_LABEL", "BASIC_AUTH"]
