"""The status objects this node should have in the cluster, and the operations that get them there.

Two kinds, shaped as MetalLB and frr-k8s publish them, so ``kubectl get``
and tools written for MetalLB read them unchanged:

- ``ServiceBGPStatus`` (metallb.io/v1beta1, MetalLB >= 0.15): one per Service
  this node announces, ``status: {node, serviceName, serviceNamespace, peers}``
  where ``peers`` are the BGPPeer names the Service is configured to go to;
  labels ``metallb.io/node``, ``metallb.io/service-name``,
  ``metallb.io/service-namespace``. No object when the Service goes to no peer.
- ``BGPSessionState`` (frrk8s.metallb.io/v1beta1, what MetalLB's FRR-K8s mode
  shows): one per session of this node, ``status: {node, peer, vrf,
  bgpStatus, bfdStatus}``; labels ``frrk8s.metallb.io/node``, ``/peer``,
  ``/vrf``; ``peer`` is the address, an IPv6 one written in full with "-" for
  ":" (a label value cannot hold ":"); ``bfdStatus`` is "N/A" without BFD.

Both live in the speaker's namespace. Names are derived from what the object
describes (MetalLB asks the API server to generate them): a restarted speaker
finds its own objects again by name, and a create that races with a leftover
object gets 409 and becomes a patch, never a duplicate.

Pure: no I/O, no clock.
"""
from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TypedDict

from ..kube.kinds import BGPSESSIONSTATES, CORE_EVENTS, SERVICEBGPSTATUSES, Kind

METALLB_GROUP = "metallb.io"
FRRK8S_GROUP = "frrk8s.metallb.io"

LABEL_NODE = "metallb.io/node"
LABEL_SERVICE_NAME = "metallb.io/service-name"
LABEL_SERVICE_NAMESPACE = "metallb.io/service-namespace"
LABEL_SESSION_NODE = "frrk8s.metallb.io/node"
LABEL_SESSION_PEER = "frrk8s.metallb.io/peer"
LABEL_SESSION_VRF = "frrk8s.metallb.io/vrf"
NO_BFD = "N/A"
MANAGED_BY = ("app.kubernetes.io/managed-by", "speakerd")


class ServiceBGPStatusFields(TypedDict):
    """``status`` of a ServiceBGPStatus (the CRD schema is generated from this)."""
    node: str
    serviceName: str
    serviceNamespace: str
    peers: list[str]


class BGPSessionStateFields(TypedDict):
    """``status`` of a BGPSessionState (the CRD schema is generated from this)."""
    node: str
    peer: str
    vrf: str
    bgpStatus: str
    bfdStatus: str


EVENT = CORE_EVENTS
SERVICE_BGP_STATUS = SERVICEBGPSTATUSES
BGP_SESSION_STATE = BGPSESSIONSTATES


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """One BGP session of this node, as the speaker reports it."""
    peer: str  # BGPPeer name
    address: str  # peer address (or interface name for unnumbered peering)
    bgp_state: str  # "Established", "Active", ... (RFC 4271 state names, as FRR prints them)
    vrf: str = ""  # "" = default VRF
    bfd_state: str | None = None  # "up"/"down"/... ; None = no BFD on this session


@dataclass(frozen=True, slots=True)
class Owner:
    """The speaker's Pod: owner of every object it publishes, so they go when the Pod goes."""
    name: str
    uid: str

    def reference(self) -> dict:
        return {"apiVersion": "v1", "kind": "Pod", "name": self.name, "uid": self.uid}


@dataclass(frozen=True, slots=True)
class Desired:
    """One object's wanted labels and status."""
    kind: Kind
    name: str
    labels: tuple[tuple[str, str], ...]
    status: tuple[tuple[str, object], ...]  # keys in order; list values as tuples

    def status_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.status}

    def body(self, namespace: str, owner: Owner | None = None) -> dict:
        meta: dict = {"name": self.name, "namespace": namespace, "labels": dict(self.labels)}
        if owner is not None:
            meta["ownerReferences"] = [owner.reference()]
        return {"apiVersion": self.kind.api_version, "kind": self.kind.kind, "metadata": meta,
                "spec": {}, "status": self.status_dict()}


def peer_label(address: str) -> str:
    """frr-k8s's label form of a neighbour: IPv4 as is, IPv6 expanded with '-', anything else as is."""
    try:
        addr = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if addr.version == 4:
        return str(addr)
    return addr.exploded.replace(":", "-")


def _hashed_name(prefix: str, key: str) -> str:
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    prefix = prefix[:242].rstrip("-.")  # DNS subdomain: 253 characters at most
    return f"{prefix}-{digest}"


def service_status_name(node: str, service_key: str) -> str:
    return _hashed_name("bgp", f"{node}\0{service_key}")


def session_state_name(node: str, address: str, vrf: str) -> str:
    return _hashed_name(node.lower(), f"{address}\0{vrf}")


def desired_service_status(node: str, key: str, peers: Iterable[str]) -> Desired | None:
    """The ServiceBGPStatus of Service `key` ("namespace/name") going to `peers`; None for no peer."""
    peer_list = tuple(sorted(set(peers)))
    if not peer_list:
        return None
    namespace, _, name = key.partition("/")
    return Desired(SERVICE_BGP_STATUS, service_status_name(node, key),
                   ((LABEL_NODE, node), (LABEL_SERVICE_NAME, name), (LABEL_SERVICE_NAMESPACE, namespace), MANAGED_BY),
                   (("node", node), ("serviceName", name), ("serviceNamespace", namespace), ("peers", peer_list)))


def desired_service_statuses(node: str, announced: Mapping[str, Iterable[str]]) -> dict[str, Desired]:
    """`announced`: service key "namespace/name" -> peer names it goes to from this node."""
    out: dict[str, Desired] = {}
    for key, peers in announced.items():
        d = desired_service_status(node, key, peers)
        if d is not None:
            out[d.name] = d
    return out


def desired_session_states(node: str, sessions: Iterable[SessionInfo]) -> dict[str, Desired]:
    out: dict[str, Desired] = {}
    for s in sessions:
        peer = peer_label(s.address)
        d = Desired(BGP_SESSION_STATE, session_state_name(node, s.address, s.vrf),
                    ((LABEL_SESSION_NODE, node), (LABEL_SESSION_PEER, peer), (LABEL_SESSION_VRF, s.vrf), MANAGED_BY),
                    (("node", node), ("peer", peer), ("vrf", s.vrf), ("bgpStatus", s.bgp_state),
                     ("bfdStatus", s.bfd_state or NO_BFD)))
        out[d.name] = d
    return out


def node_selector(kind: Kind, node: str) -> str:
    """The label selector that lists this node's objects of `kind`."""
    label = LABEL_NODE if kind is SERVICE_BGP_STATUS else LABEL_SESSION_NODE
    return f"{label}={node}"


# --- from what is in the cluster to what should be --------------------------------------------

@dataclass(frozen=True, slots=True)
class Observed:
    """An object of ours as last seen in (or written to) the cluster."""
    name: str
    labels: tuple[tuple[str, str], ...]
    status: tuple[tuple[str, object], ...]
    owners: tuple[str, ...] = ()  # ownerReferences uids

    @classmethod
    def of(cls, obj: Mapping) -> "Observed":
        meta = obj.get("metadata") or {}
        status = obj.get("status") or {}
        return cls(meta.get("name", ""), tuple(sorted((meta.get("labels") or {}).items())),
                   tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in sorted(status.items())),
                   tuple(sorted(r.get("uid", "") for r in meta.get("ownerReferences") or ())))

    @classmethod
    def written(cls, d: Desired, owner: Owner | None = None) -> "Observed":
        return cls(d.name, tuple(sorted(d.labels)), tuple(sorted(d.status)), (owner.uid,) if owner else ())

    def metadata_differs(self, d: Desired, owner: Owner | None) -> bool:
        """Labels or owner not as `d` wants: an object a previous Pod owned is taken over (else the
        garbage collector deletes it with that Pod, under the new one)."""
        return self.labels != tuple(sorted(d.labels)) or self.owners != ((owner.uid,) if owner else ())


@dataclass(frozen=True, slots=True)
class Op:
    """One write: "create" (then its status), "status" (patch labels+status), or "delete"."""
    action: str
    kind: Kind
    name: str
    desired: Desired | None = None


def plan_writes(kind: Kind, observed: Mapping[str, Observed], desired: Mapping[str, Desired],
                owner: Owner | None = None) -> list[Op]:
    """The writes that turn `observed` (our objects in the cluster, by name) into `desired`.

    Objects already as wanted cost nothing; deletes come first (a Service
    that stopped frees nothing, but stale objects are the visible lie)."""
    ops = [Op("delete", kind, name) for name in observed if name not in desired]
    for name, d in desired.items():
        op = write_for(kind, name, observed.get(name), d, owner)
        if op is not None:
            ops.append(op)
    return ops


def write_for(kind: Kind, name: str, have: Observed | None, want: Desired | None,
              owner: Owner | None = None) -> Op | None:
    """The one write (or none) for one object."""
    if want is None:
        return None if have is None else Op("delete", kind, name)
    if have is None:
        return Op("create", kind, name, want)
    if have != Observed.written(want, owner):
        return Op("status", kind, name, want)
    return None


__all__ = ["Kind", "SERVICE_BGP_STATUS", "BGP_SESSION_STATE", "SessionInfo", "Owner", "Desired", "Observed", "Op",
           "desired_service_status", "desired_service_statuses", "desired_session_states", "plan_writes", "write_for", "EVENT", "peer_label", "node_selector",
           "service_status_name", "session_state_name"]
