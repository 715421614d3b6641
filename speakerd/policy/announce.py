"""Whether this node announces a Service: the rules of MetalLB's BGP speaker.

Pure: config.model objects in, a :class:`Verdict` out. The checks run in the
order MetalLB v0.16's speaker applies them (``controller.SetBalancer`` →
``bgpController.ShouldAnnounce``), so the first failing rule is the reason
MetalLB would give:

1. ``spec.type`` is LoadBalancer (else ``notLoadBalancer``);
2. ``spec.loadBalancerClass`` equals the ``--lb-class`` option, both unset
   counting as equal (else the Service belongs to another implementation);
3. the Service has addresses (``noIPAllocated``);
4. this node: no ``NetworkUnavailable=True`` condition
   (``nodeNetworkUnavailable``), no label
   ``node.kubernetes.io/exclude-from-external-load-balancers`` whatever its
   value (``nodeLabeledExcludeBalancers``, unless ``ignore_exclude_lb``);
   a Node not (yet) seen is neither;
5. endpoints: ``externalTrafficPolicy: Local`` needs an endpoint on this node
   that can serve (``noLocalEndpoints``); every Service needs one somewhere
   (``noEndpoints``).

"Can serve" is MetalLB's ``EndpointCanServe``: ``ready`` unset or true, or
``serving`` true. A terminating endpoint is ready=false by Kubernetes'
definition, so it counts only while it is still serving — as in MetalLB, and
as kube-proxy falls back to serving-terminating endpoints.

The pool and advertisement rules of ShouldAnnounce (``notOwner``,
``noMatchingAdvertisement``) belong to the route planner, which knows which
advertisements select this node.

For incremental planning the inputs are split so that each kind of change
re-evaluates only what it affects: :func:`node_verdict` once per change of
this node's Node, :class:`EndpointIndex` per EndpointSlice change (it says
which Service to re-decide), :func:`decide` per Service.
"""
from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from ..config.model import EndpointSlice, Node, Service

EXCLUDE_LABEL = "node.kubernetes.io/exclude-from-external-load-balancers"


class Verdict(enum.Enum):
    """The outcome for one Service on one node; ``reason`` is MetalLB's word for it."""

    ANNOUNCE = ("", "announced from this node")
    NOT_LOAD_BALANCER = ("notLoadBalancer", "spec.type is not LoadBalancer")
    OTHER_CLASS = ("otherLoadBalancerClass", "spec.loadBalancerClass is not this speaker's --lb-class")
    DELETED = ("serviceDeleted", "the Service is gone")
    NO_IP = ("noIPAllocated", "the Service has no address (status.loadBalancer.ingress is empty)")
    NODE_NETWORK_UNAVAILABLE = ("nodeNetworkUnavailable", "this node has the condition NetworkUnavailable=True")
    NODE_EXCLUDED = ("nodeLabeledExcludeBalancers", f"this node has the label {EXCLUDE_LABEL}")
    NO_LOCAL_ENDPOINTS = ("noLocalEndpoints",
                          "externalTrafficPolicy is Local and no endpoint on this node is ready or serving")
    NO_ENDPOINTS = ("noEndpoints", "no endpoint of the Service is ready or serving on any node")

    def __init__(self, reason: str, text: str) -> None:
        self.reason = reason
        self.text = text

    @property
    def announce(self) -> bool:
        return self is Verdict.ANNOUNCE

    def __str__(self) -> str:
        return self.text if self.announce else f"{self.reason}: {self.text}"


@dataclass(frozen=True, slots=True)
class AnnounceOptions:
    """The speaker's own settings that the rules read."""
    lb_class: str | None = None  # --lb-class; None: only Services without a class
    ignore_exclude_lb: bool = False  # MetalLB's --ignore-exclude-lb
    # True: always; False: never; None (file mode): for a Service once an EndpointSlice of it is known
    # (files without endpoint data for a Service keep announcing it, as before EndpointSlices were read)
    check_endpoints: bool | None = True
    # only addresses a controller wrote to status.loadBalancer.ingress (Kubernetes mode, as MetalLB's
    # speaker); False: also requested or locally allocated addresses (file mode)
    require_ingress: bool = False


def service_verdict(service: Service, options: AnnounceOptions) -> Verdict:
    """Rules 1-2: is the Service one this speaker handles at all."""
    if service.service_type != "LoadBalancer":
        return Verdict.NOT_LOAD_BALANCER
    if (service.lb_class or None) != (options.lb_class or None):
        return Verdict.OTHER_CLASS
    return Verdict.ANNOUNCE


def node_verdict(node: Node | None, options: AnnounceOptions = AnnounceOptions()) -> Verdict:
    """Rule 4, for this node's Node object (None: not seen, no restriction)."""
    if node is None:
        return Verdict.ANNOUNCE
    if node.network_unavailable:
        return Verdict.NODE_NETWORK_UNAVAILABLE
    if not options.ignore_exclude_lb and any(k == EXCLUDE_LABEL for k, _ in node.labels):
        return Verdict.NODE_EXCLUDED
    return Verdict.ANNOUNCE


def can_serve(ready: bool, serving: bool) -> bool:
    """MetalLB's EndpointCanServe, on the model's conditions (unset ready = true, unset serving = ready)."""
    return ready or serving


class _SliceSummary:
    """What one EndpointSlice contributes: its Service, whether any endpoint can serve, and where."""

    __slots__ = ("service", "any", "nodes")

    def __init__(self, service: str, any_: bool, nodes: frozenset[str]) -> None:
        self.service = service
        self.any = any_
        self.nodes = nodes

    def same(self, other: "_SliceSummary") -> bool:
        return self.service == other.service and self.any == other.any and self.nodes == other.nodes


def summarize(eps: EndpointSlice) -> _SliceSummary:
    nodes = set()
    any_ = False
    for ep in eps.endpoints:
        if can_serve(ep.ready, ep.serving):
            any_ = True
            if ep.node:
                nodes.add(ep.node)
    return _SliceSummary(f"{eps.namespace}/{eps.service}", any_, frozenset(nodes))


class EndpointIndex:
    """EndpointSlices by Service, reduced to what the announce rules read.

    ``apply``/``remove`` take one slice event and return the keys
    ("namespace/name") of the Services whose endpoint answer may have changed —
    none when the slice changed in a way the rules do not see (an address, a
    port, a hint). Slices with no ``kubernetes.io/service-name`` label belong to
    no Service and are ignored, as in MetalLB.
    """

    __slots__ = ("_slices", "_by_service", "_ready")

    def __init__(self) -> None:
        self._slices: dict[tuple[str, str], _SliceSummary] = {}  # (namespace, slice name) -> summary
        self._by_service: dict[str, dict[str, _SliceSummary]] = {}  # service key -> slice name -> summary
        # (namespace, slice name) -> (address type, ready endpoints per node), for endpoint-weighted
        # ECMP (speakerd.policy.linkbw); kept beside the rules' summary, whose answers it does not change
        self._ready: dict[tuple[str, str], tuple[str, dict[str, int]]] = {}

    def __len__(self) -> int:
        return len(self._slices)

    def apply(self, eps: EndpointSlice) -> tuple[str, ...]:
        """An added or modified slice."""
        if not eps.service:
            return self.remove(eps.namespace, eps.name)
        new = summarize(eps)
        sk = (eps.namespace, eps.name)
        ready: dict[str, int] = {}
        for ep in eps.endpoints:
            if ep.ready and ep.node:
                ready[ep.node] = ready.get(ep.node, 0) + 1
        self._ready[sk] = (eps.address_type, ready)
        old = self._slices.get(sk)
        if old is not None and old.same(new):
            return ()
        changed: tuple[str, ...] = (new.service,)
        if old is not None and old.service != new.service:
            self._drop(old.service, eps.name)
            changed = (old.service, new.service)
        self._slices[sk] = new
        self._by_service.setdefault(new.service, {})[eps.name] = new
        return changed

    def remove(self, namespace: str, name: str) -> tuple[str, ...]:
        """A deleted slice (or one that lost its service-name label)."""
        old = self._slices.pop((namespace, name), None)
        self._ready.pop((namespace, name), None)
        if old is None:
            return ()
        self._drop(old.service, name)
        return (old.service,)

    def _drop(self, service: str, name: str) -> None:
        slices = self._by_service.get(service)
        if slices is not None:
            slices.pop(name, None)
            if not slices:
                del self._by_service[service]

    def has_endpoint(self, service: str) -> bool:
        return any(s.any for s in self._by_service.get(service, {}).values())

    def has_local_endpoint(self, service: str, node: str) -> bool:
        return any(node in s.nodes for s in self._by_service.get(service, {}).values())

    def services(self) -> Iterable[str]:
        return self._by_service.keys()

    def has_slices(self, service: str) -> bool:
        """Whether any EndpointSlice names ``service`` (endpoint data exists for it)."""
        return service in self._by_service

    def ready_local(self, service: str, node: str) -> int:
        """Ready endpoints of ``service`` on ``node`` (the weight of endpoint-weighted ECMP).

        Counted per address type and the largest count taken: a dual-stack Service's pods are
        listed once in its IPv4 slices and again in its IPv6 slices."""
        ns = service.partition("/")[0]
        per_type: dict[str, int] = {}
        for name in self._by_service.get(service, ()):
            atype, ready = self._ready.get((ns, name), ("", {}))
            n = ready.get(node, 0)
            if n:
                per_type[atype] = per_type.get(atype, 0) + n
        return max(per_type.values(), default=0)


def endpoints_verdict(service: Service, endpoints: EndpointIndex, node_name: str) -> Verdict:
    """Rule 5."""
    key = service.key
    if service.traffic_policy == "Local" and not endpoints.has_local_endpoint(key, node_name):
        return Verdict.NO_LOCAL_ENDPOINTS
    if not endpoints.has_endpoint(key):
        return Verdict.NO_ENDPOINTS
    return Verdict.ANNOUNCE


def decide(service: Service | None, node: Verdict, endpoints: EndpointIndex, node_name: str,
           options: AnnounceOptions = AnnounceOptions(), ips: tuple[str, ...] | None = None) -> Verdict:
    """Whether this node announces `service`.

    `node` is :func:`node_verdict` of this node (computed once per Node change);
    `ips` the Service's addresses as the planner sees them (status ingress, or
    an allocation in file mode) — None when the caller checks addresses itself.
    """
    if service is None:
        return Verdict.DELETED
    v = service_verdict(service, options)
    if not v.announce:
        return v
    if (ips is not None and not ips) or (options.require_ingress and not service.ingress_ips):
        return Verdict.NO_IP
    if not node.announce:
        return node
    if options.check_endpoints or (options.check_endpoints is None and endpoints.has_slices(service.key)):
        return endpoints_verdict(service, endpoints, node_name)
    return Verdict.ANNOUNCE


def decide_from(service: Service, slices: Iterable[EndpointSlice], node: Node | None, node_name: str,
                options: AnnounceOptions = AnnounceOptions(), ips: tuple[str, ...] | None = None) -> Verdict:
    """:func:`decide` from plain objects (for `plan`/`explain` and tests): builds the index on the fly."""
    index = EndpointIndex()
    for eps in slices:
        index.apply(eps)
    return decide(service, node_verdict(node, options), index, node_name, options, ips)


Change = tuple  # (old, new): None for absent


class Announcer:
    """The announce rules kept up to date by store changes: which Services the planner should see.

    ``apply`` takes what one store update changed (Services, EndpointSlices,
    Nodes, each ``key -> (old, new)``) and returns, per Service whose answer or
    value changed, ``(old, new)`` as the planner should see it: the Service when
    this node announces it, None when it does not. Only the Services a change
    can affect are re-decided: the Service itself; the Service an EndpointSlice
    names; every Service only when this node's own verdict flips.

    `services` is the live table of valid Services (the store's); nothing is
    copied. Verdicts other than "announce" are kept for ``explain``.
    """

    __slots__ = ("node_name", "options", "services", "endpoints", "node", "_not", "_node_obj", "reweighed")

    def __init__(self, node_name: str, services: Mapping[str, Service],
                 options: AnnounceOptions = AnnounceOptions()) -> None:
        self.node_name, self.services, self.options = node_name, services, options
        self.endpoints = EndpointIndex()
        self._node_obj: Node | None = None
        self.node = node_verdict(None, options)
        self._not: dict[str, Verdict] = {}  # service key -> why not announced (absent: announced)
        # Services whose ready endpoints on this node changed in the last apply (endpoint-weighted
        # ECMP re-plans them even when the rules' answer stays the same)
        self.reweighed: set[str] = set()

    def verdict(self, key: str) -> Verdict:
        if key not in self.services:
            return Verdict.DELETED
        return self._not.get(key, Verdict.ANNOUNCE)

    @property
    def withheld(self) -> Mapping[str, Verdict]:
        """Service key -> why this node does not announce it (valid Services only; live, do not mutate)."""
        return self._not

    def announced(self) -> Iterable[Service]:
        """Every Service this node announces now (for a planner rebuild)."""
        notv = self._not
        return (s for k, s in self.services.items() if k not in notv)

    def _decide(self, svc: Service | None) -> Verdict:
        return decide(svc, self.node, self.endpoints, self.node_name, self.options)

    def apply(self, services: Mapping[str, Change] = {}, endpoint_slices: Mapping[str, Change] = {},
              nodes: Mapping[str, Change] = {}) -> dict[str, Change]:
        return {key: (old, new) for key, old, new in self._changed(services, endpoint_slices, nodes)}

    def apply_keys(self, services: Mapping[str, Change] = {}, endpoint_slices: Mapping[str, Change] = {},
                   nodes: Mapping[str, Change] = {}) -> set[str]:
        """:meth:`apply`, returning only the keys of what it returns (file mode reads no more):
        no (old, new) pair is made per Service of a large read."""
        return {key for key, _, _ in self._changed(services, endpoint_slices, nodes)}

    def _changed(self, services: Mapping[str, Change], endpoint_slices: Mapping[str, Change],
                 nodes: Mapping[str, Change]) -> Iterator[tuple[str, Service | None, Service | None]]:
        affected: dict[str, Service | None] = {}  # key -> the Service as it was before this update
        everything = False
        mine = nodes.get(self.node_name)
        if mine is not None:
            self._node_obj = mine[1]
            verdict = node_verdict(self._node_obj, self.options)
            everything = verdict is not self.node
            self.node = verdict
        self.reweighed = reweighed = set()
        index, me = self.endpoints, self.node_name
        for _key, (old, new) in endpoint_slices.items():
            named = {f"{s.namespace}/{s.service}" for s in (old, new) if s is not None and s.service}
            before = {k: index.ready_local(k, me) for k in named}
            keys = index.apply(new) if new is not None else index.remove(old.namespace, old.name)
            for k in keys:
                affected.setdefault(k, self.services.get(k))
            reweighed.update(k for k, n in before.items() if index.ready_local(k, me) != n)
        for key, (old, _new) in services.items():
            affected[key] = old
        if everything:
            for key in self.services:
                affected.setdefault(key, self.services[key])
            for key in list(self._not):
                affected.setdefault(key, None)
        for key, before in affected.items():
            was_on = before is not None and key not in self._not
            svc = self.services.get(key)
            v = self._decide(svc)
            if v.announce:
                self._not.pop(key, None)
            elif svc is not None:
                self._not[key] = v
            else:
                self._not.pop(key, None)
            old_eff = before if was_on else None
            new_eff = svc if v.announce else None
            if old_eff is not new_eff and old_eff != new_eff:
                yield key, old_eff, new_eff


class AnnouncedServices(Mapping):
    """The store's Services this node announces (a live view: nothing copied)."""

    __slots__ = ("_services", "_announcer")

    def __init__(self, services: Mapping, announcer: Announcer) -> None:
        self._services, self._announcer = services, announcer

    def __getitem__(self, key):
        if key in self._announcer._not:
            raise KeyError(key)
        return self._services[key]

    def __contains__(self, key) -> bool:
        return key in self._services and key not in self._announcer._not

    def __iter__(self) -> Iterator[str]:
        notv = self._announcer._not
        return (k for k in self._services if k not in notv)

    def __len__(self) -> int:
        notv = self._announcer._not
        return len(self._services) - sum(1 for k in notv if k in self._services)


class AnnouncingStore:
    """A :class:`speakerd.store.Store` as the planner should see it: its changes and its config
    through the announce rules (``Changes.services`` and ``config().services`` hold only what this
    node announces). Anything else is the store's. For file mode: ``AnnounceOptions(check_endpoints=None)``."""

    def __init__(self, store, node: str, options: AnnounceOptions) -> None:
        self.store = store
        self.node = node
        self.announcer = Announcer(node, store.services, options)

    def __getattr__(self, name):
        return getattr(self.store, name)

    def apply(self, events, settle: bool = True):
        ch = self.store.apply(events, settle)
        return self._through_rules(ch)

    def settle(self):
        return self._through_rules(self.store.settle())

    def _through_rules(self, ch):
        labels_before = None
        mine = ch.nodes.get(self.node)
        if mine is not None:
            old, new = mine
            labels_before = (old.labels if old else None, new.labels if new else None)
        effective = self.announcer.apply(ch.services, ch.endpoint_slices, ch.nodes)
        ch.services = effective
        ch.reweighed = set(self.announcer.reweighed)
        if labels_before is not None and labels_before[0] != labels_before[1] and not ch.metallb_rejected:
            ch.metallb = True  # this node's labels select peers and advertisements: re-plan them
        return ch

    def config(self):
        c = self.store.config()
        return dataclasses.replace(c, services=AnnouncedServices(c.services, self.announcer))


__all__ = ["Verdict", "AnnounceOptions", "EndpointIndex", "Announcer", "AnnouncingStore", "AnnouncedServices", "EXCLUDE_LABEL", "decide", "decide_from",
           "service_verdict", "node_verdict", "endpoints_verdict", "can_serve", "summarize"]
