"""The MetalLB objects of the store -> peers, pools, advertisements, BFD profiles.

:func:`build_metallb` is pure: it takes every MetalLB object (each already parsed
by its kind's validator, ``store.validate.metallb_spec``) and the Secrets, checks
what depends on several of them (references, overlaps, ASN consistency) and
returns a :class:`MetalLB`, collecting every issue (file, Kind/name, field path,
reason).  The store refuses a new MetalLB configuration with any error and keeps
the running one, as MetalLB does.
"""
from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field

from . import raw
from .addr import AFI_FAMILY, AFI_V4, AFI_V6, canonical_ip, parse_ip
from .build_pools import build_advertisements, build_pools
from .common import Issues, annotation, check_selectors, selectors
from .communities import parse_community
from .model import Advertisement, BFDProfile, LabelSelector, Peer, Pool, Source

MAX_ASN = 4294967295
BASIC_AUTH = "kubernetes.io/basic-auth"


@dataclass(slots=True)
class Objects:
    """MetalLB objects by kind: kind -> [(Source, parsed spec, document)]; Secrets by kind too."""
    by_kind: dict[str, list[tuple[Source, dict]]] = field(default_factory=dict)
    specs: dict[str, list[tuple[Source, object, dict]]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MetalLB:
    """A validated MetalLB configuration."""
    peers: dict[str, Peer] = field(default_factory=dict)
    pools: dict[str, Pool] = field(default_factory=dict)
    advertisements: dict[str, Advertisement] = field(default_factory=dict)
    bfd_profiles: dict[str, BFDProfile] = field(default_factory=dict)


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


MAX_PREFIXES_ANNOTATION = "speakerd.io/max-prefixes"  # speakerd extension on BGPPeer
_IFNAME = re.compile(r"[^\s/%:]{1,15}")  # a Linux interface name (IFNAMSIZ - 1, no '/', ':')


def _max_prefixes(src: Source, doc: dict | None, issues: Issues) -> int | None:
    """The BGPPeer annotation speakerd.io/max-prefixes (an annotation, not a spec field:
    the API server prunes fields MetalLB's CRD does not define)."""
    value = annotation(src, doc, MAX_PREFIXES_ANNOTATION, issues)
    if value is None:
        return None
    text = str(value).strip()
    if not text.isdigit() or int(text) < 1:
        issues.error(src, f"metadata.annotations[{MAX_PREFIXES_ANNOTATION}]",
                     f"{value!r}: expected a positive integer (received prefixes per address family)")
        return None
    return int(text)


def build_peer(src: Source, spec: raw.BGPPeerSpec, objs: Objects, secrets: dict, bfd: dict, issues: Issues,
               doc: dict | None = None) -> Peer | None:
    ok = len(issues.errors)
    max_prefixes = _max_prefixes(src, doc, issues)
    secret_ref = spec.passwordSecret
    if secret_ref is not None and not secret_ref.name:
        if secret_ref.namespace:
            issues.error(src, "spec.passwordSecret.name", "required field is missing")
        secret_ref = None  # passwordSecret: {} as the API server returns an unset one
    peer_asn = spec.peerASN or 0  # 0 is "unset" in MetalLB's API (omitempty)
    if not peer_asn and spec.dynamicASN is None:
        issues.error(src, "spec.peerASN", "one of peerASN and dynamicASN (internal or external) is required")
    elif peer_asn and spec.dynamicASN is not None:
        issues.error(src, "spec.dynamicASN", "peerASN and dynamicASN are mutually exclusive; set only one")
    for fld, asn in (("myASN", spec.myASN), ("peerASN", spec.peerASN), ("localASN", spec.localASN)):
        if asn is not None and not (fld in ("peerASN", "localASN") and asn == 0) and not 1 <= asn <= MAX_ASN:
            issues.error(src, f"spec.{fld}", f"ASN {asn} is out of range 1..{MAX_ASN}")
    local_override = spec.localASN or None  # 0 is "unset" (omitempty)
    if local_override is not None:
        # the rules FRR applies to "neighbor X local-as N", which MetalLB renders from localASN
        if spec.dynamicASN == "internal" or (peer_asn and peer_asn == spec.myASN):
            issues.error(src, "spec.localASN", "localASN is for eBGP peers; this peer is iBGP "
                         "(FRR: local-as allowed only for eBGP peers)")
        elif local_override == spec.myASN:
            issues.error(src, "spec.localASN", f"localASN {local_override} equals myASN: leave it unset "
                         "(FRR: cannot have local-as same as BGP AS number)")
        elif peer_asn and local_override == peer_asn:
            issues.error(src, "spec.localASN", f"localASN {local_override} equals peerASN: the peer would "
                         "take the session for iBGP while it is eBGP here")
    peer_afi = None
    peer_address = spec.peerAddress or ""
    if spec.peerAddress is None and spec.interface is None:
        issues.error(src, "spec.peerAddress", "one of peerAddress and interface is required")
    elif spec.peerAddress is not None and spec.interface is not None:
        issues.error(src, "spec.interface", "peerAddress and interface are mutually exclusive; set only one")
    elif spec.interface is not None:
        peer_afi = AFI_V6  # the router's IPv6 link-local address on the interface
        if not _IFNAME.fullmatch(spec.interface):
            issues.error(src, "spec.interface", f"{spec.interface!r} is not a network interface name")
        for fld, bad in (("ebgpMultiHop", spec.ebgpMultiHop), ("password", spec.password),
                         ("passwordSecret", secret_ref), ("bfdProfile", spec.bfdProfile),
                         ("sourceAddress", spec.sourceAddress)):
            if bad:
                issues.error(src, f"spec.{fld}", f"{fld} together with interface (BGP unnumbered) "
                             "is not supported by speakerd")
    else:
        addr, pct, zone = spec.peerAddress.partition("%")
        try:
            peer_afi, _ = parse_ip(addr)
            peer_address = canonical_ip(addr)
            if pct:  # fe80::1%eth0 (metallb#2423): a link-local address and its interface
                if peer_afi != AFI_V6 or not peer_address.lower().startswith("fe8"):
                    raise ValueError
                if not _IFNAME.fullmatch(zone):
                    raise ValueError
                peer_address = f"{peer_address}%{zone}"
        except ValueError:
            issues.error(src, "spec.peerAddress", f"invalid IP address {spec.peerAddress!r}"
                         + (" (a zone is only valid on an IPv6 link-local address: fe80::1%eth0)"
                            if pct else ""))
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
    if (doc or {}).get("apiVersion") == "metallb.io/v1beta1":
        # v1beta1's timers are plain Durations: an unset one is served as "0s"
        hold = hold or None
        keep = keep or None
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
    if spec.password is not None and secret_ref is not None:
        issues.error(src, "spec.passwordSecret", "password and passwordSecret are mutually exclusive; set only one")
    elif secret_ref is not None:
        ns = secret_ref.namespace or src.namespace
        found = secrets.get((ns, secret_ref.name))
        if found is None:
            issues.error(src, "spec.passwordSecret", f"Secret {ns}/{secret_ref.name} not found")
        else:
            password = secret_password(found[0], found[1], src, issues)
    if password is not None and len(password.encode()) > 80:
        issues.error(src, "spec.password", "TCP MD5 keys are at most 80 bytes")
    if spec.bfdProfile is not None and spec.bfdProfile not in bfd:
        issues.error(src, "spec.bfdProfile", f"BFDProfile {spec.bfdProfile!r} not found")
    if spec.ebgpMultiHop and spec.dynamicASN == "internal":
        issues.error(src, "spec.ebgpMultiHop", "ebgpMultiHop is for eBGP peers; this peer is iBGP (dynamicASN internal)")
    elif spec.ebgpMultiHop and spec.myASN == peer_asn:
        issues.error(src, "spec.ebgpMultiHop", "ebgpMultiHop is for eBGP peers; this peer is iBGP (myASN == peerASN)")
    if spec.disableMP:  # MetalLB v0.15+: deprecated, no effect (its webhook warns the same)
        carries = ("both families (dualStackAddressFamily: true)" if spec.dualStackAddressFamily
                   else "both families (BGP unnumbered)" if spec.interface is not None
                   else "only the family of its peer address unless dualStackAddressFamily: true")
        issues.warn(src, "spec.disableMP", f"disableMP is deprecated and has no effect: this session carries {carries}")
    check_selectors(spec.nodeSelectors, src, "spec.nodeSelectors", issues)
    if len(issues.errors) != ok:
        return None
    return Peer(
        name=src.name, local_asn=spec.myASN, peer_asn=peer_asn, dynamic_asn=spec.dynamicASN,
        max_prefixes=max_prefixes, interface=spec.interface, peer_address=peer_address, peer_port=port,
        source_address=source_address, hold_time=hold, keepalive_time=keep, connect_retry=connect,
        router_id=router_id, password=password, bfd_profile=spec.bfdProfile,
        node_selectors=selectors(spec.nodeSelectors), ebgp_multihop=spec.ebgpMultiHop,
        vrf=spec.vrf or None, graceful_restart=spec.enableGracefulRestart, source=src,
        disable_mp=spec.disableMP, dual_stack_address_family=spec.dualStackAddressFamily,
        local_asn_override=local_override,
    )


def _may_overlap(a: tuple[LabelSelector, ...], b: tuple[LabelSelector, ...]) -> bool:
    """Whether two peers' node selectors may select one node (none selects every node).
    Two selectors are disjoint when one requires a label value the other excludes
    (different matchLabels values, or In/NotIn/Exists/DoesNotExist that contradict)."""
    if not a or not b:
        return True
    return any(not _disjoint(x, y) for x in a for y in b)


def _constraints(s: LabelSelector) -> dict[str, tuple[set[str] | None, set[str], bool | None]]:
    """key -> (allowed values or None = any, excluded values, must exist / must not / either)."""
    out: dict[str, tuple[set[str] | None, set[str], bool | None]] = {}

    def merge(k, allowed, excluded, exists):
        a0, e0, x0 = out.get(k, (None, set(), None))
        if allowed is not None:
            a0 = set(allowed) if a0 is None else a0 & set(allowed)
        if x0 is not None and exists is not None and x0 != exists:
            a0 = set()  # Exists and DoesNotExist: nothing matches
        out[k] = (a0, e0 | set(excluded), exists if exists is not None else x0)

    for k, v in s.match_labels:
        merge(k, {v}, (), True)
    for k, op, values in s.match_expressions:
        if op == "In":
            merge(k, values, (), True)
        elif op == "NotIn":
            merge(k, None, values, None)
        elif op == "Exists":
            merge(k, None, (), True)
        elif op == "DoesNotExist":
            merge(k, None, (), False)
    return out


def _disjoint(x: LabelSelector, y: LabelSelector) -> bool:
    cx, cy = _constraints(x), _constraints(y)
    for k in cx.keys() | cy.keys():
        ax, ex, xx = cx.get(k, (None, set(), None))
        ay, ey, xy = cy.get(k, (None, set(), None))
        if xx is not None and xy is not None and xx != xy:
            return True
        if (xx is False and ay is not None) or (xy is False and ax is not None):
            return True
        allowed = ax if ay is None else (ay if ax is None else ax & ay)
        if allowed is not None and not (allowed - ex - ey):
            return True
    return False


def build_peers(objs: Objects, secrets: dict, bfd: dict, issues: Issues) -> dict[str, Peer]:
    """MetalLB v0.16's rule: peers in one VRF whose node selectors may select the same node
    must agree on myASN and on routerID (a node's BGP instance per VRF has one of each)."""
    peers: dict[str, Peer] = {}
    seen: list[tuple[raw.BGPPeerSpec, Source, tuple[LabelSelector, ...]]] = []
    for src, spec, doc in objs.specs.get("BGPPeer", []):
        sels = selectors(spec.nodeSelectors)
        vrf = spec.vrf or ""
        for other, osrc, osels in seen:
            if (other.vrf or "") != vrf or not _may_overlap(sels, osels):
                continue
            where = f"BGPPeer/{osrc.name}" + (f" (VRF {vrf})" if vrf else "")
            if spec.myASN != other.myASN:
                issues.error(src, "spec.myASN", f"myASN {spec.myASN} differs from {other.myASN} in {where}; peers in "
                             "one VRF on the same nodes must use the same myASN")
                break
            if spec.routerID is not None and other.routerID is not None and spec.routerID != other.routerID:
                issues.error(src, "spec.routerID", f"routerID {spec.routerID} differs from {other.routerID} in {where}; "
                             "peers in one VRF on the same nodes must use the same routerID")
                break
        seen.append((spec, src, sels))
        peer = build_peer(src, spec, objs, secrets, bfd, issues, doc)
        if peer is not None:
            _warn_same_neighbor(peer, peers, issues)
            peers[peer.name] = peer
    return peers


def _warn_same_neighbor(peer: Peer, earlier: dict[str, Peer], issues: Issues) -> None:
    """Two BGPPeers for one neighbour (address or unnumbered interface, port, VRF) that may run
    on the same node: MetalLB accepts them (FRR ends up with one neighbor), speakerd would open
    two sessions to it from that node: the router keeps one, the other collides and retries, and
    the listener hands the router's connections to one of them."""
    if peer.source is None:
        return
    for other in earlier.values():
        if (other.vrf, other.peer_port, other.peer_address, other.interface) != \
                (peer.vrf, peer.peer_port, peer.peer_address, peer.interface):
            continue
        if not _may_overlap(peer.node_selectors, other.node_selectors):
            continue
        what, fld = ((f"interface {peer.interface}", "spec.interface") if peer.interface is not None
                     else (peer.peer_address, "spec.peerAddress"))
        issues.warn(peer.source, fld, f"{what} port {peer.peer_port} is the neighbour of BGPPeer/{other.name} too "
                    "(same VRF, on the same nodes): the router takes one session from a node and the other "
                    "collides and retries; keep one BGPPeer per neighbour")
        return


# --- all ------------------------------------------------------------------------


def build_metallb(specs: list[tuple[str, Source, object, dict]], secrets: list[tuple[Source, dict]],
                  issues: Issues) -> MetalLB:
    """Validate what the MetalLB objects say together. ``specs``: (kind, Source, parsed spec,
    document) of every MetalLB object; ``secrets``: (Source, document). Errors go to ``issues``
    (the caller refuses the result when there is any)."""
    objs = Objects()
    objs.by_kind["Secret"] = list(secrets)
    for kind in raw.SPECS:
        objs.specs[kind] = []
    seen: dict[tuple[str, str], Source] = {}
    for kind, src, spec, data in specs:
        other = seen.get((kind, src.name))
        if other is not None:
            issues.error(src, "metadata.name", f"duplicate {kind} name {src.name!r} (first defined in {other.file})")
            continue
        seen[(kind, src.name)] = src
        objs.specs[kind].append((src, spec, data))
    secret_map = build_secrets(objs, issues)
    aliases = build_community_aliases(objs, issues)
    bfd = build_bfd_profiles(objs, issues)
    peers = build_peers(objs, secret_map, bfd, issues)
    pools, pool_masks = build_pools(objs, issues)
    peer_names = {src.name for src, _, _ in objs.specs.get("BGPPeer", [])}
    pool_names = {src.name for src, _, _ in objs.specs.get("IPAddressPool", [])}
    ads = build_advertisements(objs, pools, pool_masks, pool_names, peers, peer_names, aliases, issues)
    _warn_family_without_peer(peers, pools, ads, issues)
    _warn_ipv4_without_next_hop(peers, pools, ads, issues)
    return MetalLB(peers=peers, pools=pools, advertisements=ads, bfd_profiles=bfd)


def _warn_family_without_peer(peers: dict[str, Peer], pools: dict[str, Pool], ads: dict[str, Advertisement],
                              issues: Issues) -> None:
    """A session carries only its peer address's family unless dualStackAddressFamily: true
    (MetalLB v0.15+). Say so where an advertisement's addresses of one family reach none of
    its peers: a dual-stack pool advertised to IPv4 peers only has its IPv6 Services unrouted.
    (Node selectors are not considered: this holds on every node.)"""
    for ad in ads.values():
        if ad.source is None:
            continue
        names = [n for n in (ad.peers or sorted(peers)) if n in peers]
        if not names:
            continue
        carried = {f for n in names for f in peers[n].families}
        have = {AFI_FAMILY[afi] for name in ad.pools if name in pools for afi, _, _ in pools[name].ranges}
        for fam in sorted(have - carried):
            issues.warn(ad.source, "spec.peers" if ad.peers else "spec",
                        f"its IPv{fam} addresses reach no peer: {', '.join(names)} "
                        f"{'carries' if len(names) == 1 else 'carry'} IPv{6 if fam == 4 else 4} only; "
                        f"set dualStackAddressFamily: true on a BGPPeer to carry both families over its "
                        f"session, or add an IPv{fam} BGPPeer")


def _warn_ipv4_without_next_hop(peers: dict[str, Peer], pools: dict[str, Pool], ads: dict[str, Advertisement],
                                issues: Issues) -> None:
    """dualStackAddressFamily on an IPv6 session to a global address: IPv4 routes need an IPv4
    NEXT_HOP, and speakerd has none there (no IPv4 local address; RFC 8950 is offered only to a
    link-local peer), so the Adj-RIB-Out never sends them although they are planned for the
    peer. Said on the BGPPeer when an advertisement gives it IPv4 addresses."""
    for peer in peers.values():
        if (peer.source is None or 4 not in peer.families or not peer.ipv6 or peer.interface is not None
                or "%" in peer.peer_address):
            continue
        if any(afi == AFI_V4 for ad in ads.values() if not ad.peers or peer.name in ad.peers
               for name in ad.pools if name in pools for afi, _, _ in pools[name].ranges):
            issues.warn(peer.source, "spec.dualStackAddressFamily",
                        "IPv4 routes are not sent over this IPv6 session: speakerd has no IPv4 next hop on it "
                        "(RFC 8950 is offered only to a link-local peer); peer with an IPv4 address for them, "
                        "or use an interface (BGP unnumbered) or a link-local peerAddress")
