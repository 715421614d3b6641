"""IPAddressPools and BGPAdvertisements: address parsing, overlaps, selections, aggregation."""
from __future__ import annotations

from typing import TYPE_CHECKING

from .addr import AFI_V4, BITS, format_ip, parse_ip, parse_pool_entry, range_to_cidrs
from .communities import parse_community
from .common import annotation, check_selectors, label_strings, selectors
from .model import Advertisement, LabelSelector, Pool, ServiceAllocation, Source

if TYPE_CHECKING:
    from .build import Objects
    from .common import Issues

MAX_U32 = 4294967295
# speakerd extension on BGPAdvertisement: an annotation, not a spec field (an API server with
# MetalLB's CRD prunes spec fields it does not define; MetalLB itself ignores the annotation)
LINK_BANDWIDTH_ANNOTATION = "speakerd.io/link-bandwidth"
LINK_BANDWIDTH_MODES = ("endpoints",)


def _weight_by_endpoints(src: Source, doc: dict | None, issues: "Issues") -> bool:
    """``speakerd.io/link-bandwidth: endpoints``: endpoint-weighted ECMP for this advertisement."""
    value = annotation(src, doc, LINK_BANDWIDTH_ANNOTATION, issues)
    if value is None:
        return False
    if str(value).strip() not in LINK_BANDWIDTH_MODES:
        issues.error(src, f"metadata.annotations[{LINK_BANDWIDTH_ANNOTATION}]",
                     f"{value!r}: expected {' or '.join(LINK_BANDWIDTH_MODES)} (the link-bandwidth extended "
                     "community weighted by this node's ready local endpoints)")
        return False
    return True


def masked_cidr(text: object) -> str | None:
    """The network of a CIDR with host bits set ('192.0.2.7/24' -> '192.0.2.0/24'), None for any
    other entry. MetalLB reads pool CIDRs with Go's net.ParseCIDR, which masks them."""
    if not isinstance(text, str) or "/" not in text or "-" in text:
        return None
    addr, _, plen = text.strip().partition("/")
    try:
        afi, value = parse_ip(addr.strip())
    except ValueError:
        return None
    bits = BITS[afi]
    if not plen.strip().isdigit() or not 0 <= int(plen) <= bits:
        return None
    host = (1 << (bits - int(plen))) - 1
    if not value & host:
        return None
    return f"{format_ip(afi, value & ~host)}/{int(plen)}"


def _service_allocation(src: Source, spec, issues: "Issues") -> ServiceAllocation | None:
    sa = spec.serviceAllocation
    if sa is None:
        return None
    if sa.priority < 0:
        issues.error(src, "spec.serviceAllocation.priority", f"priority {sa.priority} must not be negative")
    check_selectors(sa.namespaceSelectors, src, "spec.serviceAllocation.namespaceSelectors", issues)
    check_selectors(sa.serviceSelectors, src, "spec.serviceAllocation.serviceSelectors", issues)
    return ServiceAllocation(priority=sa.priority, namespaces=tuple(sa.namespaces),
                             namespace_selectors=selectors(sa.namespaceSelectors),
                             service_selectors=selectors(sa.serviceSelectors))


def build_pools(objs: "Objects", issues: "Issues") -> tuple[dict[str, Pool], dict[str, list[tuple[int, int, str]]]]:
    """Pools by name, plus per pool the (afi, widest CIDR mask, entry text) of each address entry.

    The masks serve MetalLB's aggregation rule: an advertisement's aggregation
    length may not be shorter than the widest CIDR of any address entry of a
    pool it selects (it would aggregate beyond the pool).
    """
    pools: dict[str, Pool] = {}
    masks: dict[str, list[tuple[int, int, str]]] = {}
    spans: list[tuple[int, int, int, str, Source, str]] = []  # afi, first, last, pool, src, text
    for src, spec, data in objs.specs.get("IPAddressPool", []):
        before = len(issues.errors)
        ranges, cidrs, entry_masks = [], [], []
        if not spec.addresses:
            issues.error(src, "spec.addresses", "a pool needs at least one address (CIDR or first-last range)")
        for i, text in enumerate(spec.addresses):
            masked = masked_cidr(text)
            if masked is not None:
                issues.warn(src, f"spec.addresses[{i}]", f"{text} has host bits set; read as {masked}, as MetalLB does")
                text = masked
            try:
                afi, first, last = parse_pool_entry(text)
            except ValueError as exc:
                issues.error(src, f"spec.addresses[{i}]", str(exc))
                continue
            blocks = range_to_cidrs(afi, first, last)
            ranges.append((afi, first, last))
            cidrs.extend(blocks)
            entry_masks.append((afi, min(b[2] for b in blocks), text))
            spans.append((afi, first, last, src.name, src, text))
        meta = data.get("metadata") or {}
        labels = meta.get("labels") or {}
        if not isinstance(labels, dict):
            issues.error(src, "metadata.labels", "expected a mapping")
            labels = {}
        label_strings(src, labels, issues)
        allocation = _service_allocation(src, spec, issues)
        if len(issues.errors) == before:
            pools[src.name] = Pool(
                name=src.name, ranges=tuple(ranges), cidrs=tuple(cidrs), auto_assign=spec.autoAssign,
                avoid_buggy_ips=spec.avoidBuggyIPs, labels=tuple(sorted(labels.items())),
                source=src, service_allocation=allocation,
            )
            masks[src.name] = entry_masks
    spans.sort(key=lambda s: (s[0], s[1], s[2]))
    widest = None  # the span reaching furthest so far, per family
    for span in spans:
        if widest is not None and widest[0] == span[0] and span[1] <= widest[2]:
            if widest[3] == span[3]:
                msg = f"{span[5]} overlaps {widest[5]} in the same pool"
            else:
                msg = f"{span[5]} overlaps {widest[5]} of IPAddressPool/{widest[3]} ({widest[4].file})"
            issues.error(span[4], "spec.addresses", msg)
        if widest is None or widest[0] != span[0] or span[2] > widest[2]:
            widest = span
    return pools, masks


def _selected_pools(src: Source, spec, pools: dict[str, Pool], pool_names: set[str], issues: "Issues") -> tuple[str, ...]:
    names: list[str] = []
    for i, name in enumerate(spec.ipAddressPools):
        if name not in pool_names:
            issues.error(src, f"spec.ipAddressPools[{i}]", f"IPAddressPool {name!r} not found")
        elif name not in names:
            names.append(name)
    if spec.ipAddressPoolSelectors:
        sels: tuple[LabelSelector, ...] = selectors(spec.ipAddressPoolSelectors)
        matched = [p for p in sorted(pools) if any(s.matches(dict(pools[p].labels)) for s in sels)]
        if not matched:
            issues.warn(src, "spec.ipAddressPoolSelectors", "selects no IPAddressPool")
        names.extend(p for p in matched if p not in names)
    if not spec.ipAddressPools and not spec.ipAddressPoolSelectors:
        names = sorted(pools)
    return tuple(n for n in names if n in pools)


def build_advertisements(objs: "Objects", pools: dict[str, Pool], masks: dict, pool_names: set[str],
                         peers: dict, peer_names: set[str], aliases: dict, issues: "Issues") -> dict[str, Advertisement]:
    out: dict[str, Advertisement] = {}
    for src, spec, doc in objs.specs.get("BGPAdvertisement", []):
        before = len(issues.errors)
        weighted = _weight_by_endpoints(src, doc, issues)
        chosen = _selected_pools(src, spec, pools, pool_names, issues)
        for i, name in enumerate(spec.peers):
            if name not in peer_names:
                issues.error(src, f"spec.peers[{i}]", f"BGPPeer {name!r} not found")
        std: list[int] = []
        large: list[tuple[int, int, int]] = []
        seen_text: set[str] = set()
        for i, text in enumerate(spec.communities):
            if text in seen_text:
                issues.error(src, f"spec.communities[{i}]", f"duplicate community {text!r}")
                continue
            seen_text.add(text)
            if text in aliases:
                value = aliases[text]
            else:
                try:
                    value = parse_community(text)
                except ValueError as exc:
                    if ":" not in text:
                        issues.error(src, f"spec.communities[{i}]", f"{text!r} is neither a community (A:B, large:A:B:C) nor a Community alias that exists")
                    else:
                        issues.error(src, f"spec.communities[{i}]", str(exc))
                    continue
            (large if isinstance(value, tuple) else std).append(value)  # type: ignore[arg-type]
        agg4 = 32 if spec.aggregationLength is None else spec.aggregationLength
        agg6 = 128 if spec.aggregationLengthV6 is None else spec.aggregationLengthV6
        if not 1 <= agg4 <= 32:
            issues.error(src, "spec.aggregationLength", f"invalid aggregation length {agg4} for IPv4 (1..32)")
        if not 1 <= agg6 <= 128:
            issues.error(src, "spec.aggregationLengthV6", f"invalid aggregation length {agg6} for IPv6 (1..128)")
        for pool in chosen:
            for afi, widest, text in masks.get(pool, ()):
                agg, fld = (agg4, "spec.aggregationLength") if afi == AFI_V4 else (agg6, "spec.aggregationLengthV6")
                if agg < widest:
                    issues.error(src, fld, f"invalid aggregation length {agg}: prefix /{widest} of {text} in IPAddressPool/{pool} "
                                 f"is more specific than the aggregation length (it would advertise addresses outside the pool)")
        if spec.localPref is not None:
            if not 0 <= spec.localPref <= MAX_U32:
                issues.error(src, "spec.localPref", f"localPref {spec.localPref} is out of range 0..{MAX_U32}")
            else:
                reach = [peers[p] for p in (spec.peers or sorted(peers)) if p in peers]
                if reach and not any(p.ibgp for p in reach):
                    issues.warn(src, "spec.localPref", "LOCAL_PREF is only sent to iBGP peers; every peer this advertisement "
                                f"reaches is eBGP ({', '.join(p.name for p in reach)}), so localPref has no effect")
        check_selectors(spec.nodeSelectors, src, "spec.nodeSelectors", issues)
        check_selectors(spec.serviceSelectors, src, "spec.serviceSelectors", issues)
        if len(issues.errors) == before:
            out[src.name] = Advertisement(
                name=src.name, pools=chosen, peers=tuple(spec.peers), communities=tuple(sorted(set(std))),
                large_communities=tuple(sorted(set(large))), aggregation_length=agg4, aggregation_length_v6=agg6,
                local_pref=spec.localPref, node_selectors=selectors(spec.nodeSelectors), source=src,
                service_selectors=selectors(spec.serviceSelectors), weight_by_endpoints=weighted,
            )
    _local_pref_conflicts(out, issues)
    return out


def _local_pref_conflicts(ads: dict[str, Advertisement], issues: "Issues") -> None:
    """MetalLB refuses two advertisements that would send one prefix to one peer with different
    LOCAL_PREF: same pool, same aggregation length, peers in common (none = every peer)."""
    with_pref = [a for _, a in sorted(ads.items()) if a.local_pref is not None]
    for i, a in enumerate(with_pref):
        for b in with_pref[:i]:
            if a.local_pref == b.local_pref or not set(a.pools) & set(b.pools):
                continue
            if a.peers and b.peers and not set(a.peers) & set(b.peers):
                continue
            for afi_len, fld in (((a.aggregation_length, b.aggregation_length), "aggregationLength"),
                                 ((a.aggregation_length_v6, b.aggregation_length_v6), "aggregationLengthV6")):
                if afi_len[0] == afi_len[1]:
                    pools = ", ".join(sorted(set(a.pools) & set(b.pools)))
                    assert a.source is not None
                    issues.error(a.source, "spec.localPref",
                                 f"invalid local preference {a.local_pref}: BGPAdvertisement/{b.name} gives the same "
                                 f"prefixes of IPAddressPool {pools} (same {fld}) local preference {b.local_pref}")
                    break
            else:
                continue
            break


__all__ = ["build_pools", "build_advertisements", "BITS", "format_ip"]
