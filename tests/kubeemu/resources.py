"""The API resources the emulator serves: core kinds, EndpointSlices, Leases, Events and MetalLB CRDs.

A resource is addressed by ``(group, version, plural)``; versions of one kind share storage (the
``storage`` key is ``group/plural``), as the API server stores one object whatever version wrote it.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ResourceInfo:
    group: str          # "" for the core group
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    subresources: frozenset[str] = field(default_factory=frozenset)
    short_names: tuple[str, ...] = ()
    field_labels: tuple[str, ...] = ()   # field selector paths beyond metadata.name/namespace

    def supports_field(self, path: str) -> bool:
        return path in ("metadata.name", "metadata.namespace") or path in self.field_labels

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def storage(self) -> str:
        return f"{self.group}/{self.plural}"

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources


_STATUS = frozenset({"status"})

# The field selectors kube-apiserver accepts per kind (others are 400 "field label not supported").
_CORE_EVENT_FIELDS = ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                      "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
                      "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type")
_EVENT_FIELDS = ("regarding.kind", "regarding.namespace", "regarding.name", "regarding.uid",
                 "regarding.apiVersion", "regarding.resourceVersion", "regarding.fieldPath", "reason",
                 "reportingController", "type", "deprecatedSource")
_POD_FIELDS = ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
               "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName")

CORE = [
    ResourceInfo("", "v1", "services", "Service", True, _STATUS, ("svc",), ("spec.clusterIP", "spec.type")),
    ResourceInfo("", "v1", "endpoints", "Endpoints", True),
    ResourceInfo("", "v1", "nodes", "Node", False, _STATUS, ("no",), ("spec.unschedulable",)),
    ResourceInfo("", "v1", "namespaces", "Namespace", False, _STATUS, ("ns",), ("status.phase",)),
    ResourceInfo("", "v1", "pods", "Pod", True, _STATUS, ("po",), _POD_FIELDS),
    ResourceInfo("", "v1", "secrets", "Secret", True, field_labels=("type",)),
    ResourceInfo("", "v1", "configmaps", "ConfigMap", True, short_names=("cm",)),
    ResourceInfo("", "v1", "events", "Event", True, short_names=("ev",), field_labels=_CORE_EVENT_FIELDS),
    ResourceInfo("", "v1", "serviceaccounts", "ServiceAccount", True, short_names=("sa",)),
    ResourceInfo("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", True),
    ResourceInfo("coordination.k8s.io", "v1", "leases", "Lease", True),
    ResourceInfo("events.k8s.io", "v1", "events", "Event", True, short_names=("ev",), field_labels=_EVENT_FIELDS),
    ResourceInfo("apiextensions.k8s.io", "v1", "customresourcedefinitions",
                 "CustomResourceDefinition", False, _STATUS, ("crd",)),
]

_METALLB_V1BETA1 = [
    ("ipaddresspools", "IPAddressPool", _STATUS),
    ("bgpadvertisements", "BGPAdvertisement", frozenset()),
    ("l2advertisements", "L2Advertisement", frozenset()),
    ("bfdprofiles", "BFDProfile", frozenset()),
    ("communities", "Community", frozenset()),
    ("bgppeers", "BGPPeer", _STATUS),
    ("servicebgpstatuses", "ServiceBGPStatus", _STATUS),
    ("servicel2statuses", "ServiceL2Status", _STATUS),
    ("bgpsessionstates", "BGPSessionState", _STATUS),
]

METALLB = [ResourceInfo("metallb.io", "v1beta1", p, k, True, s) for p, k, s in _METALLB_V1BETA1]
METALLB.append(ResourceInfo("metallb.io", "v1beta2", "bgppeers", "BGPPeer", True, _STATUS))
# frr-k8s's group: where MetalLB (FRR-K8s mode) and speakerd publish BGPSessionState
METALLB.append(ResourceInfo("frrk8s.metallb.io", "v1beta1", "bgpsessionstates", "BGPSessionState", True, _STATUS))

DEFAULT_RESOURCES: list[ResourceInfo] = CORE + METALLB


class Registry:
    """Lookup of resources by URL parts, and the discovery documents built from them."""

    def __init__(self, resources: list[ResourceInfo] | None = None) -> None:
        self._by_path: dict[tuple[str, str, str], ResourceInfo] = {}
        for info in resources if resources is not None else DEFAULT_RESOURCES:
            self.add(info)

    def add(self, info: ResourceInfo) -> None:
        self._by_path[(info.group, info.version, info.plural)] = info

    def get(self, group: str, version: str, plural: str) -> ResourceInfo | None:
        return self._by_path.get((group, version, plural))

    def all(self) -> list[ResourceInfo]:
        return list(self._by_path.values())

    def groups(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for g, v, _ in self._by_path:
            if g and v not in out.setdefault(g, []):
                out[g].append(v)
        return out

    def resource_list(self, group: str, version: str) -> dict | None:
        items = [i for (g, v, _), i in self._by_path.items() if g == group and v == version]
        if not items:
            return None
        res = []
        for i in items:
            verbs = ["create", "delete", "get", "list", "patch", "update", "watch"]
            res.append({"name": i.plural, "singularName": i.singular, "namespaced": i.namespaced,
                        "kind": i.kind, "verbs": verbs, "shortNames": list(i.short_names)})
            for sub in sorted(i.subresources):
                res.append({"name": f"{i.plural}/{sub}", "singularName": "", "namespaced": i.namespaced,
                            "kind": i.kind, "verbs": ["get", "patch", "update"]})
        return {"kind": "APIResourceList", "apiVersion": "v1",
                "groupVersion": f"{group}/{version}" if group else version, "resources": res}
