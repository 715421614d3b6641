"""CustomResourceDefinitions generated from speakerd's own models, for a cluster without MetalLB.

Same groups, kinds, plurals, versions, scopes, printer columns and status
subresources as MetalLB v0.16 (and frr-k8s for BGPSessionState), so objects,
``kubectl`` habits and tools written for MetalLB work unchanged; a cluster
that has MetalLB's CRDs needs none of these.

The ``spec`` schemas are walked from the pydantic models speakerd validates
with (``config.raw``); the ``status`` schemas from the TypedDicts of what
speakerd writes (``publish.status``). A field added to a model appears here
without anything else to change. Each ``spec`` also keeps unknown fields
(``x-kubernetes-preserve-unknown-fields``): the API server would otherwise
drop a field speakerd does not know or implement without a word, while
speakerd reports it by name (with a "did you mean") and refuses the object.

BGPPeer is served as v1beta2 (stored) and v1beta1 (deprecated), one schema
for both since speakerd reads both with one model, so no conversion webhook
is needed (strategy None).
"""
from __future__ import annotations

import copy
import types
import typing
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints

from pydantic import BaseModel

from .config import raw
from .publish.status import BGPSessionStateFields, ServiceBGPStatusFields


class IPAddressPoolStatusFields(typing.TypedDict):
    """``status`` of an IPAddressPool as MetalLB >= 0.15's controller writes it."""
    assignedIPv4: int
    assignedIPv6: int
    availableIPv4: int
    availableIPv6: int


# --- schema from models ----------------------------------------------------------------------

_SCALARS = {str: "string", int: "integer", float: "number", bool: "boolean"}


def _validators(metadata: typing.Iterable[Any]) -> set:
    return {getattr(m, "func", None) for m in metadata}


def type_schema(ann: Any, metadata: typing.Sequence[Any] = ()) -> dict:
    """OpenAPI v3 (structural, as Kubernetes wants it) for one annotation."""
    if raw.parse_duration in _validators(metadata):
        return {"type": "string", "description": "a duration, e.g. \"90s\", \"1m30s\", \"500ms\""}
    origin = get_origin(ann)
    if origin is Annotated:
        base, *extra = get_args(ann)
        return type_schema(base, [*metadata, *extra])
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(ann) if a is not type(None)]
        if len(args) == 1:
            return type_schema(args[0], metadata)
        raise TypeError(f"no schema for the union {ann!r}")
    if origin is Literal:
        values = list(get_args(ann))
        return {"type": _SCALARS[type(values[0])], "enum": values}
    if origin is list:
        (item,) = get_args(ann)
        return {"type": "array", "items": type_schema(item)}
    if origin is dict:
        _, value = get_args(ann)
        return {"type": "object", "additionalProperties": type_schema(value)}
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return model_schema(ann)
    if isinstance(ann, type) and typing.is_typeddict(ann):
        return typeddict_schema(ann)
    if ann in _SCALARS:
        out = {"type": _SCALARS[ann]}
        if ann is int:
            out["format"] = "int64"
        return out
    raise TypeError(f"no schema for {ann!r}")


def model_schema(model: type[BaseModel]) -> dict:
    props = {name: type_schema(info.annotation, info.metadata) for name, info in model.model_fields.items()}
    required = [name for name, info in model.model_fields.items() if info.is_required()]
    out: dict = {"type": "object", "properties": props}
    if required:
        out["required"] = required
    return out


def typeddict_schema(td: type) -> dict:
    hints = get_type_hints(td, include_extras=True)
    return {"type": "object", "properties": {name: type_schema(ann) for name, ann in hints.items()}}


# --- the CRDs --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Version:
    name: str
    storage: bool = True
    deprecated: str | None = None  # the warning kubectl prints


@dataclass(frozen=True)
class Definition:
    group: str
    kind: str
    plural: str
    spec: type | None  # pydantic model or TypedDict; None = empty spec
    status: type | None = None  # TypedDict; None = an empty status
    versions: tuple[Version, ...] = (Version("v1beta1"),)
    columns: tuple[tuple[str, str, str], ...] = ()  # (name, type, jsonPath)
    description: str = ""
    short_names: tuple[str, ...] = field(default=())

    @property
    def name(self) -> str:
        return f"{self.plural}.{self.group}"


METALLB = "metallb.io"
FRRK8S = "frrk8s.metallb.io"

DEFINITIONS: tuple[Definition, ...] = (
    Definition(METALLB, "BGPPeer", "bgppeers", raw.BGPPeerSpec,
               versions=(Version("v1beta2"), Version("v1beta1", storage=False,
                                                     deprecated="v1beta1 is deprecated, please use v1beta2")),
               columns=(("Address", "string", ".spec.peerAddress"), ("ASN", "string", ".spec.peerASN"),
                        ("BFD Profile", "string", ".spec.bfdProfile"),
                        ("Multi Hops", "string", ".spec.ebgpMultiHop")),
               description="A BGP router this cluster's nodes peer with."),
    Definition(METALLB, "IPAddressPool", "ipaddresspools", raw.IPAddressPoolSpec, IPAddressPoolStatusFields,
               columns=(("Auto Assign", "boolean", ".spec.autoAssign"),
                        ("Avoid Buggy IPs", "boolean", ".spec.avoidBuggyIPs"),
                        ("Addresses", "string", ".spec.addresses")),
               description="A range of addresses LoadBalancer Services get theirs from."),
    Definition(METALLB, "BGPAdvertisement", "bgpadvertisements", raw.BGPAdvertisementSpec,
               columns=(("IPAddressPools", "string", ".spec.ipAddressPools"),
                        ("IPAddressPool Selectors", "string", ".spec.ipAddressPoolSelectors"),
                        ("Peers", "string", ".spec.peers"),
                        ("Node Selectors", "string", ".spec.nodeSelectors")),
               description="How the addresses of some pools are announced, to which peers, from which nodes."),
    Definition(METALLB, "BFDProfile", "bfdprofiles", raw.BFDProfileSpec,
               columns=(("Passive Mode", "boolean", ".spec.passiveMode"),
                        ("Transmit Interval", "integer", ".spec.transmitInterval"),
                        ("Receive Interval", "integer", ".spec.receiveInterval"),
                        ("Multiplier", "integer", ".spec.detectMultiplier")),
               description="BFD timers for the BGPPeers that name this profile."),
    Definition(METALLB, "Community", "communities", raw.CommunitySpec,
               description="Names for BGP community values, usable in BGPAdvertisements."),
    Definition(METALLB, "ServiceBGPStatus", "servicebgpstatuses", None, ServiceBGPStatusFields,
               columns=(("Node", "string", ".status.node"), ("Service Name", "string", ".status.serviceName"),
                        ("Service Namespace", "string", ".status.serviceNamespace")),
               description="The BGP peers a Service is configured to be advertised to, per node announcing it."),
    Definition(FRRK8S, "BGPSessionState", "bgpsessionstates", None, BGPSessionStateFields,
               columns=(("Node", "string", ".status.node"), ("Peer", "string", ".status.peer"),
                        ("VRF", "string", ".status.vrf"), ("BGP", "string", ".status.bgpStatus"),
                        ("BFD", "string", ".status.bfdStatus")),
               description="The state of one BGP session of one node."),
)


def _spec_schema(d: Definition) -> dict:
    if d.spec is None:
        return {"type": "object"}
    schema = type_schema(d.spec)
    schema["x-kubernetes-preserve-unknown-fields"] = True
    return schema


def crd(d: Definition) -> dict:
    schema = {
        "type": "object",
        "description": d.description,
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": _spec_schema(d),
            "status": typeddict_schema(d.status) if d.status is not None else {"type": "object"},
        },
    }
    versions = []
    for v in d.versions:
        entry: dict = {"name": v.name, "served": True, "storage": v.storage}
        if v.deprecated:
            entry["deprecated"] = True
            entry["deprecationWarning"] = v.deprecated
        if d.columns:
            entry["additionalPrinterColumns"] = [{"name": n, "type": t, "jsonPath": p} for n, t, p in d.columns]
        entry["schema"] = {"openAPIV3Schema": copy.deepcopy(schema)}  # no YAML anchors between versions
        entry["subresources"] = {"status": {}}
        versions.append(entry)
    out: dict = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": d.name, "labels": {"app.kubernetes.io/name": "speakerd"}},
        "spec": {
            "group": d.group,
            "names": {"kind": d.kind, "listKind": f"{d.kind}List", "plural": d.plural,
                      "singular": d.kind.lower(), **({"shortNames": list(d.short_names)} if d.short_names else {})},
            "scope": "Namespaced",
            "versions": versions,
        },
    }
    if len(d.versions) > 1:
        out["spec"]["conversion"] = {"strategy": "None"}
    return out


def all_crds(kinds: typing.Iterable[str] | None = None) -> list[dict]:
    wanted = None if kinds is None else {k.lower() for k in kinds}
    return [crd(d) for d in DEFINITIONS
            if wanted is None or d.kind.lower() in wanted or d.plural in wanted or d.name in wanted]


__all__ = ["DEFINITIONS", "Definition", "Version", "crd", "all_crds", "type_schema", "model_schema",
           "typeddict_schema", "IPAddressPoolStatusFields"]
