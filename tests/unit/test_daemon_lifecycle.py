"""Things that change a running daemon: reload (valid, invalid, session reset), a wrong
peer AS, metrics and logs across a stop, secrets.  Each test has its own demo pair
(test_daemon_harness.DaemonPair) and stops it by PID.
"""
from __future__ import annotations

import json
import re
import urllib.request

import pytest

from test_daemon_harness import EXTRA_SERVICE, PLANNED_V4, PLANNED_V6, DaemonPair, pair  # noqa: F401


BAD_POOL = """
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata:
  name: broken-pool
  namespace: metallb-system
spec:
  addresses:
    - 198.51.100.300/32
"""


def _prefixes(d, family="ipv4") -> set[str]:
    return {r["prefix"] for r in d.ctl_json("show", "bgp", family, "received-routes", "sender")["routes"]}


# ------------------------------------------------------------------- reload


def test_reload_adds_a_route_without_resetting_the_session(pair):
    pair.wait_received("ipv4", len(PLANNED_V4))
    before = pair.sender.neighbor("receiver")
    history_before = pair.sender.ctl_json("show", "history")["history"]
    pair.sender_yaml.write_text(pair.sender_yaml.read_text() + EXTRA_SERVICE)

    r = pair.sender.ctl("reload", json_out=True)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["ok"] is True and res["errors"] == []
    assert res["reset"] == [] and res["kept"] == ["receiver"] and res["route_changes"] == 1

    got = pair.receiver.wait_for("198.51.100.60/32 at the receiver",
                                 lambda: "198.51.100.60/32" in _prefixes(pair.receiver))
    assert got
    after = pair.sender.neighbor("receiver")
    assert after["state"] == "Established"
    assert after["messages"]["sent"]["open"] == before["messages"]["sent"]["open"] == 1
    assert after["uptime_seconds"] >= before["uptime_seconds"]
    assert pair.sender.ctl_json("show", "history")["history"] == history_before
    # the receiver did not see a flap either
    assert not any(e["flap"] for e in pair.receiver.ctl_json("show", "history")["history"])
    rows = {x["prefix"]: x for x in
            pair.receiver.ctl_json("show", "bgp", "ipv4", "received-routes", "sender")["routes"]}
    assert rows["198.51.100.60/32"]["local_pref"] == 200
    assert rows["198.51.100.60/32"]["communities"] == ["64512:80", "64512:100"]
    text = pair.sender.ctl_text("explain", "demo/extra")
    assert "advertised as 198.51.100.60/32 — on the wire" in text


def test_changed_config_file_is_reloaded_by_the_watcher(tmp_path):
    p = DaemonPair(tmp_path, sender_watch=0.2)
    try:
        p.start()
        p.wait_received("ipv4", len(PLANNED_V4))
        p.sender_yaml.write_text(p.sender_yaml.read_text() + EXTRA_SERVICE)
        p.receiver.wait_for("the watcher's reload", lambda: "198.51.100.60/32" in _prefixes(p.receiver))
        assert p.sender.ctl_json("show", "bgp", "summary")["reload"]["ok"] is True
        assert not any(e["flap"] for e in p.sender.ctl_json("show", "history")["history"])
        assert any("config reloaded (config file changed)" in r["msg"] for r in p.sender.log_records())
    finally:
        p.stop()


def test_reload_text_output(pair):
    out = pair.sender.ctl_text("reload")
    assert out.strip() == "reloaded: 0 peer(s) added, 0 removed, 0 reset, 1 kept; 0 route change(s)"


def test_invalid_reload_is_rejected_and_withdraws_nothing(pair):
    pair.wait_received("ipv4", len(PLANNED_V4))
    pair.sender_yaml.write_text(pair.sender_yaml.read_text() + BAD_POOL)

    r = pair.sender.ctl("reload", json_out=True)
    assert r.returncode == 3
    res = json.loads(r.stdout)
    assert res["ok"] is False and res["errors"]
    (err,) = [e for e in res["errors"] if "broken-pool" in e]
    assert str(pair.sender_yaml) in err and "IPAddressPool/broken-pool" in err and "spec.addresses" in err

    r = pair.sender.ctl("reload")
    assert r.returncode == 3
    assert r.stdout.startswith("reload rejected; the running configuration is unchanged:")
    assert "IPAddressPool/broken-pool" in r.stdout
    # the summary tells about it; nothing was withdrawn and the session stayed up
    summary = pair.sender.ctl_text("show", "bgp", "summary")
    assert "Last reload FAILED" in summary
    assert _prefixes(pair.receiver) == PLANNED_V4
    assert _prefixes(pair.receiver, "ipv6") == PLANNED_V6
    assert pair.sender.neighbor("receiver")["state"] == "Established"
    assert not any(e["flap"] for e in pair.sender.ctl_json("show", "history")["history"])


def test_hold_time_change_resets_the_session_with_cause_config_change(pair):
    pair.wait_received("ipv4", len(PLANNED_V4))
    pair.sender_yaml.write_text(pair.sender_yaml.read_text().replace("holdTime: 9s", "holdTime: 6s", 1))
    res = pair.sender.ctl_json("reload")
    assert res["ok"] is True and res["reset"] == ["receiver"]

    def reestablished():
        n = pair.sender.neighbor("receiver")
        return n if n["state"] == "Established" and n["capabilities"]["in_effect"]["hold_time"] == 6 else None

    n = pair.sender.wait_for("the new session", reestablished)
    assert n["capabilities"]["in_effect"]["keepalive_time"] == 2
    # the receiver saw the Cease 6/6 and records the flap with its cause
    r = pair.receiver.neighbor("sender")
    note = r["last_notification_received"]
    assert (note["code"], note["subcode"]) == (6, 6)
    assert note["hint"] == "a configuration change reset the session"
    flaps = [e for e in pair.receiver.ctl_json("show", "history", "sender")["history"] if e["flap"]]
    assert len(flaps) == 1
    assert flaps[0]["from"] == "Established" and flaps[0]["cause"] == "notification_received"
    assert "Other Configuration Change" in flaps[0]["detail"]
    text = pair.receiver.ctl_text("show", "history", "sender")
    assert re.search(r"sender\s+Established -> Idle\s+notification received: Cease/Other Configuration Change"
                     r"\s+FLAP", text), text
    assert pair.receiver.neighbor("sender")["flaps"] == {"notification_received": 1}
    # and the routes came back on the new session
    pair.wait_received("ipv4", len(PLANNED_V4))
    assert _prefixes(pair.receiver) == PLANNED_V4


def test_hold_time_reset_kept_in_the_resetting_sides_history(pair):
    pair.wait_received("ipv4", len(PLANNED_V4))
    pair.sender_yaml.write_text(pair.sender_yaml.read_text().replace("holdTime: 9s", "holdTime: 6s", 1))
    assert pair.sender.ctl_json("reload")["reset"] == ["receiver"]
    pair.sender.wait_established("receiver")
    assert pair.sender.neighbor("receiver")["flaps"] == {"config_change": 1}
    flaps = [e for e in pair.sender.ctl_json("show", "history", "receiver")["history"] if e["flap"]]
    assert len(flaps) == 1 and "Other Configuration Change" in (flaps[0]["detail"] or "")


# -------------------------------------------------------------- wrong peer AS


def test_bad_peer_as_hint_names_the_ases(tmp_path):
    p = DaemonPair(tmp_path, receiver_peer_asn=64999)
    try:
        p.start(wait=False)

        def refused():
            n = p.sender.neighbor("receiver")
            return n if n["last_notification_received"] else None

        n = p.sender.wait_for("the receiver's Bad Peer AS", refused)
        note = n["last_notification_received"]
        assert (note["code"], note["subcode"]) == (2, 2) and note["name"].lower() == "open message/bad peer as"
        assert "64512" in note["hint"] and "remote-as" in note["hint"]
        text = p.sender.ctl_text("show", "bgp", "neighbors", "receiver")
        assert f"Last NOTIFICATION received: 2/2 {note['name']}" in text
        assert "hint: the router does not expect our AS 64512" in text
        # the side that refused names both: what arrived and what is configured
        r = p.receiver.wait_for("the Bad Peer AS sent", lambda: p.receiver.neighbor("sender")["last_notification_sent"])
        assert r["hint"] == ("the router announced AS 64512 but the BGPPeer's peerASN is 64999: "
                             "fix peerASN, or the router's local AS")
        assert p.receiver.neighbor("sender")["state"] != "Established"
    finally:
        p.stop()


# -------------------------------------------------------------------- secrets


def test_md5_password_never_shown(tmp_path):
    secret = "s3cr3t-Pa55word"
    p = DaemonPair(tmp_path, password=secret)
    try:
        p.start()
        for d, peer in ((p.sender, "receiver"), (p.receiver, "sender")):
            r = d.ctl("show", "bgp", "neighbors", peer, json_out=True)
            assert r.returncode == 0
            assert secret not in r.stdout
            assert json.loads(r.stdout)["neighbors"][0]["configured"]["md5"] is True
            assert "TCP-MD5" in d.ctl_text("show", "bgp", "neighbors")
    finally:
        p.stop()
    for d in (p.sender, p.receiver):
        assert secret not in d.log_text()


# -------------------------------------------------------------- metrics, logs


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        return resp.read().decode()


def test_session_up_metric_drops_when_the_peer_stops(tmp_path):
    p = DaemonPair(tmp_path, sender_metrics=True)
    try:
        p.start()
        label = f'metallb_bgp_session_up{{peer="{p.receiver_ip}:{p.port}",vrf="default"}}'
        assert f"{label} 1.0" in _scrape(p.metrics_port)
        assert p.receiver.terminate() == 0
        p.sender.wait_for("session_up 0", lambda: f"{label} 0.0" in _scrape(p.metrics_port))
        text = _scrape(p.metrics_port)
        assert f'metallb_bgp_announced_prefixes_total{{peer="{p.receiver_ip}:{p.port}",vrf="default"}} 0.0' in text
    finally:
        p.stop()


def test_json_logs_and_trace(tmp_path):
    p = DaemonPair(tmp_path, trace="receiver")
    try:
        p.start()
        p.wait_received("ipv4", len(PLANNED_V4))
    finally:
        p.stop()
    records = p.sender.log_records()  # every line is JSON
    assert all({"ts", "level", "logger", "msg"} <= r.keys() for r in records)
    states = [r for r in records if r["logger"] == "speakerd.peer" and "to_state" in r]
    assert {r["peer"] for r in states} == {"receiver"}
    up = [r for r in states if r["to_state"] == "Established"]
    assert up and up[0]["from_state"] == "OpenConfirm" and up[0]["cause"] == "keepalive_received"
    traces = [r for r in records if r["logger"] == "speakerd.trace"]
    updates = [r for r in traces if "UPDATE" in r["msg"]]
    assert updates, [r["msg"] for r in traces]
    assert all(r.get("peer") == "receiver" for r in traces)
    assert any("198.51.100.53/32" in r["msg"] for r in updates)
    assert any("bgp" in r for r in updates)  # decoded fields attached in JSON mode
    # the receiver traced nothing of its own (no --trace there), but its lines are JSON too
    assert not any(r["logger"] == "speakerd.trace" for r in p.receiver.log_records())
