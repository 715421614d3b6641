"""speakerctl drain / undrain and --drain-on-stop (RFC 8326), between two real daemons.

The demo pair is iBGP: while draining, the receiver must see every route with the
GRACEFUL_SHUTDOWN community 65535:0 and LOCAL_PREF 0; after the drain, no route and a
Cease 6/2 with the shutdown message; after undrain, the routes as planned again.
"""
from __future__ import annotations

import json
import subprocess

from speakerd.policy.types import RouteAttrs
from speakerd.rib import AdjRibIn, AdjRibOut
from speakerd.wire.capabilities import DEFAULT_CONTEXT
from speakerd.wire.framing import decode
from speakerd.wire.nlri import str_to_key

from test_daemon_harness import PLANNED_V4, PY, ROOT, DaemonPair, pair  # noqa: F401

GSHUT = "65535:0"


def _rows(d) -> dict[str, dict]:
    return {r["prefix"]: r for r in d.ctl_json("show", "bgp", "ipv4", "received-routes", "sender")["routes"]}


def _all_marked(pair):
    rows = _rows(pair.receiver)
    if PLANNED_V4 <= set(rows) and all(GSHUT in r["communities"] and r["local_pref"] == 0 for r in rows.values()):
        return rows
    return None


def _drain_in_background(d, wait: float) -> subprocess.Popen:
    return subprocess.Popen([PY, "-m", "speakerd.ctl", "--socket", d.socket, "--json", "drain", "--wait", str(wait)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


# ------------------------------------------------------------------ Adj-RIB-Out


def _receive(msgs) -> AdjRibIn:
    rib = AdjRibIn()
    for m in msgs:
        rib.apply(decode(m))
    return rib


def test_graceful_shutdown_marks_every_route_and_local_pref_zero_on_ibgp():
    key = str_to_key("198.51.100.10/32")
    out = AdjRibOut(65001, ibgp=True)
    out.connected("192.0.2.1")
    out.set_wanted({key: RouteAttrs(communities=(0xFDE80064,), local_pref=300)})
    out.initial(DEFAULT_CONTEXT)
    assert out.set_graceful_shutdown(True) is True
    assert out.set_graceful_shutdown(True) is False  # no change, nothing to re-announce
    attrs, _ = _receive(out.diff(DEFAULT_CONTEXT)).get(*key)
    assert attrs.communities == (0xFDE80064, 0xFFFF0000)
    assert attrs.local_pref == 0
    out.set_graceful_shutdown(False)
    attrs, _ = _receive(out.diff(DEFAULT_CONTEXT)).get(*key)
    assert attrs.communities == (0xFDE80064,) and attrs.local_pref == 300


def test_graceful_shutdown_on_ebgp_sends_the_community_and_no_local_pref():
    key = str_to_key("198.51.100.10/32")
    out = AdjRibOut(65001, ibgp=False)
    out.connected("192.0.2.1")
    out.set_graceful_shutdown(True)
    out.set_wanted({key: RouteAttrs(local_pref=300)})
    attrs, _ = _receive(out.initial(DEFAULT_CONTEXT)).get(*key)
    assert attrs.communities == (0xFFFF0000,) and attrs.local_pref is None


def test_graceful_shutdown_marks_routes_planned_later_too():
    k1, k2 = str_to_key("198.51.100.10/32"), str_to_key("198.51.100.11/32")
    out = AdjRibOut(65001, ibgp=True)
    out.connected("192.0.2.1")
    out.set_wanted({k1: RouteAttrs()})
    out.initial(DEFAULT_CONTEXT)
    out.set_graceful_shutdown(True)
    out.diff(DEFAULT_CONTEXT)
    attrs, _ = _receive(out.apply_delta({k2: RouteAttrs()}, DEFAULT_CONTEXT)).get(*k2)
    assert attrs.communities == (0xFFFF0000,) and attrs.local_pref == 0


# ------------------------------------------------------------------ daemons


def test_drain_marks_then_withdraws_and_ceases_and_undrain_restores(pair):
    pair.wait_received("ipv4", len(PLANNED_V4))
    before = _rows(pair.receiver)
    assert all(GSHUT not in r["communities"] for r in before.values())
    r = pair.sender.ctl("drain", "--wait", "0", "--message", "maintenance on node demo-node", json_out=True)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["state"] == "drained"
    assert [(p["peer"], p["state"], p["prefixes_sent"]) for p in res["peers"]] == [("receiver", "Idle", 0)]

    def got_cease():
        n = pair.receiver.neighbor("sender")
        return n if n["last_notification_received"] and n["state"] != "Established" else None

    note = pair.receiver.wait_for("the drain's Cease", got_cease)["last_notification_received"]
    assert (note["code"], note["subcode"]) == (6, 2)
    assert note["message"] == "maintenance on node demo-node"
    assert _rows(pair.receiver) == {}
    assert pair.sender.ctl_json("show", "bgp", "summary")["peers"][0]["state"] == "Idle"
    text = pair.sender.ctl_text("undrain")
    assert text.startswith("undrained: sessions restarting")
    pair.sender.wait_established("receiver")
    after = pair.wait_received("ipv4", len(PLANNED_V4))
    assert {x["prefix"]: x["communities"] for x in after} == {k: v["communities"] for k, v in before.items()}
    assert all(x["local_pref"] == before[x["prefix"]]["local_pref"] for x in after)


def test_routes_carry_graceful_shutdown_during_the_wait_and_undrain_cancels(pair):
    pair.wait_received("ipv4", len(PLANNED_V4))
    drain = _drain_in_background(pair.sender, 120)
    try:
        pair.receiver.wait_for("every route marked GRACEFUL_SHUTDOWN, LOCAL_PREF 0", lambda: _all_marked(pair))
        assert pair.sender.ctl_json("show", "bgp", "summary")["peers"][0]["state"] == "Established"
        res = pair.sender.ctl_json("undrain")
        assert res["was"] == "draining" and res["state"] == "active"
        out, err = drain.communicate(timeout=30)
    finally:
        if drain.poll() is None:
            drain.kill()
            drain.wait()
    assert drain.returncode == 0, err
    assert json.loads(out)["state"] == "active"  # the drain ended without withdrawing
    pair.receiver.wait_for("the marks gone", lambda: all(
        GSHUT not in r["communities"] and r["local_pref"] != 0 for r in _rows(pair.receiver).values())
        and PLANNED_V4 <= set(_rows(pair.receiver)))
    n = pair.receiver.neighbor("sender")
    assert n["state"] == "Established" and n["last_notification_received"] is None


def test_drain_on_stop_drains_before_exiting(tmp_path):
    p = DaemonPair(tmp_path)
    p.sender.extra_args = ["--drain-on-stop", "120"]
    try:
        p.start()
        p.wait_received("ipv4", len(PLANNED_V4))
        p.sender.proc.terminate()  # SIGTERM: the drain starts
        p.receiver.wait_for("every route marked GRACEFUL_SHUTDOWN, LOCAL_PREF 0", lambda: _all_marked(p))
        assert p.sender.proc.poll() is None  # still draining, the control socket answers
        assert p.sender.ctl_json("show", "bgp", "summary")["peers"][0]["state"] == "Established"
        p.sender.ctl_json("undrain")  # cuts the wait short: the stop goes on
        assert p.sender.proc.wait(30) == 0  # no second signal: the first one is still being handled

        def got_cease():
            n = p.receiver.neighbor("sender")
            return n if n["last_notification_received"] else None

        note = p.receiver.wait_for("the Cease", got_cease)["last_notification_received"]
        assert (note["code"], note["subcode"]) == (6, 2)
        assert note["message"] == "speakerd is shutting down"
    finally:
        p.stop()


def test_drain_rejects_a_negative_wait(pair):
    r = pair.sender.ctl("drain", "--wait", "-1")
    assert r.returncode == 1 and "must not be negative" in r.stderr
    assert pair.sender.ctl_json("show", "bgp", "summary")["peers"][0]["state"] == "Established"


def test_a_reload_while_drained_starts_no_session_until_undrain(pair):
    pair.wait_received("ipv4", len(PLANNED_V4))
    assert pair.sender.ctl("drain", "--wait", "0").returncode == 0
    text = pair.sender_yaml.read_text()
    assert "holdTime: 9s" in text
    pair.sender_yaml.write_text(text.replace("holdTime: 9s", "holdTime: 12s", 1))  # resets the session
    res = pair.sender.ctl_json("reload")
    assert res["ok"] and res["reset"] == ["receiver"]
    row = pair.sender.ctl_json("show", "bgp", "summary")["peers"][0]
    assert row["state"] == "Idle" and row["prefixes_sent"] == 0  # the rebuilt session stays down
    assert pair.sender.ctl_json("undrain")["was"] == "drained"
    pair.sender.wait_established("receiver")
    pair.wait_received("ipv4", len(PLANNED_V4))
    assert pair.sender.neighbor("receiver")["configured"]["hold_time"] == 12
