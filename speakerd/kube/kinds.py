"""The API resources speakerd reads and writes, by URL parts (one :class:`Kind` per resource)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Kind:
    group: str          # "" for the core group
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def label(self) -> str:
        """Name used in logs and the ``kind`` metric label: ``services``, ``bgppeers.v1beta2.metallb.io``."""
        if not self.group:
            return self.plural
        return f"{self.plural}.{self.version}.{self.group}"

    def path(self, namespace: str | None = None, name: str | None = None, subresource: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name:
            base += f"/{name}"
            if subresource:
                base += f"/{subresource}"
        return base


SERVICES = Kind("", "v1", "services", "Service")
NODES = Kind("", "v1", "nodes", "Node", namespaced=False)
SECRETS = Kind("", "v1", "secrets", "Secret")
CORE_EVENTS = Kind("", "v1", "events", "Event")
ENDPOINTSLICES = Kind("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice")
LEASES = Kind("coordination.k8s.io", "v1", "leases", "Lease")
EVENTS = Kind("events.k8s.io", "v1", "events", "Event")

BGPPEERS_V1BETA1 = Kind("metallb.io", "v1beta1", "bgppeers", "BGPPeer")
BGPPEERS = Kind("metallb.io", "v1beta2", "bgppeers", "BGPPeer")
IPADDRESSPOOLS = Kind("metallb.io", "v1beta1", "ipaddresspools", "IPAddressPool")
BGPADVERTISEMENTS = Kind("metallb.io", "v1beta1", "bgpadvertisements", "BGPAdvertisement")
BFDPROFILES = Kind("metallb.io", "v1beta1", "bfdprofiles", "BFDProfile")
COMMUNITIES = Kind("metallb.io", "v1beta1", "communities", "Community")
SERVICEBGPSTATUSES = Kind("metallb.io", "v1beta1", "servicebgpstatuses", "ServiceBGPStatus")
BGPSESSIONSTATES = Kind("frrk8s.metallb.io", "v1beta1", "bgpsessionstates", "BGPSessionState")  # frr-k8s's, as MetalLB publishes it
