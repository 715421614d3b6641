"""Raw Kubernetes documents -> validated :class:`~speakerd.config.model.Config`.

One pure function, :func:`build`: every issue found is collected (file,
Kind/name, field path, reason) and the errors are raised together as one
:class:`ConfigError`.  Warnings and info notes travel on the Config.

This module sorts documents by kind and builds peers, BFD profiles, secrets
and community aliases; ``build_pools`` does pools and advertisements and
``build_services`` does Services and Nodes (the light, fast path).
"""
from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from dataclasses import dataclass, field

from . import raw
from .addr import AFI_V4, canonical_ip, parse_ip
from .build_pools import build_advertisements, build_pools
from .build_services import build_nodes, build_services
from .communities import parse_community
from .fastyaml import Run
from .load import Document, list_items
from .service_runs import service_run_ok
from .model import (BFDProfile, Config, ConfigError, ConfigIssue, LabelSelector, Peer, Source)

API_VERSIONS: dict[str, tuple[str, ...]] = {
    "BGPPeer": ("metallb.io/v1beta2", "metallb.io/v1beta1"),
    "IPAddressPool": ("metallb.io/v1beta1",),
    "BGPAdvertisement": ("metallb.io/v1beta1",),
    "BFDProfile": ("metallb.io/v1beta1",),
    "Community": ("metallb.io/v1beta1",),
    "Secret": ("v1",),
    "Service": ("v1",),
    "Node": ("v1",),
}
DEPRECATED = {("BGPPeer", "metallb.io/v1beta1"): "metallb.io/v1beta1 BGPPeer is deprecated; use metallb.io/v1beta2"}
MAX_ASN = 4294967295
BASIC_AUTH = "kubernetes.io/basic-auth"


class Issues:
    """Collects ConfigIssues; ``error``/``warn``/``info`` take the Source of the object."""

    def __init__(self) -> None:
        self.items: list[ConfigIssue] = []

    def add(self, src: Source, fld: str, msg: str, severity: str = "error") -> None:
        self.items.append(ConfigIssue(src.file, f"{src.kind}/{src.name}" if src.kind else "", fld, msg, severity))

    def error(self, src: Source, fld: str, msg: str) -> None:
        self.add(src, fld, msg)

    def warn(self, src: Source, fld: str, msg: str) -> None:
        self.add(src, fld, msg, "warning")

    def info(self, src: Source, fld: str, msg: str) -> None:
        self.add(src, fld, msg, "info")

    @property
    def errors(self) -> list[ConfigIssue]:
        return [i for i in self.items if i.severity == "error"]


@dataclass(slots=True)
class Objects:
    """Documents sorted by kind: kind -> [(Source, document)]; MetalLB kinds parsed to specs."""
    by_kind: dict[str, list[tuple[Source, dict]]] = field(default_factory=dict)
    specs: dict[str, list[tuple[Source, object, dict]]] = field(default_factory=dict)
    # Services (there can be a million): (file, namespace, name, document), no Source until an issue;
    # (file, None, None, Run) for a run of regular Service documents (service_runs)
    services: list[tuple[str, str, str, dict]] = field(default_factory=list)


def selectors(specs: list) -> tuple[LabelSelector, ...]:
    return tuple(
        LabelSelector(
            match_labels=tuple(sorted(s.matchLabels.items())),
            match_expressions=tuple((e.key, e.operator, tuple(e.values)) for e in s.matchExpressions),
        )
        for s in specs
    )


def check_selectors(specs: list, src: Source, path: str, issues: Issues) -> None:
    for i, s in enumerate(specs):
        for j, e in enumerate(s.matchExpressions):
            if e.operator in ("In", "NotIn") and not e.values:
                issues.error(src, f"{path}[{i}].matchExpressions[{j}].values", f"operator {e.operator} needs at least one value")
            if e.operator in ("Exists", "DoesNotExist") and e.values:
                issues.error(src, f"{path}[{i}].matchExpressions[{j}].values", f"operator {e.operator} takes no values")


def _expanded(docs: list[Document], services: list) -> Iterator[Document]:
    """The documents; a Run of v1 Services goes to `services` whole, any other Run is built
    (and a run of ``kind: List`` documents expanded into their items, as load_documents
    expands a single one)."""
    for doc in docs:
        data = doc.data
        if type(data) is Run:
            if service_run_ok(data):
                services.append((doc.file, None, None, data))
            else:
                for j, d in enumerate(data.documents()):
                    items = list_items(d)
                    for item in (d,) if items is None else items:
                        yield Document(doc.file, doc.index + j, item)
            continue
        yield doc


def sort_documents(docs: list[Document], issues: Issues) -> Objects:
    objs = Objects()
    services = objs.services
    for doc in _expanded(docs, services):
        data = doc.data
        if type(data) is dict and data.get("kind") == "Service" and data.get("apiVersion") == "v1":
            meta = data.get("metadata")
            if type(meta) is dict:
                name = meta.get("name")
                if type(name) is str and name:
                    ns = meta.get("namespace") or ""
                    services.append((doc.file, ns if type(ns) is str else "", name, data))
                    continue
        where = Source(doc.file, "", f"document {doc.index + 1}")
        if not isinstance(data, dict):
            issues.error(where, "", f"document {doc.index + 1} is not a Kubernetes object (got {type(data).__name__})")
            continue
        kind = data.get("kind")
        api = data.get("apiVersion")
        meta = data.get("metadata")
        if not isinstance(kind, str) or not isinstance(api, str):
            issues.error(where, "", f"document {doc.index + 1} has no kind/apiVersion")
            continue
        if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta.get("name"):
            issues.error(Source(doc.file, kind, "?"), "metadata.name", "required field is missing")
            continue
        ns = meta.get("namespace") or ""
        src = Source(doc.file, kind, meta["name"], ns if isinstance(ns, str) else "")
        if kind not in API_VERSIONS:
            issues.info(src, "", f"kind {kind} ({api}) is not used by speakerd; skipped")
            continue
        if api not in API_VERSIONS[kind]:
            issues.error(src, "apiVersion", f"unsupported apiVersion {api!r} for {kind} (expected {' or '.join(API_VERSIONS[kind])})")
            continue
        if (kind, api) in DEPRECATED:
            issues.warn(src, "apiVersion", DEPRECATED[(kind, api)])
        if kind == "Service":
            services.append((src.file, src.namespace, src.name, data))
            continue
        objs.by_kind.setdefault(kind, []).append((src, data))
    for kind in raw.SPECS:
        parsed = []
        seen: dict[str, Source] = {}
        for src, data in objs.by_kind.get(kind, []):
            if src.name in seen:
                other = seen[src.name]
                issues.error(src, "metadata.name", f"duplicate {kind} name {src.name!r} (first defined in {other.file})")
                continue
            seen[src.name] = src
            extra = set(data) - {"apiVersion", "kind", "metadata", "spec", "status"}
            for k in sorted(extra):
                issues.error(src, k, f"unknown field {k}")
            spec, problems = raw.parse_spec(kind, data.get("spec"))
            for fld, msg in problems:
                issues.error(src, fld, msg)
            if spec is not None:
                parsed.append((src, spec, data))
        objs.specs[kind] = parsed
    return objs


# --- secrets, communities, BFD ----------------------------------------------


def build_secrets(objs: Objects, issues: Issues) -> dict[tuple[str, str], tuple[Source, dict]]:
    out = {}
    for src, data in objs.by_kind.get("Secret", []):
        key = (src.namespace, src.name)
        if key in out:
            issues.error(src, "metadata.name", f"duplicate Secret {src.namespace}/{src.name} (first defined in {out[key][0].file})")
            continue
        out[key] = (src, data)
    return out


def secret_password(src: Source, data: dict, peer: Source, issues: Issues) -> str | None:
    stype = data.get("type")
    if stype != BASIC_AUTH:
        issues.error(peer, "spec.passwordSecret", f"Secret {src.namespace}/{src.name} has type {stype!r}, expected {BASIC_AUTH}")
        return None
    string_data = data.get("stringData") or {}
    if isinstance(string_data, dict) and isinstance(string_data.get("password"), str):
        return string_data["password"]
    b64 = (data.get("data") or {}).get("password") if isinstance(data.get("data"), dict) else None
    if b64 is None:
        issues.error(peer, "spec.passwordSecret", f"Secret {src.namespace}/{src.name} has no key 'password'")
        return None
    try:
        return base64.b64decode(str(b64), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        issues.error(peer, "spec.passwordSecret", f"Secret {src.namespace}/{src.name}: data.password is not valid base64 text")
        return None


def build_community_aliases(objs: Objects, issues: Issues) -> dict[str, object]:
    aliases: dict[str, object] = {}
    where: dict[str, Source] = {}
    for src, spec, _ in objs.specs.get("Community", []):
        for i, c in enumerate(spec.communities):
            if c.name in aliases:
                issues.error(src, f"spec.communities[{i}].name", f"duplicate community alias {c.name!r} (also in Community/{where[c.name].name})")
                continue
            try:
                aliases[c.name] = parse_community(c.value)
                where[c.name] = src
            except ValueError as exc:
                issues.error(src, f"spec.communities[{i}].value", str(exc))
    return aliases


def _bfd_range(src: Source, issues: Issues, fld: str, value: int | None, lo: int, hi: int, default: int, unit: str = "") -> int:
    if value is None:
        return default
    if not lo <= value <= hi:
        issues.error(src, f"spec.{fld}", f"{value}{unit} is out of range {lo}..{hi}{unit}")
    return value


def build_bfd_profiles(objs: Objects, issues: Issues) -> dict[str, BFDProfile]:
    out = {}
    for src, spec, _ in objs.specs.get("BFDProfile", []):
        if spec.echoMode:
            issues.error(src, "spec.echoMode", "echo mode is not supported by speakerd (its BFD has no echo function); set echoMode: false")
        if spec.echoInterval is not None:
            _bfd_range(src, issues, "echoInterval", spec.echoInterval, 10, 60000, 50, " ms")
            if not spec.echoMode:
                issues.info(src, "spec.echoInterval", "echoInterval has no effect without echo mode")
        out[src.name] = BFDProfile(
            name=src.name,
            receive_interval_ms=_bfd_range(src, issues, "receiveInterval", spec.receiveInterval, 10, 60000, 300, " ms"),
            transmit_interval_ms=_bfd_range(src, issues, "transmitInterval", spec.transmitInterval, 10, 60000, 300, " ms"),
            detect_multiplier=_bfd_range(src, issues, "detectMultiplier", spec.detectMultiplier, 2, 255, 3),
            passive_mode=spec.passiveMode,
            minimum_ttl=_bfd_range(src, issues, "minimumTtl", spec.minimumTtl, 1, 254, 254),
            source=src,
        )
    return out


# --- peers --------------------------------------------------------------------


def _seconds(src: Source, issues: Issues, fld: str, value: float | None) -> int | None:
    if value is None:
        return None
    if value != int(value):
        issues.error(src, f"spec.{fld}", f"{value:g}s: BGP timers are whole seconds")
    return int(value)


def build_peer(src: Source, spec: raw.BGPPeerSpec, objs: Objects, secrets: dict, bfd: dict, issues: Issues) -> Peer | None:
    ok = len(issues.errors)
    for fld, asn in (("myASN", spec.myASN), ("peerASN", spec.peerASN)):
        if not 1 <= asn <= MAX_ASN:
            issues.error(src, f"spec.{fld}", f"ASN {asn} is out of range 1..{MAX_ASN}")
    peer_afi = None
    peer_address = spec.peerAddress
    try:
        peer_afi, _ = parse_ip(spec.peerAddress)
        peer_address = canonical_ip(spec.peerAddress)
    except ValueError:
        issues.error(src, "spec.peerAddress", f"invalid IP address {spec.peerAddress!r}")
    source_address = None
    if spec.sourceAddress is not None:
        try:
            afi, _ = parse_ip(spec.sourceAddress)
            source_address = canonical_ip(spec.sourceAddress)
            if peer_afi is not None and afi != peer_afi:
                issues.error(src, "spec.sourceAddress", f"{spec.sourceAddress} is not the same address family as peerAddress {spec.peerAddress}")
        except ValueError:
            issues.error(src, "spec.sourceAddress", f"invalid IP address {spec.sourceAddress!r}")
    port = 179 if spec.peerPort is None else spec.peerPort
    if not 1 <= port <= 16384:
        issues.error(src, "spec.peerPort", f"port {port} is out of range 1..16384")
    hold = _seconds(src, issues, "holdTime", spec.holdTime)
    keep = _seconds(src, issues, "keepaliveTime", spec.keepaliveTime)
    if hold is None and keep is None:
        hold, keep = 90, 30
    elif hold is None:
        hold = 3 * keep
    elif keep is None:
        keep = hold // 3
    if hold != 0 and hold < 3:
        issues.error(src, "spec.holdTime", f"hold time {hold}s must be 0 or at least 3s")
    if hold > 65535:
        issues.error(src, "spec.holdTime", f"hold time {hold}s exceeds 65535s")
    if keep > hold:
        issues.error(src, "spec.keepaliveTime", f"keepalive time {keep}s must not exceed hold time {hold}s")
    connect = _seconds(src, issues, "connectTime", spec.connectTime)
    if connect is None:
        connect = 120
    elif not 1 <= connect <= 65535:
        issues.error(src, "spec.connectTime", f"connect time {connect}s is out of range 1..65535s")
    router_id = None
    if spec.routerID is not None:
        try:
            afi, _ = parse_ip(spec.routerID)
            if afi != AFI_V4:
                raise ValueError
            router_id = canonical_ip(spec.routerID)
        except ValueError:
            issues.error(src, "spec.routerID", f"router ID {spec.routerID!r} must be an IPv4 address (dotted quad)")
    password = spec.password
    if spec.password is not None and spec.passwordSecret is not None:
        issues.error(src, "spec.passwordSecret", "password and passwordSecret are mutually exclusive; set only one")
    elif spec.passwordSecret is not None:
        ns = spec.passwordSecret.namespace or src.namespace
        found = secrets.get((ns, spec.passwordSecret.name))
        if found is None:
            issues.error(src, "spec.passwordSecret", f"Secret {ns}/{spec.passwordSecret.name} not found")
        else:
            password = secret_password(found[0], found[1], src, issues)
    if password is not None and len(password.encode()) > 80:
        issues.error(src, "spec.password", "TCP MD5 keys are at most 80 bytes")
    if spec.bfdProfile is not None and spec.bfdProfile not in bfd:
        issues.error(src, "spec.bfdProfile", f"BFDProfile {spec.bfdProfile!r} not found")
    if spec.ebgpMultiHop and spec.myASN == spec.peerASN:
        issues.error(src, "spec.ebgpMultiHop", "ebgpMultiHop is for eBGP peers; this peer is iBGP (myASN == peerASN)")
    check_selectors(spec.nodeSelectors, src, "spec.nodeSelectors", issues)
    if len(issues.errors) != ok:
        return None
    return Peer(
        name=src.name, my_asn=spec.myASN, peer_asn=spec.peerASN, peer_address=peer_address, peer_port=port,
        source_address=source_address, hold_time=hold, keepalive_time=keep, connect_time=connect,
        router_id=router_id, password=password, bfd_profile=spec.bfdProfile,
        node_selectors=selectors(spec.nodeSelectors), ebgp_multihop=spec.ebgpMultiHop,
        vrf=spec.vrf or None, graceful_restart=spec.enableGracefulRestart, source=src,
    )


def build_peers(objs: Objects, secrets: dict, bfd: dict, issues: Issues) -> dict[str, Peer]:
    peers: dict[str, Peer] = {}
    first_asn: tuple[int, Source] | None = None
    first_rid: tuple[str, Source] | None = None
    for src, spec, _ in objs.specs.get("BGPPeer", []):
        if first_asn is None:
            first_asn = (spec.myASN, src)
        elif spec.myASN != first_asn[0]:
            issues.error(src, "spec.myASN", f"myASN {spec.myASN} differs from {first_asn[0]} in BGPPeer/{first_asn[1].name}; all peers must use the same myASN")
        if spec.routerID is not None:
            if first_rid is None:
                first_rid = (spec.routerID, src)
            elif spec.routerID != first_rid[0]:
                issues.error(src, "spec.routerID", f"routerID {spec.routerID} differs from {first_rid[0]} in BGPPeer/{first_rid[1].name}; all peers must use the same routerID")
        peer = build_peer(src, spec, objs, secrets, bfd, issues)
        if peer is not None:
            peers[peer.name] = peer
    return peers


# --- all ------------------------------------------------------------------------


def build(docs: list[Document], files: tuple[str, ...] = (), pre_issues: list[ConfigIssue] | None = None) -> Config:
    """Validate documents into a Config; raise ConfigError with every error found."""
    issues = Issues()
    issues.items.extend(pre_issues or [])
    objs = sort_documents(docs, issues)
    secrets = build_secrets(objs, issues)
    aliases = build_community_aliases(objs, issues)
    bfd = build_bfd_profiles(objs, issues)
    peers = build_peers(objs, secrets, bfd, issues)
    pools, pool_masks = build_pools(objs, issues)
    peer_names = {src.name for src, _, _ in objs.specs.get("BGPPeer", [])}
    pool_names = {src.name for src, _, _ in objs.specs.get("IPAddressPool", [])}
    ads = build_advertisements(objs, pools, pool_masks, pool_names, peers, peer_names, aliases, issues)
    services = build_services(objs.services, pools, pool_names, issues)
    nodes = build_nodes(objs.by_kind.get("Node", []), issues)
    errors = issues.errors
    if errors:
        raise ConfigError(errors)
    notes = tuple(i for i in issues.items if i.severity != "error")
    return Config(
        peers=peers, pools=pools, advertisements=ads, bfd_profiles=bfd, services=services, nodes=nodes,
        warnings=tuple(str(i) for i in notes if i.severity == "warning"), files=tuple(files), issues=notes,
    )
