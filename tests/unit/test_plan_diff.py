"""speakerd plan --diff and speakerctl reload --dry-run: the changes each peer would get.

The demo sender configuration is the old one; each test changes a copy and checks the
difference against what a reload of that copy does (the same decisions, reconcile and the
planner's delta), in JSON and text, without anything being applied.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from speakerd.commands.plan import against_files, read_and_plan
from test_daemon_harness import DEMO, EXTRA_SERVICE, PLANNED_V4, ROOT, pair  # noqa: F401

NODE = "demo-node"


@pytest.fixture
def dirs(tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    shutil.copytree(DEMO / "sender", old)
    shutil.copytree(DEMO / "sender", new)
    return old, new


def _diff(old: Path, new: Path) -> dict:
    o = read_and_plan([str(old)], NODE, {})
    n = read_and_plan([str(new)], NODE, dict(o.plan.allocations))
    return against_files(o, n, NODE)


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "speakerd.cli", "plan", "--diff", *args, "--node", NODE],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_same_configuration_changes_nothing(dirs):
    d = _diff(*dirs)
    assert d["ok"] and d["changed"] is False
    (p,) = d["peers"].values()
    assert p == {**p, "session": "kept", "announce": [], "withdraw": [], "update": []}
    r = _cli("-c", str(dirs[1]), "-c", str(dirs[0]))
    assert r.returncode == 0 and r.stdout.strip() == "node demo-node: no change"


def test_new_service_is_announced_on_a_kept_session(dirs):
    old, new = dirs
    (new / "sender.yaml").write_text((new / "sender.yaml").read_text() + EXTRA_SERVICE)
    d = _diff(old, new)
    p = d["peers"]["receiver"]
    assert p["session"] == "kept" and p["withdraw"] == [] and p["update"] == []
    assert p["announce"] == [{"prefix": "198.51.100.60/32", "communities": ["64512:80", "64512:100"],
                              "large_communities": ["large:64512:0:1"], "local_pref": 200}]


def test_attribute_change_is_a_reannouncement_with_old_and_new(dirs):
    old, new = dirs
    _edit(new / "sender.yaml", "  localPref: 200\n", "  localPref: 300\n")
    d = _diff(old, new)
    p = d["peers"]["receiver"]
    assert p["session"] == "kept" and p["announce"] == [] and p["withdraw"] == []
    assert p["update"] and all(u["old"]["local_pref"] == 200 and u["new"]["local_pref"] == 300 for u in p["update"])
    planned = {r.prefix for r in read_and_plan([str(old)], NODE, {}).plan.routes["receiver"].values()
               if r.attrs.local_pref == 200}
    assert {u["prefix"] for u in p["update"]} == planned
    r = _cli("-c", str(new), "--old", str(old))
    assert r.returncode == 0, r.stderr
    assert f"  ~ {p['update'][0]['prefix']}  local-pref 200 -> 300" in r.stdout.splitlines()


def test_removed_service_is_withdrawn(dirs):
    old, new = dirs
    (old / "sender.yaml").write_text((old / "sender.yaml").read_text() + EXTRA_SERVICE)
    d = _diff(old, new)
    assert d["peers"]["receiver"]["withdraw"] == ["198.51.100.60/32"]
    r = _cli("-c", str(new), "--old", str(old), "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["peers"]["receiver"]["withdraw"] == ["198.51.100.60/32"]
    assert "  - 198.51.100.60/32" in _cli("-c", str(new), "--old", str(old)).stdout


def test_session_parameter_change_resets_with_the_reason(dirs):
    old, new = dirs
    _edit(new / "sender.yaml", "holdTime: 9s", "holdTime: 30s")
    d = _diff(old, new)
    p = d["peers"]["receiver"]
    assert p["session"] == "reset" and p["notification"] == "Cease/Other Configuration Change (6/6)"
    assert {"field": "holdTime", "old": 9, "new": 30} in p["reasons"]
    text = _cli("-c", str(new), "-c", str(old)).stdout
    assert "session reset: Cease 6/6" in text and "holdTime 9 -> 30" in text


def test_password_change_is_a_reason_without_the_value(dirs):
    old, new = dirs
    _edit(new / "sender.yaml", "  holdTime: 9s", "  password: s3cret-value\n  holdTime: 9s")
    d = _diff(old, new)
    assert {"field": "password", "old": "unset", "new": "set"} in d["peers"]["receiver"]["reasons"]
    assert "s3cret-value" not in json.dumps(d)


def test_removed_peer_is_ceased_and_every_route_withdrawn(dirs):
    old, new = dirs
    # the peer is no longer selected for this node
    _edit(new / "sender.yaml", "  holdTime: 9s\n",
          "  holdTime: 9s\n  nodeSelectors:\n  - matchLabels:\n      kubernetes.io/hostname: other-node\n")
    d = _diff(old, new)
    p = d["peers"]["receiver"]
    assert p["session"] == "removed" and p["notification"] == "Cease/Peer De-configured (6/3)"
    planned = {r.prefix for r in read_and_plan([str(old)], NODE, {}).plan.routes["receiver"].values()}
    assert len(planned) > 1 and set(p["withdraw"]) == planned and p["announce"] == []


def test_refused_configuration_says_so(dirs):
    old, new = dirs
    _edit(new / "sender.yaml", "198.51.100.0/26", "198.51.100.300/26")
    d = _diff(old, new)
    assert d["ok"] is False and any("IPAddressPool" in e for e in d["errors"])
    r = _cli("-c", str(new), "-c", str(old))
    assert r.returncode == 1 and r.stdout.startswith("the new configuration would be refused")


def test_diff_needs_an_old_configuration(dirs):
    r = _cli("-c", str(dirs[1]))
    assert r.returncode == 2 and "--old PATH, --against SOCKET" in r.stderr


# ---------------------------------------------------------- against the running daemon


def test_reload_dry_run_and_against_show_the_change_and_apply_nothing(pair):
    pair.wait_received("ipv4", len(PLANNED_V4))
    before = {r["prefix"] for r in pair.receiver.ctl_json("show", "bgp", "ipv4", "received-routes", "sender")["routes"]}
    r = pair.sender.ctl("reload", "--dry-run", json_out=True)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["changed"] is False
    pair.sender_yaml.write_text(pair.sender_yaml.read_text() + EXTRA_SERVICE)
    d = json.loads(pair.sender.ctl("reload", "--dry-run", json_out=True).stdout)
    assert d["peers"]["receiver"]["session"] == "kept"
    assert [a["prefix"] for a in d["peers"]["receiver"]["announce"]] == ["198.51.100.60/32"]
    text = pair.sender.ctl_text("reload", "--dry-run")
    assert "  + 198.51.100.60/32" in text
    out = subprocess.run([sys.executable, "-m", "speakerd.cli", "plan", "--diff", "-c", str(pair.sender_dir),
                          "--against", pair.sender.socket, "--json"], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["peers"] == d["peers"]
    # nothing was applied: the receiver has the same routes, the daemon the old plan
    after = {r["prefix"] for r in pair.receiver.ctl_json("show", "bgp", "ipv4", "received-routes", "sender")["routes"]}
    assert after == before and "198.51.100.60/32" not in after
    res = pair.sender.ctl_json("reload")
    assert res["route_changes"] == 1  # what the dry run announced is what the reload did
    assert json.loads(pair.sender.ctl("reload", "--dry-run", json_out=True).stdout)["changed"] is False
