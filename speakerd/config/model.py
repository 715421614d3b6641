"""The validated configuration: what the rest of speakerd runs on.

Raw Kubernetes objects go through one validator per kind (``store.validate``;
the MetalLB kinds together through ``build.py``) into the object store, whose
:meth:`~speakerd.store.Store.config` is a :class:`Config`.  Everything here is frozen
and already checked: addresses parsed, durations in seconds, references
resolved, secrets read.  Names are the Kubernetes object names.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from operator import attrgetter
from typing import Any


@dataclass(frozen=True, slots=True)
class Source:
    """Where an object came from, for error messages: file and kind/name."""
    file: str
    kind: str
    name: str
    namespace: str = ""

    def __str__(self) -> str:
        return f"{self.file}: {self.kind}/{self.name}"


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """Kubernetes label selector: matchLabels AND every matchExpression."""
    match_labels: tuple[tuple[str, str], ...] = ()
    # (key, operator In/NotIn/Exists/DoesNotExist, values)
    match_expressions: tuple[tuple[str, str, tuple[str, ...]], ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        for k, v in self.match_labels:
            if labels.get(k) != v:
                return False
        for k, op, values in self.match_expressions:
            if op == "In" and labels.get(k) not in values:
                return False
            if op == "NotIn" and k in labels and labels[k] in values:
                return False
            if op == "Exists" and k not in labels:
                return False
            if op == "DoesNotExist" and k in labels:
                return False
        return True


def selectors_match(selectors: tuple[LabelSelector, ...], labels: dict[str, str]) -> bool:
    """MetalLB semantics: no selector selects everything; otherwise any one matching."""
    return not selectors or any(s.matches(labels) for s in selectors)


@dataclass(frozen=True, slots=True)
class BFDProfile:
    name: str
    receive_interval_ms: int = 300
    transmit_interval_ms: int = 300
    detect_multiplier: int = 3
    passive_mode: bool = False
    minimum_ttl: int = 254
    source: Source | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Peer:
    """One BGPPeer. Session parameters only: what, if changed, resets the session."""
    name: str
    local_asn: int  # spec.myASN
    peer_asn: int
    peer_address: str  # canonical text form
    peer_port: int = 179
    source_address: str | None = None
    hold_time: int = 90  # seconds; 0 = no keepalives
    keepalive_time: int = 30
    connect_retry: int = 120  # spec.connectTime: ConnectRetry, seconds
    router_id: str | None = None  # dotted quad; None = derived at run time
    password: str | None = field(default=None, repr=False)  # resolved from passwordSecret too
    bfd_profile: str | None = None
    node_selectors: tuple[LabelSelector, ...] = ()
    ebgp_multihop: bool = False
    vrf: str | None = None
    graceful_restart: bool = False
    source: Source | None = field(default=None, compare=False)
    # spec.dynamicASN "internal" | "external": the peer's AS comes from its OPEN (peer_asn is 0)
    dynamic_asn: str | None = None
    # annotation speakerd.io/max-prefixes: received prefixes per family; None = the default
    max_prefixes: int | None = None
    # spec.interface (BGP unnumbered): peer_address is "" and the router's link-local
    # address on this interface is found at run time
    interface: str | None = None
    # spec.dualStackAddressFamily: true: the session carries IPv4 and IPv6; false (the CRD
    # default): only the family of its peer address, as MetalLB v0.15+ (see ``families``)
    dual_stack_address_family: bool = False
    # spec.disableMP: deprecated upstream and without effect since a session carries only its
    # own family by default; kept so the configuration can say so
    disable_mp: bool = False
    # spec.localASN (MetalLB v0.16, FRR "local-as N no-prepend replace-as"): the AS this
    # session announces in its OPEN and AS_PATH instead of myASN; None = myASN
    local_asn_override: int | None = None

    @property
    def session_asn(self) -> int:
        """The local AS the peer sees: spec.localASN if set, else spec.myASN."""
        return self.local_asn_override or self.local_asn

    @property
    def ibgp(self) -> bool:
        if self.dynamic_asn is not None:
            return self.dynamic_asn == "internal"
        return self.local_asn == self.peer_asn

    @property
    def ipv6(self) -> bool:
        return self.interface is not None or ":" in self.peer_address

    @property
    def families(self) -> tuple[int, ...]:
        """The address families (4, 6) this session carries: both on an interface (BGP
        unnumbered) peer or with dualStackAddressFamily, else the peer address's own."""
        if self.interface is not None or self.dual_stack_address_family:
            return (4, 6)
        return (6,) if self.ipv6 else (4,)


@dataclass(frozen=True, slots=True)
class ServiceAllocation:
    """IPAddressPool spec.serviceAllocation: which Services a pool serves first, and in what priority.

    MetalLB: lower priority value first, 0 (unset) after every set priority; a pool with
    a serviceAllocation is never one of the "any autoAssign pool" fallbacks."""
    priority: int = 0
    namespaces: tuple[str, ...] = ()
    namespace_selectors: tuple[LabelSelector, ...] = ()
    service_selectors: tuple[LabelSelector, ...] = ()


@dataclass(frozen=True, slots=True)
class Pool:
    name: str
    # each range as (afi, first address int, last address int), inclusive
    ranges: tuple[tuple[int, int, int], ...]
    # the same as CIDR blocks (afi, network int, prefix length): a range is split into CIDRs
    cidrs: tuple[tuple[int, int, int], ...]
    auto_assign: bool = True
    avoid_buggy_ips: bool = False
    labels: tuple[tuple[str, str], ...] = ()
    source: Source | None = field(default=None, compare=False)
    service_allocation: ServiceAllocation | None = None  # spec.serviceAllocation; None = not set


@dataclass(frozen=True, slots=True)
class Advertisement:
    name: str
    pools: tuple[str, ...]  # resolved pool names (ipAddressPools + ipAddressPoolSelectors); all pools when both empty
    peers: tuple[str, ...] = ()  # empty = every peer
    communities: tuple[int, ...] = ()  # standard, 32-bit ints (aliases resolved)
    large_communities: tuple[tuple[int, int, int], ...] = ()
    aggregation_length: int = 32
    aggregation_length_v6: int = 128
    local_pref: int | None = None
    node_selectors: tuple[LabelSelector, ...] = ()
    source: Source | None = field(default=None, compare=False)
    # spec.serviceSelectors: the advertisement applies to a Service whose labels match one (none = all)
    service_selectors: tuple[LabelSelector, ...] = ()
    # annotation speakerd.io/link-bandwidth: endpoints (a speakerd extension): routes carry the
    # link-bandwidth extended community weighted by this node's ready local endpoints
    weight_by_endpoints: bool = False


@dataclass(frozen=True, slots=True)
class ServiceExtras:
    """The fields of a :class:`Service` that almost every Service leaves at their default.

    Services whose fields are all defaults share one object (:data:`NO_EXTRAS`), others
    share one per distinct value (``store.validate``): a Service is ten slots, not
    twenty-one (~100 B less each)."""
    pool: str | None = None  # metallb.universe.tf/address-pool annotation
    dual_stack: bool = False  # ipFamilyPolicy RequireDualStack/PreferDualStack: allocate one per family
    source: Source | None = field(default=None, compare=False)
    service_type: str = "LoadBalancer"  # spec.type
    lb_class: str | None = None  # spec.loadBalancerClass
    requested_ips: tuple[str, ...] = ()  # metallb.io/loadBalancerIPs (or metallb.universe.tf/...) or spec.loadBalancerIP
    ip_family_policy: str = "SingleStack"  # spec.ipFamilyPolicy
    sharing_key: str | None = None  # metallb.io/allow-shared-ip
    traffic_policy: str = "Cluster"  # spec.externalTrafficPolicy: Cluster or Local
    selector: tuple[tuple[str, str], ...] = ()  # spec.selector, sorted
    deleting: bool = False  # metadata.deletionTimestamp is set
    request_error: str = ""  # why requested_ips could not be read (both the annotation and loadBalancerIP, a bad IP)


NO_EXTRAS = ServiceExtras()
EXTRA_FIELDS = tuple(f.name for f in fields(ServiceExtras))
_UNSET: Any = object()


@dataclass(frozen=True, slots=True, init=False)
class Service:
    """A Service of type LoadBalancer: only the fields that decide allocating and announcing.

    Constructed with every field by name (or in the order: namespace, name, ips, pool,
    dual_stack, families, source, uid, service_type, lb_class, requested_ips, ingress_ips,
    ip_family_policy, sharing_key, traffic_policy, ports, selector, labels, deleting, origin,
    request_error); the fields of :class:`ServiceExtras` are read as attributes of the
    Service too (``svc.pool``), and ``extras=`` gives them all at once. Labels are kept as one
    flat tuple (no tuple per pair: ~60 B a Service), uids as ints (``compact_uid``)."""
    namespace: str
    name: str
    ips: tuple[str, ...]  # requested or reported IPs (canonical text); empty = allocate
    families: tuple[int, ...]  # spec.ipFamilies as 4/6
    # --- what the controller's allocator and the speaker's announce rules read (MetalLB's semantics)
    uid_value: int | str  # metadata.uid: a UUID in its canonical text as an int (see ``uid``), else the text
    ingress_ips: tuple[str, ...]  # status.loadBalancer.ingress[].ip: what a controller assigned
    ports: tuple[tuple[str, int], ...]  # (protocol, port) of spec.ports
    # metadata.labels sorted by key, flat: (key, value, key, value...); ``labels`` gives the pairs
    label_items: tuple[str, ...]
    origin: str = field(compare=False)  # where it came from (a file path, "api"), for messages
    extras: ServiceExtras  # the rest (see ServiceExtras)

    def __init__(self, namespace: str, name: str, ips: tuple[str, ...], pool: str | None = _UNSET,
                 dual_stack: bool = _UNSET, families: tuple[int, ...] = (4,), source: Source | None = _UNSET,
                 uid: str = _UNSET, service_type: str = _UNSET, lb_class: str | None = _UNSET,
                 requested_ips: tuple[str, ...] = _UNSET, ingress_ips: tuple[str, ...] = (),
                 ip_family_policy: str = _UNSET, sharing_key: str | None = _UNSET, traffic_policy: str = _UNSET,
                 ports: tuple[tuple[str, int], ...] = (), selector: tuple[tuple[str, str], ...] = _UNSET,
                 labels: tuple[tuple[str, str], ...] = _UNSET, deleting: bool = _UNSET, origin: str = "",
                 request_error: str = _UNSET, extras: ServiceExtras = NO_EXTRAS,
                 uid_value: int | str | None = None, label_items: tuple[str, ...] | None = None) -> None:
        given = (pool, dual_stack, source, service_type, lb_class, requested_ips, ip_family_policy,
                 sharing_key, traffic_policy, selector, deleting, request_error)
        if any(v is not _UNSET for v in given):
            extras = replace(extras, **{k: v for k, v in zip(EXTRA_FIELDS, given) if v is not _UNSET})
            if extras == NO_EXTRAS and extras.source is None:
                extras = NO_EXTRAS
        put = object.__setattr__
        put(self, "namespace", namespace)
        put(self, "name", name)
        put(self, "ips", ips)
        put(self, "families", families)
        # uid and labels, when given, win over the stored forms (dataclasses.replace passes both)
        put(self, "uid_value", compact_uid(uid) if uid is not _UNSET else "" if uid_value is None else uid_value)
        put(self, "ingress_ips", ingress_ips)
        put(self, "ports", ports)
        put(self, "label_items", tuple(x for kv in labels for x in kv) if labels is not _UNSET
            else () if label_items is None else label_items)
        put(self, "origin", origin)
        put(self, "extras", extras)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def labels(self) -> tuple[tuple[str, str], ...]:
        """metadata.labels as sorted (key, value) pairs (made on each call: keep what you need)."""
        items = self.label_items
        return tuple(zip(items[::2], items[1::2])) if items else ()

    @property
    def uid(self) -> str:
        v = self.uid_value
        if type(v) is str:
            return v
        h = f"{v:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def compact_uid(uid: str) -> int | str:
    """A UID as Kubernetes makes them (a UUID: 36 characters, lower-case hex) as the int it
    spells, 48 B instead of 85; any other text as it is (``Service.uid`` gives it back)."""
    if len(uid) == 36 and uid[8] == uid[13] == uid[18] == uid[23] == "-":
        h = uid.replace("-", "")
        if len(h) == 32 and h == h.lower():
            try:
                v = int(h, 16)
            except ValueError:
                return uid
            if f"{v:032x}" == h:
                return v
    return uid


for _name in EXTRA_FIELDS:  # svc.pool, svc.traffic_policy...: read through to the extras
    setattr(Service, _name, property(attrgetter("extras." + _name), doc=f"ServiceExtras.{_name}"))
del _name


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One endpoint of an EndpointSlice, as the speaker's announce rules read it."""
    node: str | None  # endpoints[].nodeName
    ready: bool = True  # conditions.ready (unset = true, as Kubernetes says)
    serving: bool = True  # conditions.serving (unset = ready)
    terminating: bool = False  # conditions.terminating


@dataclass(frozen=True, slots=True)
class EndpointSlice:
    namespace: str
    name: str
    service: str  # label kubernetes.io/service-name
    endpoints: tuple[Endpoint, ...] = ()
    source: Source | None = field(default=None, compare=False)
    # addressType: a dual-stack Service has one slice per family listing the same pods
    address_type: str = "IPv4"


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    labels: tuple[tuple[str, str], ...] = ()
    network_unavailable: bool = False  # status.conditions NetworkUnavailable=True

    def label_dict(self) -> dict[str, str]:
        return dict(self.labels)


@dataclass(frozen=True, slots=True)
class Config:
    peers: dict[str, Peer]
    pools: dict[str, Pool]
    advertisements: dict[str, Advertisement]
    bfd_profiles: dict[str, BFDProfile]
    services: Mapping[str, Service]  # by "namespace/name" (the store's live view)
    nodes: dict[str, Node]
    warnings: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    # warnings and info notes as structured issues (severity "warning" or "info")
    issues: tuple["ConfigIssue", ...] = ()


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One validation error or warning: file, object, field path, why."""
    file: str
    obj: str  # "Kind/name"
    field: str  # e.g. "spec.holdTime"
    message: str
    severity: str = "error"  # or "warning", "info"

    def __str__(self) -> str:
        where = f"{self.file}: {self.obj}" if self.obj else self.file
        if self.field:
            where += f": {self.field}"
        return f"{where}: {self.message}"


class ConfigError(Exception):
    """Every error found in a configuration, reported at once."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))
