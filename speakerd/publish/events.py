"""Kubernetes Events this node records: when it starts or stops announcing a Service, and on invalid objects.

Reasons, in MetalLB's words where MetalLB has one:

- ``nodeAssigned`` (Normal) on a Service this node starts announcing; message
  as MetalLB's speaker writes it: ``announcing from node "N" with protocol "bgp"``.
- ``serviceWithdrawn`` (Normal) on a Service this node stops announcing, with
  the announce rule's reason (``noLocalEndpoints``, ``nodeNetworkUnavailable``, ...).
  MetalLB logs this transition under the same name but records no Event.
- ``invalidObject`` (Warning) on an object speakerd refuses or skips, with the
  field and why.

Pure: the caller gives the time; the writer sends the Event bodies.
"""
from __future__ import annotations

import hashlib
import time
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

    @property
    def key(self) -> tuple:
        """What makes two Events "the same" for aggregation (count += 1), as client-go's recorder keys them."""
        return (self.obj.kind, self.obj.namespace, self.obj.name, self.obj.uid, self.type, self.reason,
                self.message)


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


def _rfc3339(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def event_name(spec: EventSpec, ts: float) -> str:
    """Like client-go: the object's name, a dot, and a value unique per event."""
    salt = hashlib.sha256(repr((spec.key, ts)).encode()).hexdigest()[:8]
    return f"{spec.obj.name[:200]}.{int(ts * 1e9):x}{salt}"


def event_body(spec: EventSpec, node: str, ts: float, name: str | None = None, count: int = 1,
               first_ts: float | None = None) -> dict:
    """A core/v1 Event as ``kubectl get events`` and ``kubectl describe`` show it."""
    return {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": name or event_name(spec, ts), "namespace": spec.obj.namespace or "default"},
        "involvedObject": spec.obj.reference(),
        "reason": spec.reason, "message": spec.message, "type": spec.type,
        "source": {"component": COMPONENT, "host": node},
        "reportingComponent": COMPONENT, "reportingInstance": node,
        "firstTimestamp": _rfc3339(first_ts if first_ts is not None else ts), "lastTimestamp": _rfc3339(ts),
        "count": count,
    }


__all__ = ["ObjectRef", "EventSpec", "announced", "withdrawn", "invalid", "transitions", "event_body", "event_name",
           "service_ref", "invalid_from_issue", "REASON_ASSIGNED", "REASON_WITHDRAWN", "REASON_INVALID"]
