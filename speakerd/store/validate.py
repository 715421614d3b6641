"""One validator per kind: a raw Kubernetes object (a dict as the API server or kubectl
gives it) -> a model object, or the issues that keep it out.

Validators read only the fields speakerd uses and ignore everything else an object
carries (managedFields, uid, resourceVersion, status of kinds whose status is unused...).
The MetalLB kinds are parsed here one object at a time (``metallb_spec``); what
depends on several of them (references, overlaps) is ``config.build.build_metallb``.
"""
from __future__ import annotations

import difflib
import socket
import sys
from typing import Any

from ..config import raw
from ..config.common import Issues
from ..config.addr import format_ip, parse_ip
from ..config.model import EXTRA_FIELDS, NO_EXTRAS, Endpoint, EndpointSlice, Node, Service, ServiceExtras, Source

# (old, stable) key pairs: where both are set the stable one wins (MetalLB's valueForAnnotation)
POOL_ANNOTATIONS = ("metallb.universe.tf/address-pool", "metallb.io/address-pool")
IPS_ANNOTATIONS = ("metallb.universe.tf/loadBalancerIPs", "metallb.io/loadBalancerIPs")
SHARING_ANNOTATIONS = ("metallb.universe.tf/allow-shared-ip", "metallb.io/allow-shared-ip")
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
FAMILIES = {"IPv4": 4, "IPv6": 6}
POLICIES = ("SingleStack", "PreferDualStack", "RequireDualStack")

API_VERSIONS: dict[str, tuple[str, ...]] = {
    "BGPPeer": ("metallb.io/v1beta2", "metallb.io/v1beta1"),
    "IPAddressPool": ("metallb.io/v1beta1",),
    "BGPAdvertisement": ("metallb.io/v1beta1",),
    "BFDProfile": ("metallb.io/v1beta1",),
    "Community": ("metallb.io/v1beta1",),
    "Secret": ("v1",),
    "Service": ("v1",),
    "Node": ("v1",),
    "EndpointSlice": ("discovery.k8s.io/v1",),
}
METALLB_KINDS = ("BGPPeer", "IPAddressPool", "BGPAdvertisement", "BFDProfile", "Community")
METALLB_GROUP = "metallb.io/"
# MetalLB kinds speakerd does not implement (L2 mode): not errors, just not used
METALLB_OTHER = ("L2Advertisement", "ServiceL2Status", "ServiceBGPStatus", "BGPSessionState", "ConfigurationState")
DEPRECATED = {("BGPPeer", "metallb.io/v1beta1"): "metallb.io/v1beta1 BGPPeer is deprecated; use metallb.io/v1beta2"}

_pton = socket.inet_pton
_AF4 = socket.AF_INET
_intern = sys.intern


# --- identity: kind, apiVersion, name --------------------------------------------------------

def identify(obj: Any, origin: str, issues: Issues) -> tuple[str, str, str] | None:
    """(kind, namespace, name) of an object speakerd uses, else None (with an issue when the
    object is malformed or of a misspelt/unknown version of a kind speakerd knows)."""
    if type(obj) is not dict:
        issues.error(Source(origin, "", ""), "", f"not a Kubernetes object (got {type(obj).__name__})")
        return None
    kind = obj.get("kind")
    api = obj.get("apiVersion")
    meta = obj.get("metadata")
    if type(kind) is not str or type(api) is not str:
        issues.error(Source(origin, "", ""), "", "an object without kind/apiVersion")
        return None
    versions = API_VERSIONS.get(kind)
    if versions is None:
        if api.startswith(METALLB_GROUP) and kind not in METALLB_OTHER:
            hint = difflib.get_close_matches(kind, METALLB_KINDS, n=1, cutoff=0.6)
            name = meta.get("name") if type(meta) is dict else None
            issues.error(Source(origin, kind, str(name or "?")), "kind",
                         f"unknown kind {kind!r} in {api}" + (f"; did you mean {hint[0]}?" if hint else ""))
        return None  # a kind speakerd does not use: skipped without validation
    if type(meta) is not dict or type(meta.get("name")) is not str or not meta["name"]:
        issues.error(Source(origin, kind, "?"), "metadata.name", "required field is missing")
        return None
    ns = meta.get("namespace") or ""
    if type(ns) is not str:
        ns = ""
    if api not in versions:
        issues.error(Source(origin, kind, meta["name"], ns), "apiVersion",
                     f"unsupported apiVersion {api!r} for {kind} (expected {' or '.join(versions)})")
        return None
    return kind, ns, meta["name"]


# --- Services ------------------------------------------------------------------------------

def _canonical(text: object) -> str | None:
    """The canonical text of an IP address, None when it is not one (inet_pton accepts only
    canonical dotted quads, so an IPv4 text it accepts is returned as it is)."""
    if type(text) is str and ":" not in text:
        try:
            _pton(_AF4, text)
            return text
        except (OSError, ValueError):  # ValueError: an embedded NUL
            return None
    try:
        afi, value = parse_ip(text)  # type: ignore[arg-type]
    except ValueError:
        return None
    return format_ip(afi, value)


_PAIRS: dict[tuple[str, str], tuple[str, str]] = {}  # one object per distinct (key, value) pair
_PAIRS_MAX = 1 << 18  # then forgotten (objects already made stay shared): bounded under churn


def _pair(k: str, v: str, name: str) -> tuple[str, str]:
    got = _PAIRS.get((k, v))
    if got is None:
        if len(_PAIRS) >= _PAIRS_MAX:
            _PAIRS.clear()
        # the key interned (a few keys, on every object); the value shared through this table
        # only: interning it too cost an entry in the interpreter's table per distinct value.
        # A value equal to the object's name (``kubectl expose``'s app: NAME, Helm's
        # app.kubernetes.io/instance) is the name's own string, not a second copy
        got = (_intern(k), name if v == name else v)
        _PAIRS[got] = got
    return got


_VALUES: dict[str, str] = {}  # one string per distinct label value
_VALUES_MAX = 1 << 18


def _str_map(d: Any) -> bool:
    """Whether ``d`` is a map of strings to strings (labels, a selector)."""
    return type(d) is dict and all(type(k) is str and type(v) is str for k, v in d.items())


def _label_items(d: Any, name: str) -> tuple[str, ...] | None:
    """A Service's labels as ``Service.label_items`` (sorted by key, flat), None when one is not
    a string. Keys are interned (a few, on every object), values shared through a table (most
    repeat across Services), and a value equal to the Service's name (``kubectl expose``'s
    app: NAME, Helm's app.kubernetes.io/instance) is the name's own string."""
    if not d:
        return ()
    if not _str_map(d):
        return None
    out: list[str] = []
    values = _VALUES
    for k, v in sorted(d.items()) if len(d) > 1 else d.items():
        if v == name:
            v = name
        else:
            got = values.get(v)
            if got is None:
                if len(values) >= _VALUES_MAX:
                    values.clear()
                got = values[v] = v
            v = got
        out.append(_intern(k))
        out.append(v)
    return tuple(out)


_SHARED: dict = {}  # one object per distinct small value Services hold (families, ports, extras)
_SHARED_MAX = 1 << 16


def _shared(t: Any) -> Any:
    """``t``, or an equal tuple made before: most Services have the same families and the same
    few ports (a one-port tuple and its (protocol, port) pair are 100 B a Service)."""
    got = _SHARED.get(t)
    if got is None:
        if len(_SHARED) >= _SHARED_MAX:
            _SHARED.clear()
        got = _SHARED[t] = t
    return got


def _str_pairs(d: Any, name: str = "") -> tuple[tuple[str, str], ...] | None:
    """Sorted (key, value) pairs of a string map, None when one is not a string. Pairs and
    strings are shared: label keys and most (key, value) pairs repeat across thousands of
    Services (a pair is 64 B, a Service's labels were a fifth of what it kept)."""
    if not d:
        return ()
    if not _str_map(d):
        return None
    return tuple(sorted(_pair(k, v, name) for k, v in d.items()))


def _ip_list(src: Source, fld: str, texts: list[tuple[str, object]], issues: Issues) -> tuple[tuple[str, ...], bool]:
    out: list[str] = []
    ok = True
    for f, text in texts:
        ip = _canonical(text)
        if ip is None:
            issues.error(src, f or fld, f"invalid IP address {text!r}")
            ok = False
        elif ip not in out:
            out.append(ip)
    return tuple(out), ok


def service(obj: dict, origin: str, lb_class: str | None, issues: Issues, uid: bool = True) -> Service | None:
    """A LoadBalancer Service of this speaker's class, or None (not one, or invalid: issues).
    ``uid``: keep metadata.uid (False: ``Service.uid`` is "")."""
    spec = obj.get("spec")
    if type(spec) is not dict or spec.get("type") != "LoadBalancer":
        return None
    cls = spec.get("loadBalancerClass")
    if cls != lb_class:
        meta = obj["metadata"]
        ns = meta.get("namespace") or "default"
        issues.info(Source(origin, "Service", f"{ns}/{meta['name']}", ns), "spec.loadBalancerClass",
                    f"loadBalancerClass {cls!r}: handled by another load balancer; skipped" if cls is not None else
                    f"no loadBalancerClass: not of this speaker's class {lb_class!r}; skipped")
        return None
    svc, ok = read_service(obj, origin, issues, uid)
    return svc if ok else None


def read_service(obj: dict, origin: str, issues: Issues, uid: bool = True) -> tuple[Service, bool]:
    """Every field of a Service that speakerd reads, whatever its type or class: the store's
    :func:`service` (the speaker: LoadBalancer Services of its class, refused when a field is
    invalid) and the controller's allocator (every Service: it releases addresses on a type or
    class change, and answers a bad address request with MetalLB's AllocationFailed message,
    ``Service.request_error``) both read Services here.

    Returns the Service and whether every field was valid; each invalid field is an issue and
    is left out (an unreadable ingress IP, a non-string label map...). ``families`` is what the
    object says (``spec.ipFamilies``; else the families of ``spec.clusterIPs``; else IPv4):
    whether a dual-stack policy adds the other family is the allocator's rule."""
    meta = obj["metadata"]
    ns = meta.get("namespace") or "default"
    name = meta["name"]
    src = Source(origin, "Service", f"{ns}/{name}", ns)
    spec = obj.get("spec")
    ok = True
    if type(spec) is not dict:
        issues.error(src, "spec", f"expected a mapping, got {spec!r}")
        spec, ok = {}, False
    ann = meta.get("annotations")
    if ann is not None and type(ann) is not dict:
        issues.error(src, "metadata.annotations", f"expected a mapping, got {ann!r}")
        ann, ok = None, False
    ann = ann or {}
    # status.loadBalancer.ingress: what a controller assigned
    ingress_texts: list[tuple[str, object]] = []
    status = obj.get("status")
    lb = status.get("loadBalancer") if type(status) is dict else None
    ingress = lb.get("ingress") if type(lb) is dict else None
    if type(ingress) is list:
        for i, entry in enumerate(ingress):
            if type(entry) is dict and "ip" in entry:
                ingress_texts.append((f"status.loadBalancer.ingress[{i}].ip", entry["ip"]))
    ingress_ips, good = _ip_list(src, "status.loadBalancer.ingress", ingress_texts, issues)
    ok &= good
    requested, request_error, good = _requested(src, ann, spec, issues)
    ok &= good
    pool = _annotation(ann, POOL_ANNOTATIONS)
    if pool is not None and type(pool) is not str:
        issues.error(src, f"metadata.annotations[{_annotation_key(ann, POOL_ANNOTATIONS)}]",
                     f"expected an IPAddressPool name, got {pool!r}")
        pool, ok = None, False
    sharing = _annotation(ann, SHARING_ANNOTATIONS)
    if sharing is not None and type(sharing) is not str:
        sharing = str(sharing)
    policy = spec.get("ipFamilyPolicy") or "SingleStack"
    if policy not in POLICIES:
        issues.error(src, "spec.ipFamilyPolicy", f"unknown ipFamilyPolicy {policy!r} (expected {', '.join(POLICIES)})")
        ok = False
    fams = spec.get("ipFamilies")
    families: tuple[int, ...] | None = None
    if fams is not None:
        if (type(fams) is not list or not fams or any(type(f) is not str or f not in FAMILIES for f in fams)
                or len(set(fams)) != len(fams)):
            issues.error(src, "spec.ipFamilies", f"expected IPv4 and/or IPv6 once each, got {fams!r}")
            ok = False
        else:
            families = _shared(tuple(FAMILIES[f] for f in fams))
            if len(families) == 2 and policy == "SingleStack":
                issues.error(src, "spec.ipFamilies", "two families need ipFamilyPolicy PreferDualStack or RequireDualStack")
                ok = False
    if families is None:
        families = _cluster_ip_families(spec)
    dual = policy != "SingleStack"
    ips = ingress_ips or requested
    if ips and not dual:
        want6 = families[0] == 6
        if any((":" in ip) != want6 for ip in ips):
            issues.warn(src, "spec.ipFamilies", f"IP {', '.join(ips)} is not of the service's family IPv{families[0]}")
    labels = _label_items(meta.get("labels"), name)
    if labels is None:
        issues.error(src, "metadata.labels", "label keys and values must be strings (quote them)")
        ok = False
    policy_t = spec.get("externalTrafficPolicy") or "Cluster"
    # the selector decides only whether Services with externalTrafficPolicy Local may share an
    # address (MetalLB's backend key): kept for those alone (two label pairs ~ 180 B a Service)
    selector: tuple | None = ()
    if policy_t == "Local":
        selector = _str_pairs(spec.get("selector"), name)
        if selector is None:
            selector = tuple(sorted((str(k), str(v)) for k, v in spec["selector"].items())) \
                if type(spec.get("selector")) is dict else ()
    ports: list[tuple[str, int]] = []
    for p in spec.get("ports") or ():
        if type(p) is dict and type(p.get("port")) is int:
            ports.append(_shared((_intern(str(p.get("protocol") or "TCP")), p["port"])))
    stype = spec.get("type") or "ClusterIP"
    cls = spec.get("loadBalancerClass") or None
    extras = _extras(_intern(pool) if pool else None, dual, _intern(stype) if type(stype) is str else "ClusterIP",
                     cls, requested, _intern(policy) if type(policy) is str else "SingleStack", sharing,
                     _intern(policy_t) if type(policy_t) is str else "Cluster", selector or (),
                     bool(meta.get("deletionTimestamp")), request_error)
    return Service(_intern(ns), name, ips, families=families, uid=str(meta.get("uid") or "") if uid else "",
                   ingress_ips=ingress_ips, ports=_shared(tuple(ports)), label_items=labels or (), origin=origin,
                   extras=extras), ok


_DEFAULTS = tuple(getattr(NO_EXTRAS, f) for f in EXTRA_FIELDS if f != "source")


def _extras(*values) -> ServiceExtras:
    """The ServiceExtras of these values (its fields but ``source``, in order): the one shared
    default object when they are the defaults, else one shared per distinct value."""
    if values == _DEFAULTS:
        return NO_EXTRAS
    pool, dual, stype, cls, requested, policy, sharing, policy_t, selector, deleting, request_error = values
    return _shared(ServiceExtras(pool, dual, None, stype, cls, requested, policy, sharing, policy_t, selector,
                                 deleting, request_error))


def _annotation_key(ann: dict, keys: tuple[str, str]) -> str | None:
    """MetalLB's valueForAnnotation: the metallb.io key wins over the metallb.universe.tf one
    (``keys`` is (old, stable))."""
    old, stable = keys
    if stable in ann:
        return stable
    return old if old in ann else None


def _annotation(ann: dict, keys: tuple[str, str]):
    k = _annotation_key(ann, keys)
    return ann[k] if k is not None else None


def _requested(src: Source, ann: dict, spec: dict, issues: Issues) -> tuple[tuple[str, ...], str, bool]:
    """MetalLB's getDesiredLbIPs: the addresses a Service asks for (the loadBalancerIPs annotation,
    else spec.loadBalancerIP) -> (canonical IPs, MetalLB's error text or "", valid)."""
    key = _annotation_key(ann, IPS_ANNOTATIONS)
    lbip = spec.get("loadBalancerIP") or ""
    if key is None and not lbip:
        return (), "", True
    fld = f"metadata.annotations[{key}]"
    if key is not None and lbip:  # MetalLB's controller refuses such a Service too
        issues.error(src, "spec.loadBalancerIP", f"both {key} and spec.loadBalancerIP are set; set only one")
        return (), f"service can not have both {IPS_ANNOTATIONS[1]} and svc.Spec.LoadBalancerIP", False
    if key is not None:
        value = ann[key]
        if type(value) is not str:
            issues.error(src, fld, "expected a comma-separated list of IPs")
            return (), f'invalid {IPS_ANNOTATIONS[1]}: "{value}"', False
        texts = [(fld, t.strip()) for t in value.split(",") if t.strip()]
        bad = f'invalid {IPS_ANNOTATIONS[1]}: "{value}"'
    else:
        texts = [("spec.loadBalancerIP", lbip)]
        bad = f'invalid spec.loadBalancerIP "{lbip}"'
    ips, good = _ip_list(src, "", texts, issues)
    return (ips, "", True) if good else ((), bad, False)


def _cluster_ip_families(spec: dict) -> tuple[int, ...]:
    """Families of spec.clusterIPs (or clusterIP), for a Service without ipFamilies; IPv4 when none."""
    ips = spec.get("clusterIPs")
    if type(ips) is not list:
        ip = spec.get("clusterIP")
        ips = [ip] if ip not in (None, "", "None") else []
    out: list[int] = []
    for ip in ips:
        f = 6 if ":" in str(ip) else 4
        if f not in out:
            out.append(f)
    return _shared(tuple(out)) if out else (4,)


def pool_name(obj: dict) -> str | None:
    """The pool a Service's annotation names (a string), else None."""
    ann = obj["metadata"].get("annotations")
    if type(ann) is dict:
        pool = _annotation(ann, POOL_ANNOTATIONS)
        return pool if type(pool) is str else None
    return None


# --- EndpointSlices and Nodes -----------------------------------------------------------------

def endpoint_slice(obj: dict, origin: str, issues: Issues) -> EndpointSlice | None:
    meta = obj["metadata"]
    ns = meta.get("namespace") or "default"
    src = Source(origin, "EndpointSlice", f"{ns}/{meta['name']}", ns)
    labels = meta.get("labels")
    svc = labels.get(SERVICE_NAME_LABEL) if type(labels) is dict else None
    if type(svc) is not str or not svc:
        issues.info(src, f"metadata.labels[{SERVICE_NAME_LABEL}]", "no Service named; skipped")
        return None
    eps: list[Endpoint] = []
    for i, ep in enumerate(obj.get("endpoints") or ()):
        if type(ep) is not dict:
            issues.error(src, f"endpoints[{i}]", "expected a mapping")
            return None
        cond = ep.get("conditions") if type(ep.get("conditions")) is dict else {}
        ready = cond.get("ready")
        ready = True if ready is None else ready is True
        serving = cond.get("serving")
        serving = ready if serving is None else serving is True
        node = ep.get("nodeName")
        eps.append(Endpoint(node if type(node) is str else None, ready, serving, cond.get("terminating") is True))
    atype = obj.get("addressType")
    return EndpointSlice(_intern(ns), meta["name"], svc, tuple(eps), src,
                         _intern(atype) if type(atype) is str else "IPv4")


def node(obj: dict, origin: str, issues: Issues) -> Node | None:
    meta = obj["metadata"]
    src = Source(origin, "Node", meta["name"])
    labels = meta.get("labels") or {}
    if type(labels) is not dict:
        issues.error(src, "metadata.labels", "expected a mapping")
        return None
    bad = [(k, v) for k, v in labels.items() if type(k) is not str or type(v) is not str]
    for k, v in bad:
        issues.error(src, f"metadata.labels[{k}]", f"label keys and values must be strings, got {k!r}: {v!r} (quote it)")
    if bad:
        return None
    unavailable = False
    status = obj.get("status")
    for c in (status.get("conditions") or ()) if type(status) is dict else ():
        if type(c) is dict and c.get("type") == "NetworkUnavailable":
            unavailable = c.get("status") == "True"
    return Node(meta["name"], tuple(sorted(labels.items())), unavailable)


# --- the MetalLB kinds, one object ------------------------------------------------------------

def metallb_spec(kind: str, obj: dict, src: Source, issues: Issues):
    """The parsed spec of one MetalLB object, or None (issues say why)."""
    if (kind, obj.get("apiVersion")) in DEPRECATED:
        issues.warn(src, "apiVersion", DEPRECATED[(kind, obj["apiVersion"])])
    extra = set(obj) - {"apiVersion", "kind", "metadata", "spec", "status"}
    for k in sorted(extra):
        issues.error(src, k, f"unknown field {k}")
    spec, problems = raw.parse_spec(kind, obj.get("spec"))
    for fld, msg in problems:
        issues.error(src, fld, msg)
    return spec if not extra else None
