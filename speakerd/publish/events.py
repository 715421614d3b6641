"""Kubernetes Events this node records: when it starts or stops announcing a Service, and on invalid objects.

Reasons, in MetalLB's words where MetalLB has one:

- ``nodeAssigned`` (Normal) on a Service this node starts announcing; message
  as MetalLB's speaker writes it: ``announcing from node "N" with protocol "bgp"``.
- ``serviceWithdrawn`` (Normal) on a Service this node stops announcing, with
  the announce rule's reason (``noLocalEndpoints``, ``nodeNetworkUnavailable``, ...).
  MetalLB logs this transition under the same name but records no Event.
- ``invalidObject`` (Warning) on an object speakerd refuses or skips, with the
  field and why.

Pure: what to say about which object; :class:`speakerd.kube.writers.EventRecorder` writes the
Events (client-go's dedup and aggregation), drained by :class:`speakerd.publish.writer.StatusPublisher`.
"""
from __future__ import annotations

from dataclasses import dataclass

COMPONENT = "speakerd"
REASON_ASSIGNED = "nodeAssigned"
REASON_WITHDRAWN = "serviceWithdrawn"
REASON_INVALID = "invalidObject"


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """The object an Event is about."""
    kind: str
    namespace: str
    name: str
    api_version: str = "v1"
    uid: str = ""

    def reference(self) -> dict:
        ref = {"apiVersion": self.api_version, "kind": self.kind, "name": self.name}
        if self.namespace:
            ref["namespace"] = self.namespace
        if self.uid:
            ref["uid"] = self.uid
        return ref


@dataclass(frozen=True, slots=True)
class EventSpec:
    """One Event to record (before it has a name and timestamps)."""
    obj: ObjectRef
    type: str  # "Normal" or "Warning"
    reason: str
    message: str


def service_ref(key: str, uid: str = "") -> ObjectRef:
    namespace, _, name = key.partition("/")
    return ObjectRef("Service", namespace, name, "v1", uid)


def announced(key: str, node: str, uid: str = "") -> EventSpec:
    return EventSpec(service_ref(key, uid), "Normal", REASON_ASSIGNED,
                     f'announcing from node "{node}" with protocol "bgp"')


def withdrawn(key: str, node: str, why: str, uid: str = "") -> EventSpec:
    return EventSpec(service_ref(key, uid), "Normal", REASON_WITHDRAWN,
                     f'no longer announcing from node "{node}": {why}')


def invalid(obj: ObjectRef, message: str) -> EventSpec:
    return EventSpec(obj, "Warning", REASON_INVALID, message)


_API_VERSIONS = {"Service": "v1", "Node": "v1", "Secret": "v1", "EndpointSlice": "discovery.k8s.io/v1",
                 "BGPPeer": "metallb.io/v1beta2"}


def invalid_from_issue(issue, namespace: str) -> EventSpec | None:
    """The Warning Event for a validation issue (``config.model.ConfigIssue``) about one object.

    ``issue.obj`` is "Kind/name" ("Service/namespace/name" for Services);
    `namespace` is where the other objects live (the speaker's namespace).
    Issues about no object (a file, a syntax error) give no Event."""
    kind, _, name = (issue.obj or "").partition("/")
    if not kind or not name:
        return None
    if "/" in name:
        namespace, _, name = name.partition("/")
    api_version = _API_VERSIONS.get(kind, "metallb.io/v1beta1")
    ns = "" if kind == "Node" else namespace
    text = f"{issue.field}: {issue.message}" if issue.field else issue.message
    return invalid(ObjectRef(kind, ns, name, api_version), text)


def transitions(before: dict[str, bool], after: dict[str, bool]) -> tuple[list[str], list[str]]:
    """Service keys that start (False/absent -> True) and stop (True -> False/absent) being announced."""
    started = [k for k, on in after.items() if on and not before.get(k, False)]
    stopped = [k for k, on in before.items() if on and not after.get(k, False)]
    return started, stopped


__all__ = ["ObjectRef", "EventSpec", "announced", "withdrawn", "invalid", "transitions",
           "service_ref", "invalid_from_issue", "REASON_ASSIGNED", "REASON_WITHDRAWN", "REASON_INVALID"]
