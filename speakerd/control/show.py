"""vtysh-style text for the control API's JSON answers.

Each function takes the ``result`` dict of one command and returns text; the
JSON stays the single source of truth (``speakerctl --json`` prints it as is).
"""
from __future__ import annotations

import time

from ..policy.linkbw import describe


def _dur(seconds: float | None) -> str:
    """FRR's up/down column: 00:01:02, 1d02h03m, never."""
    if seconds is None:
        return "never"
    s = int(seconds)
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    if d:
        return f"{d}d{h:02d}h{m:02d}m"
    return f"{h:02d}:{m:02d}:{s:02d}"


def _table(headers: list[str], rows: list[list], align_left: set[int] = frozenset({0})) -> str:
    cols = [headers] + [[("" if c is None else str(c)) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cols) for i in range(len(headers))]
    lines = []
    for r in cols:
        cells = [(r[i].ljust(widths[i]) if i in align_left else r[i].rjust(widths[i])) for i in range(len(headers))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def summary(r: dict) -> str:
    head = (f"BGP router identifier {r['router_id']}, local AS number {r['local_as']}\n"
            f"Node {r['node']}, {r['services']} service(s)")
    rel = r.get("reload") or {}
    if rel and not rel.get("ok", True):
        head += f"\nLast reload FAILED ({len(rel.get('errors', []))} error(s)); running the previous config"
    rows = []
    for p in r["peers"]:
        state_or_pfx = str(p["prefixes_received"]) if p["established"] else p["state"]
        rows.append([p["peer"], p["address"], p["remote_as"], p["messages_received"], p["messages_sent"],
                     _dur(p["up_down_seconds"]), state_or_pfx, p["prefixes_sent"], p["last_error"] or ""])
    table = _table(["Neighbor", "Address", "AS", "MsgRcvd", "MsgSent", "Up/Down", "State/PfxRcd", "PfxSnt",
                    "Last error"], rows, align_left={0, 1, 8})
    total = len(r["peers"])
    up = sum(1 for p in r["peers"] if p["established"])
    return f"{head}\n\n{table}\n\nTotal number of neighbors {total}, {up} established"


def _caps(caps: list[dict]) -> str:
    out = []
    for c in caps:
        name = c.get("name") or str(c.get("code"))
        extra = {k: v for k, v in c.items() if k not in ("name", "code")}
        out.append(name + (f"({', '.join(f'{k}={v}' for k, v in extra.items())})" if extra else ""))
    return ", ".join(out) or "none"


_NH6_SOURCE = {
    "configured": " (configured)",
    "local-address": " (the session's local address)",
    "interface": " (global address of {dev})",
    "ipv4-mapped": " (IPv4-mapped: no global IPv6 address on {dev}; BIRD ignores such routes)",
}


def neighbors(r: dict) -> str:
    blocks = []
    for n in r["neighbors"]:
        dyn = f" (dynamicASN {n['dynamic_asn']})" if n.get("dynamic_asn") and n["remote_as"] != n["dynamic_asn"] else ""
        lines = [f"BGP neighbor {n['peer']} is {n['address']}, remote AS {n['remote_as']}{dyn}, local AS {n['local_as']}, "
                 f"{'internal' if n['type'] == 'ibgp' else 'external'} link",
                 f"  BGP state = {n['state']}" + (f", up for {_dur(n['uptime_seconds'])}" if n['uptime_seconds'] else ""),
                 f"  Local router ID {n['router_id']}, remote router ID {n['remote_router_id'] or '-'}",
                 f"  Local address {n['local_address'] or '-'}, remote address {n['remote_address'] or '-'}"]
        nh = n.get("next_hops")
        if nh:
            lines.append(f"  Next hops: IPv4 {nh['ipv4'] or '- (not sent)'}, IPv6 {nh['ipv6'] or '- (not sent)'}"
                         f"{_NH6_SOURCE.get(nh['ipv6_source'], '').format(dev=nh.get('interface') or '?')}")
        cfg = n["configured"]
        lines.append(f"  Configured hold time {cfg['hold_time']}s, keepalive {cfg['keepalive_time']}s, "
                     f"connect retry {cfg['connect_time']}s"
                     + (", eBGP multihop" if cfg["ebgp_multihop"] else "")
                     + (f", VRF/device {cfg['vrf']}" if cfg["vrf"] else "")
                     + (", TCP-MD5" if cfg["md5"] else "")
                     + (f", BFD profile {cfg['bfd_profile']}" if cfg["bfd_profile"] else "")
                     + (", graceful restart" if cfg["graceful_restart"] else "")
                     + (f"; families {', '.join(cfg['families'])}" if cfg.get("families") else ""))
        eff = n["capabilities"]["in_effect"]
        if eff:
            lines.append(f"  Negotiated hold time {eff['hold_time']}s, keepalive {eff['keepalive_time']}s")
        lines.append(f"  Capabilities offered:  {_caps(n['capabilities']['offered'])}")
        lines.append(f"  Capabilities received: {_caps(n['capabilities']['received'])}")
        if eff:
            flags = [k.replace("_", " ") for k in ("four_octet_as", "route_refresh", "enhanced_route_refresh",
                                                 "extended_message", "graceful_restart") if eff.get(k)]
            lines.append(f"  In effect: families {', '.join(eff['families'])}; {', '.join(flags) or 'no options'}"
                         + (f"; peer hostname {eff['peer_hostname']}" if eff.get("peer_hostname") else ""))
        ms, mr = n["messages"]["sent"], n["messages"]["received"]
        lines.append("  Message statistics:")
        lines.append("    " + _table(["", "Sent", "Rcvd"],
                                      [[t, ms.get(t, 0), mr.get(t, 0)] for t in
                                       ("open", "update", "notification", "keepalive", "route_refresh")]
                                      + [["total", sum(ms.values()), sum(mr.values())]]).replace("\n", "\n    "))
        pf = n["prefixes"]
        lines.append(f"  Prefixes: sent {pf['sent']} (wanted {pf['wanted']}), received {pf['received']}"
                     + (" (" + ", ".join(f"{k} {v}" for k, v in pf["received_by_family"].items()) + ")"
                        if pf["received_by_family"] else ""))
        for key, label in (("last_notification_sent", "Last NOTIFICATION sent"),
                           ("last_notification_received", "Last NOTIFICATION received")):
            nt = n[key]
            if nt:
                msg = f' "{nt["message"]}"' if nt.get("message") else ""
                lines.append(f"  {label}: {nt['code']}/{nt['subcode']} {nt['name']}{msg}")
                if nt.get("hint"):
                    lines.append(f"    hint: {nt['hint']}")
        if n["last_error"]:
            lines.append(f"  Last error: {n['last_error']}")
        if n["flaps"]:
            lines.append("  Session drops: " + ", ".join(f"{k} {v}" for k, v in sorted(n["flaps"].items())))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) or "No BGP neighbors configured."


def routes(r: dict) -> str:
    fam = r["family"].upper().replace("IPV", "IPv")
    rows = []
    if r["direction"] is None:
        for x in r["routes"]:
            peers = ", ".join(f"{p['peer']}{'' if p['sent'] else ' (not sent)'}" for p in x["peers"])
            rows.append([x["prefix"], "" if x["local_pref"] is None else x["local_pref"],
                         "" if x.get("weight") is None else x["weight"],
                         " ".join(x["communities"] + x["large_communities"]), peers])
        if any(x.get("weight") is not None for x in r["routes"]):  # endpoint-weighted ECMP in use
            body = _table(["Network", "LocPrf", "Weight", "Communities", "Peers"], rows, align_left={0, 3, 4})
        else:
            body = _table(["Network", "LocPrf", "Communities", "Peers"], [w[:2] + w[3:] for w in rows],
                          align_left={0, 2, 3})
        return f"{fam} unicast routes planned for this node: {r['total']}\n\n{body}"
    for x in r["routes"]:
        rows.append([x["prefix"], x["next_hop"] or "", "" if x["local_pref"] is None else x["local_pref"],
                     "" if x["med"] is None else x["med"], x["as_path"] or "", x["origin"] or "",
                     " ".join(x["communities"] + x["large_communities"] + x.get("extended_communities", []))])
    title = ("advertised to" if r["direction"] == "advertised" else "received from")
    body = _table(["Network", "Next Hop", "LocPrf", "Metric", "Path", "Origin", "Communities"], rows,
                  align_left={0, 1, 4, 5, 6})
    return f"{fam} unicast routes {title} {r['peer']}: {r['total']}\n\n{body}"


def bfd(r: dict) -> str:
    if not r["bfd_peers"]:
        return "No BFD sessions."
    blocks = []
    for b in r["bfd_peers"]:
        blocks.append("\n".join([
            f"peer {b['peer']}" + (f" ({b['peer_name']})" if b.get("peer_name") else "")
            + (" multihop" if b["multihop"] else "") + (f" vrf {b['vrf']}" if b.get("vrf") else ""),
            f"  Status: {b['state']}" + (f", up for {_dur(b['uptime_s'])}" if b.get("uptime_s") else ""),
            f"  Local discriminator {b['local_discr']}, remote {b['remote_discr']}; remote state {b['remote_state']}",
            f"  Diagnostics: local {b['local_diag']}, remote {b['remote_diag']}",
            f"  Intervals: TX {b['tx_interval_ms']:g} ms, RX {b['rx_interval_ms']:g} ms, "
            f"detect multiplier {b['detect_mult']} (remote {b['remote_detect_mult']}), "
            f"detection time {b['detect_time_ms']:g} ms",
            f"  Packets: {b['tx_packets']} sent, {b['rx_packets']} received, {b['dropped']} dropped; "
            f"up {b['up_transitions']} times, down {b['down_transitions']} times",
        ]))
    return "\n\n".join(blocks)


def history(r: dict) -> str:
    if not r["history"]:
        return "No session events."
    rows = []
    for e in r["history"]:
        t = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e["time"])) if e["time"] else ""
        rows.append([t, e["peer"], f"{e['from']} -> {e['to']}", e["cause"].replace("_", " ")
                     + (f": {e['detail']}" if e["detail"] else ""), "FLAP" if e["flap"] else ""])
    return _table(["Time", "Peer", "Transition", "Cause", ""], rows, align_left={0, 1, 2, 3, 4})


def explain(r: dict) -> str:
    return "\n".join(r["explanation"])


def reload(r: dict) -> str:
    if not r["ok"]:
        return "reload rejected; the running configuration is unchanged:\n" + "\n".join(
            f"  {e}" for e in r["errors"])
    return (f"reloaded: {len(r['added'])} peer(s) added, {len(r['removed'])} removed, "
            f"{len(r['reset'])} reset, {len(r['kept'])} kept; {r['route_changes']} route change(s)")


def health(r: dict) -> str:
    return f"ok: {r['established']}/{r['peers']} sessions established"


def drain(r: dict) -> str:
    head = {"drained": "drained: every route withdrawn, every session closed (speakerctl undrain restores them)",
            "draining": "draining: routes announced with GRACEFUL_SHUTDOWN 65535:0",
            "active": "not drained"}[r["state"]]
    if r.get("was") == "drained":
        head = "undrained: sessions restarting, routes announced again"
    elif r.get("was") == "draining":
        head = "undrained: drain cancelled, routes announced without GRACEFUL_SHUTDOWN"
    elif r.get("was", "") is None:
        head = "not drained: nothing to undo"
    elif r["state"] == "active" and "seconds" in r:
        head = "drain cancelled (speakerctl undrain): routes announced without GRACEFUL_SHUTDOWN"
    if "seconds" in r:
        head += f" (after {r['seconds']:.1f} s)"
    rows = [[p["peer"], p["state"], "yes" if p["graceful_shutdown"] else "no", p["prefixes_sent"]] for p in r["peers"]]
    return head + ("\n" + _table(["Peer", "State", "GShut", "PfxSnt"], rows, align_left={0, 1, 2}) if rows else "")


def _attr_text(a: dict) -> str:
    parts = []
    if a["communities"] or a["large_communities"]:
        parts.append("communities " + " ".join(a["communities"] + a["large_communities"]))
    if a.get("local_pref") is not None:
        parts.append(f"local-pref {a['local_pref']}")
    if a.get("weight") is not None:
        parts.append(describe(a["weight"]))
    return "  ".join(parts)


def _attr_change(old: dict, new: dict) -> str:
    parts = []
    for k, label in (("communities", "communities"), ("large_communities", "large communities")):
        gone, added = sorted(set(old[k]) - set(new[k])), sorted(set(new[k]) - set(old[k]))
        if gone or added:
            parts.append(f"{label} " + " ".join([f"-{c}" for c in gone] + [f"+{c}" for c in added]))
    if old.get("local_pref") != new.get("local_pref"):
        parts.append(f"local-pref {old.get('local_pref')} -> {new.get('local_pref')}")
    if old.get("weight") != new.get("weight"):
        parts.append(f"weight {old.get('weight')} -> {new.get('weight')}")
    return "; ".join(parts)


_SESSION_TEXT = {"added": "new session", "removed": "removed: Cease 6/3, every route withdrawn",
                 "reset": "session reset: Cease 6/6, then a new session", "kept": "session kept"}


def plan_diff(r: dict) -> str:
    """``speakerd plan --diff`` and ``speakerctl reload --dry-run``."""
    if not r.get("ok", True):
        return "the new configuration would be refused; the running one would stay:\n" + "\n".join(
            f"  {e}" for e in r["errors"])
    out = [f"node {r['node']}" + ("" if r["changed"] else ": no change")]
    rid = r["router_id"]
    if rid["old"] != rid["new"]:
        out.append(f"router id {rid['old']} -> {rid['new']} ({rid['source']}): every session resets")
    for name, p in sorted(r["peers"].items()):
        n = len(p["announce"]) + len(p["withdraw"]) + len(p["update"])
        if p["session"] == "kept" and not n and not p.get("bfd_changed"):
            continue
        kind = "iBGP" if p["ibgp"] else "eBGP"
        line = f"peer {name} ({p['address']} AS {p['peer_asn']}, {kind}): {_SESSION_TEXT[p['session']]}"
        if p.get("reasons"):
            line += " (" + ", ".join(f"{x['field']} {x['old']} -> {x['new']}" for x in p["reasons"]) + ")"
        if p.get("bfd_changed"):
            line += "; BFD profile changes (no reset)"
        out.append(line)
        for a in p["announce"]:
            attrs = _attr_text(a)
            out.append(f"  + {a['prefix']}" + (f"  {attrs}" if attrs else ""))
        for prefix in p["withdraw"]:
            out.append(f"  - {prefix}")
        for u in p["update"]:
            out.append(f"  ~ {u['prefix']}  {_attr_change(u['old'], u['new'])}")
    for e in r.get("errors", []):
        out.append(f"skipped (invalid): {e}")
    return "\n".join(out)


RENDERERS = {
    "summary": summary, "neighbors": neighbors, "routes": routes, "bfd": bfd,
    "history": history, "explain": explain, "reload": reload, "health": health,
    "drain": drain, "undrain": drain, "plan_diff": plan_diff,
}
