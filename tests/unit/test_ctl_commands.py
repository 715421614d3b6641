"""Every read-only speakerctl command against two running daemons, in JSON and in text.

One demo pair (see test_daemon_harness) serves the whole module: the sender
(node demo-node) advertises the demo services to the receiver; nothing here
changes either daemon.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import urllib.request

from speakerd.pcap import addr_str, tcp_segments
from test_daemon_harness import HOST_V4, PLANNED_V4, PLANNED_V6, PY, ROOT, shared_pair  # noqa: F401

DEMO_COMMUNITIES = ["64512:80", "64512:100"]  # alias demo-web and the literal, sorted by value
DEMO_LARGE = ["64512:0:1"]


def _by_prefix(rows: list[dict]) -> dict[str, dict]:
    return {r["prefix"]: r for r in rows}


# ------------------------------------------------------------------ summary


def test_summary_json(shared_pair):
    s = shared_pair.sender.ctl_json("show", "bgp", "summary")
    assert s["router_id"] == "10.255.0.1" and s["local_as"] == 64512 and s["node"] == "demo-node"
    assert s["services"] == 3  # the ClusterIP one is not counted
    (row,) = s["peers"]
    assert row["peer"] == "receiver" and row["address"] == shared_pair.receiver_ip
    assert row["port"] == shared_pair.port
    assert row["state"] == "Established" and row["established"] is True
    assert row["prefixes_sent"] == len(PLANNED_V4) + len(PLANNED_V6) == row["prefixes_wanted"]
    assert row["prefixes_received"] == 0
    assert row["messages_sent"] > 0 and row["messages_received"] > 0
    r = shared_pair.receiver.ctl_json("show", "bgp", "summary")
    (row,) = r["peers"]
    assert row["prefixes_received"] == len(PLANNED_V4) + len(PLANNED_V6)
    assert row["prefixes_sent"] == 0


def test_summary_text(shared_pair):
    out = shared_pair.receiver.ctl_text("show", "bgp", "summary")
    assert "BGP router identifier 10.255.0.2, local AS number 64512" in out
    header = next(line for line in out.splitlines() if line.startswith("Neighbor"))
    assert header.split() == ["Neighbor", "Address", "AS", "MsgRcvd", "MsgSent", "Up/Down", "State/PfxRcd",
                              "PfxSnt", "Last", "error"]
    row = next(line for line in out.splitlines() if line.startswith("sender "))
    cells = row.split()
    assert cells[1] == shared_pair.sender_ip and cells[2] == "64512"
    assert re.fullmatch(r"\d\d:\d\d:\d\d", cells[5])
    assert cells[6] == str(len(PLANNED_V4) + len(PLANNED_V6))  # PfxRcd when Established
    assert "Total number of neighbors 1, 1 established" in out


# ---------------------------------------------------------------- neighbors


def test_neighbors_json(shared_pair):
    n = shared_pair.sender.neighbor("receiver")
    assert n["type"] == "ibgp" and n["state"] == "Established"
    assert n["local_address"] == shared_pair.sender_ip and n["remote_address"] == shared_pair.receiver_ip
    assert n["router_id"] == "10.255.0.1" and n["remote_router_id"] == "10.255.0.2"
    assert n["uptime_seconds"] is not None and n["uptime_seconds"] >= 0
    assert n["configured"]["hold_time"] == 9 and n["configured"]["connect_time"] == 2
    assert n["configured"]["md5"] is False
    caps = n["capabilities"]
    offered = {c["name"] for c in caps["offered"]}
    received = {c["name"] for c in caps["received"]}
    assert {"multiprotocol", "route-refresh", "four-octet-as"} <= offered
    assert {"multiprotocol", "route-refresh", "four-octet-as"} <= received
    mp = sorted(c["afi"] for c in caps["received"] if c["name"] == "multiprotocol")
    assert mp == ["ipv4", "ipv6"]
    eff = caps["in_effect"]
    assert eff["families"] == ["ipv4-unicast", "ipv6-unicast"]
    assert eff["four_octet_as"] is True and eff["route_refresh"] is True
    assert eff["hold_time"] == 9 and eff["keepalive_time"] == 3
    sent, rcvd = n["messages"]["sent"], n["messages"]["received"]
    assert sent["open"] == 1 and rcvd["open"] == 1
    assert sent["update"] > 0 and sent["keepalive"] > 0 and rcvd["keepalive"] > 0
    assert n["prefixes"]["sent"] == len(PLANNED_V4) + len(PLANNED_V6)
    assert n["last_notification_sent"] is None and n["last_notification_received"] is None
    # the receiver counts what arrived, per family
    r = shared_pair.receiver.neighbor(shared_pair.sender_ip)  # by address works too
    assert r["peer"] == "sender"
    assert r["prefixes"]["received_by_family"] == {"ipv4": len(PLANNED_V4), "ipv6": len(PLANNED_V6)}
    assert r["messages"]["received"]["update"] >= 2


def test_neighbors_all_json_lists_every_peer(shared_pair):
    all_ = shared_pair.sender.ctl_json("show", "bgp", "neighbors")["neighbors"]
    assert [n["peer"] for n in all_] == ["receiver"]


def test_neighbors_text(shared_pair):
    out = shared_pair.sender.ctl_text("show", "bgp", "neighbors", "receiver")
    assert (f"BGP neighbor receiver is {shared_pair.receiver_ip}, remote AS 64512, local AS 64512, internal link"
            in out)
    assert "BGP state = Established, up for " in out
    assert "Local router ID 10.255.0.1, remote router ID 10.255.0.2" in out
    assert "Configured hold time 9s, keepalive 3s, connect retry 2s" in out
    assert "Negotiated hold time 9s, keepalive 3s" in out
    assert "Capabilities offered:  multiprotocol(afi=ipv4, safi=unicast), multiprotocol(afi=ipv6" in out
    assert "Capabilities received: multiprotocol(afi=ipv4" in out
    assert "In effect: families ipv4-unicast, ipv6-unicast; four octet as, route refresh" in out
    assert re.search(r"^\s+open\s+1\s+1$", out, re.M)
    assert re.search(r"^\s+Sent\s+Rcvd$", out, re.M)
    assert f"Prefixes: sent {len(PLANNED_V4) + len(PLANNED_V6)} (wanted {len(PLANNED_V4) + len(PLANNED_V6)})" in out


# ------------------------------------------------------------------- routes


def test_received_routes_ipv4_json(shared_pair):
    r = shared_pair.receiver.ctl_json("show", "bgp", "ipv4", "received-routes", "sender")
    assert r["family"] == "ipv4" and r["direction"] == "received" and r["peer"] == "sender"
    rows = _by_prefix(r["routes"])
    assert set(rows) == PLANNED_V4 and r["total"] == len(PLANNED_V4)
    for prefix in HOST_V4:
        row = rows[prefix]
        assert row["next_hop"] == shared_pair.sender_ip
        assert row["local_pref"] == 200
        assert row["communities"] == DEMO_COMMUNITIES
        assert row["large_communities"] == DEMO_LARGE
        assert row["origin"] == "igp" and row["as_path"] == ""
    agg = rows["198.51.100.0/26"]
    assert agg["local_pref"] == 100  # the aggregate advertisement sets none: iBGP default
    assert agg["communities"] == ["65535:65281"]  # no-export
    assert agg["large_communities"] == ["64512:1:2"]  # demo-large alias


def test_received_routes_ipv6_json(shared_pair):
    r = shared_pair.receiver.ctl_json("show", "bgp", "ipv6", "received-routes", "sender")
    rows = _by_prefix(r["routes"])
    assert set(rows) == PLANNED_V6
    host = rows["2001:db8:100::e2/128"]
    assert host["local_pref"] == 200
    assert host["communities"] == DEMO_COMMUNITIES and host["large_communities"] == DEMO_LARGE
    # an IPv4 session carries IPv6 routes with the IPv4-mapped source address as next hop
    assert host["next_hop"] == f"::ffff:{shared_pair.sender_ip}"


def test_received_routes_text(shared_pair):
    out = shared_pair.receiver.ctl_text("show", "bgp", "ipv4", "received-routes", "sender")
    lines = out.splitlines()
    assert lines[0] == f"IPv4 unicast routes received from sender: {len(PLANNED_V4)}"
    assert lines[2].split() == ["Network", "Next", "Hop", "LocPrf", "Metric", "Path", "Origin", "Communities"]
    row = next(x for x in lines if x.startswith("198.51.100.53/32 "))
    assert row.split() == ["198.51.100.53/32", shared_pair.sender_ip, "200", "igp", "64512:80", "64512:100",
                           "64512:0:1"]
    out6 = shared_pair.receiver.ctl_text("show", "bgp", "ipv6", "received-routes", "sender")
    assert out6.splitlines()[0] == f"IPv6 unicast routes received from sender: {len(PLANNED_V6)}"
    assert any(x.startswith("2001:db8:100::e2/128 ") and "64512:0:1" in x for x in out6.splitlines())


def test_advertised_routes_json(shared_pair):
    r = shared_pair.sender.ctl_json("show", "bgp", "ipv4", "advertised-routes", "receiver")
    rows = _by_prefix(r["routes"])
    assert set(rows) == PLANNED_V4
    assert all(row["sent"] for row in rows.values())
    assert rows["198.51.100.24/32"]["local_pref"] == 200
    assert rows["198.51.100.24/32"]["next_hop"] == shared_pair.sender_ip
    assert rows["198.51.100.24/32"]["communities"] == DEMO_COMMUNITIES
    r6 = shared_pair.sender.ctl_json("show", "bgp", "ipv6", "advertised-routes", "receiver")
    assert set(_by_prefix(r6["routes"])) == PLANNED_V6
    # and the receiver has exactly what was advertised
    got = _by_prefix(shared_pair.receiver.ctl_json("show", "bgp", "ipv4", "received-routes", "sender")["routes"])
    for prefix, row in rows.items():
        assert (got[prefix]["communities"], got[prefix]["local_pref"]) == (row["communities"], row["local_pref"])


def test_advertised_routes_text_and_limit(shared_pair):
    out = shared_pair.sender.ctl_text("show", "bgp", "ipv6", "advertised-routes", "receiver")
    assert out.splitlines()[0] == f"IPv6 unicast routes advertised to receiver: {len(PLANNED_V6)}"
    r = shared_pair.sender.ctl("--limit", "1", "show", "bgp", "ipv4", "advertised-routes", "receiver",
                               json_out=True)
    assert r.returncode == 0 and len(json.loads(r.stdout)["routes"]) == 1


def test_planned_routes_json_and_text(shared_pair):
    r = shared_pair.sender.ctl_json("show", "bgp", "ipv4")
    rows = _by_prefix(r["routes"])
    assert set(rows) == PLANNED_V4 and r["direction"] is None
    dns = rows["198.51.100.53/32"]
    assert dns["services"] == ["demo/dns"]
    assert dns["local_pref"] == 200 and dns["communities"] == DEMO_COMMUNITIES
    assert dns["large_communities"] == DEMO_LARGE
    assert dns["peers"] == [{"peer": "receiver", "sent": True, "state": "Established"}]
    r6 = shared_pair.sender.ctl_json("show", "bgp", "ipv6")
    assert _by_prefix(r6["routes"])["2001:db8:100::e2/128"]["services"] == ["demo/api"]
    out = shared_pair.sender.ctl_text("show", "bgp", "ipv4")
    lines = out.splitlines()
    assert lines[0] == f"IPv4 unicast routes planned for this node: {len(PLANNED_V4)}"
    assert lines[2].split() == ["Network", "LocPrf", "Communities", "Peers"]
    row = next(x for x in lines if x.startswith("198.51.100.53/32 "))
    assert row.split() == ["198.51.100.53/32", "200", "64512:80", "64512:100", "64512:0:1", "receiver"]
    # the receiver plans nothing
    assert shared_pair.receiver.ctl_json("show", "bgp", "ipv4")["routes"] == []


# ---------------------------------------------------------------- bfd, health


def test_bfd_peers_empty(shared_pair):
    assert shared_pair.sender.ctl_json("show", "bfd", "peers") == {"bfd_peers": []}
    assert shared_pair.sender.ctl_text("show", "bfd", "peers").strip() == "No BFD sessions."


def test_health(shared_pair):
    assert shared_pair.sender.ctl_json("health") == {"ok": True, "peers": 1, "established": 1}
    assert shared_pair.sender.ctl_text("health").strip() == "ok: 1/1 sessions established"


def test_history_of_a_clean_start(shared_pair):
    h = shared_pair.sender.ctl_json("show", "history", "receiver")["history"]
    assert h[-1]["to"] == "Established" and h[-1]["peer"] == "receiver"
    assert not any(e["flap"] for e in h)
    assert [e["time"] for e in h] == sorted(e["time"] for e in h)
    out = shared_pair.sender.ctl_text("show", "history")
    assert out.splitlines()[0].split() == ["Time", "Peer", "Transition", "Cause"]
    assert re.search(r"receiver\s+OpenConfirm -> Established\s+keepalive received", out)


# ------------------------------------------------------------------ explain


def test_explain_advertised_ip(shared_pair):
    r = shared_pair.sender.ctl_json("explain", "198.51.100.53")
    (addr,) = r["addresses"]
    assert addr["ip"] == "198.51.100.53" and addr["pool"] == "demo-pool"
    (peer,) = addr["peers"]
    assert peer["peer"] == "receiver" and peer["advertised"] is True and peer["sent"] is True
    assert peer["prefix"] == "198.51.100.53/32" and peer["state"] == "Established"
    assert {"service": "demo/dns", "ip": "198.51.100.53", "pool": "demo-pool",
            "advertisement": "demo-adv"} in peer["reasons"]
    out = shared_pair.sender.ctl_text("explain", "198.51.100.53")
    assert "198.51.100.53: in IPAddressPool demo-pool" in out
    assert "advertised as 198.51.100.53/32 — on the wire" in out
    assert "because: demo/dns → 198.51.100.53 → pool demo-pool → advertisement demo-adv" in out
    assert "communities 64512:80 64512:100" in out and "large 64512:0:1" in out and "local-pref 200" in out


def test_explain_ip_in_no_pool(shared_pair):
    r = shared_pair.sender.ctl_json("explain", "192.0.2.7")
    (addr,) = r["addresses"]
    assert addr["pool"] is None
    assert addr["peers"] == [{"peer": "receiver", "advertised": False}]
    out = shared_pair.sender.ctl_text("explain", "192.0.2.7")
    assert "192.0.2.7: in no IPAddressPool: never advertised" in out


def test_explain_service(shared_pair):
    r = shared_pair.sender.ctl_json("explain", "demo/api")
    assert r["service"] == "demo/api"
    ips = {a["ip"] for a in r["addresses"]}
    assert len(ips) == 2 and any(":" in ip for ip in ips)  # dual stack
    assert all(p["advertised"] and p["sent"] for a in r["addresses"] for p in a["peers"])
    # a bare name that is unique resolves to its namespace/name
    assert shared_pair.sender.ctl_json("explain", "dns")["service"] == "demo/dns"


def test_explain_unknown_service_is_an_error(shared_pair):
    r = shared_pair.sender.ctl("explain", "demo/nope")
    assert r.returncode == 1
    assert "no Service 'demo/nope'" in r.stderr and r.stdout == ""
    r = shared_pair.sender.ctl("explain", "not-an-address", json_out=True)
    assert r.returncode == 1 and "is not an IP address, a prefix or a Service" in r.stderr


# ------------------------------------------------------------ errors, socket


def test_unknown_peer_is_a_clear_error(shared_pair):
    for words in (["show", "bgp", "neighbors", "nobody"], ["show", "bgp", "ipv4", "received-routes", "nobody"],
                  ["show", "history", "nobody"]):
        r = shared_pair.sender.ctl(*words, json_out=True)
        assert r.returncode == 1, words
        assert "no peer named or addressed 'nobody' (peers: receiver)" in r.stderr
    r = shared_pair.sender.ctl("capture", "nobody", "-w", os.devnull)
    assert r.returncode == 1 and "no peer named or addressed 'nobody'" in r.stderr


def test_unknown_command_and_missing_socket(shared_pair, tmp_path):
    r = shared_pair.sender.ctl("show", "bgp", "flowspec")
    assert r.returncode == 1 and "unknown command: show bgp flowspec" in r.stderr
    r = subprocess.run([PY, "-m", "speakerd.ctl", "--socket", str(tmp_path / "none.sock"), "health"],
                       cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "is speakerd running?" in r.stderr


def test_control_socket_mode_is_0600(shared_pair):
    for d in (shared_pair.sender, shared_pair.receiver):
        st = os.stat(d.socket)
        assert stat.S_ISSOCK(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == 0o600


# ------------------------------------------------------------------ capture


def test_capture_pcap_decodes(shared_pair, tmp_path):
    pcap = tmp_path / "rx.pcap"
    r = shared_pair.receiver.ctl("capture", "sender", "-w", str(pcap), "--seconds", "0")
    assert r.returncode == 0, r.stderr
    assert re.search(r"(\d+) message\(s\) written to", r.stderr)
    d = subprocess.run([PY, "-m", "speakerd.cli", "decode", "--json", "--port", "0", str(pcap)], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert d.returncode == 0, d.stderr
    text = d.stdout
    records = _json_records(text)
    types = [rec.get("type") for rec in records]
    assert types.count("OPEN") == 2, types  # ours and theirs
    assert "UPDATE" in types and "KEEPALIVE" in types
    prefixes = set()
    for rec in records:
        if rec.get("type") == "UPDATE":
            prefixes.update(_nlri_strings(rec))
    assert PLANNED_V4 <= prefixes and PLANNED_V6 <= prefixes


def _json_records(text: str) -> list[dict]:
    text = text.strip()
    if text.startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _nlri_strings(rec) -> set[str]:
    """Every prefix string anywhere in a decoded UPDATE record."""
    out: set[str] = set()

    def walk(x):
        if isinstance(x, str):
            if re.fullmatch(r"[0-9a-f.:]+/\d+", x):
                out.add(x)
        elif isinstance(x, dict):
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)
    walk(rec)
    return out


def test_capture_has_the_real_ports(shared_pair, tmp_path):
    """The pcap shows the connection's own ports, so tshark/wireshark follow one TCP stream."""
    pcap = tmp_path / "tx.pcap"
    r = shared_pair.sender.ctl("capture", "receiver", "-w", str(pcap))
    assert r.returncode == 0, r.stderr
    n = shared_pair.sender.neighbor("receiver")
    # from the pcap: the sender connected out, so its side is an ephemeral port and the receiver's is the peer port
    with open(pcap, "rb") as f:
        ports = {(addr_str(p.src), p.sport, addr_str(p.dst), p.dport) for p in tcp_segments(f)}
    assert ports, "no packets"
    endpoints = {(a, b) for a, b, _, _ in ports} | {(c, d) for _, _, c, d in ports}
    assert (shared_pair.receiver_ip, shared_pair.port) in endpoints
    (local,) = [e for e in endpoints if e[0] == n["local_address"]]
    assert local[1] not in (179, 50179)
    if shutil.which("tshark"):
        t = subprocess.run(["tshark", "-r", str(pcap), "-d", f"tcp.port=={shared_pair.port},bgp",
                            "-T", "fields", "-e", "bgp.type"], capture_output=True, text=True, timeout=60)
        assert t.returncode == 0, t.stderr
        kinds = {k for line in t.stdout.split() for k in line.split(",")}
        assert {"1", "2", "4"} <= kinds  # OPEN, UPDATE, KEEPALIVE


# ------------------------------------------------------------------ metrics


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        assert resp.status == 200
        return resp.read().decode()


def _value(text: str, name: str, **labels) -> float:
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', line[len(name):line.index("}") + 1]))
        if all(got.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {name}{labels}")


def test_metrics_while_established(shared_pair):
    text = _scrape(shared_pair.metrics_port)
    peer = f"{shared_pair.receiver_ip}:{shared_pair.port}"
    assert _value(text, "metallb_bgp_session_up", peer=peer, vrf="default") == 1
    for name in ("metallb_bgp_opens_sent", "metallb_bgp_opens_received", "metallb_bgp_keepalives_sent",
                 "metallb_bgp_keepalives_received", "metallb_bgp_updates_total", "metallb_bgp_total_sent"):
        assert _value(text, name, peer=peer) > 0, name
    planned = len(PLANNED_V4) + len(PLANNED_V6)
    assert _value(text, "metallb_bgp_announced_prefixes_total", peer=peer) == planned
    assert _value(text, "metallb_bgp_pending_prefixes_total", peer=peer) == planned
    assert _value(text, "speakerd_session_state", peer=peer, state="Established") == 1


# ------------------------------------------------------- the socket protocol


def _raw(path: str, payload: bytes) -> list[dict]:
    """Send raw bytes to the control socket, read answer lines until it closes."""
    import socket as _socket  # noqa: PLC0415
    with _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(path)
        s.sendall(payload)
        s.shutdown(_socket.SHUT_WR)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return [json.loads(line) for line in data.splitlines()]


def test_control_socket_answers_each_line_and_survives_bad_requests(shared_pair):
    answers = _raw(shared_pair.sender.socket,
                   b'{"command": "health"}\n'
                   b'not json\n'
                   b'{"command": "frobnicate"}\n'
                   b'{"command": "health", "args": [1]}\n'
                   b'{"command": "neighbors", "args": {"peer": "receiver"}}\n')
    assert len(answers) == 5
    assert answers[0] == {"ok": True, "result": {"ok": True, "peers": 1, "established": 1}}
    assert answers[1]["ok"] is False and answers[1]["error"].startswith("bad request")
    assert answers[2]["ok"] is False and "unknown command 'frobnicate'" in answers[2]["error"]
    assert "capture" in answers[2]["error"] and "summary" in answers[2]["error"]
    assert answers[3]["ok"] is False and "args must be an object" in answers[3]["error"]
    assert answers[4]["result"]["neighbors"][0]["peer"] == "receiver"


def test_control_socket_rejects_an_oversized_request(shared_pair):
    answers = _raw(shared_pair.sender.socket, b'{"command": "' + b"x" * 100_000 + b'"}\n')
    assert answers == [{"ok": False, "error": "request too long"}]
    # and the daemon still answers
    assert shared_pair.sender.ctl_json("health")["established"] == 1
