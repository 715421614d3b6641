"""systemd/speakerd.service: systemd-analyze verify, and the directives that matter."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "systemd" / "speakerd.service"
SYSUSERS = ROOT / "systemd" / "speakerd.sysusers"


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """section -> key -> [values in order] (systemd allows repeated keys)."""
    out: dict[str, dict[str, list[str]]] = {}
    section = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        m = re.fullmatch(r"\[(\w+)\]", line)
        if m:
            section = out.setdefault(m.group(1), {})
            continue
        assert section is not None, f"directive outside a section: {line}"
        key, sep, value = line.partition("=")
        assert sep, f"not a key=value line: {line}"
        section.setdefault(key.strip(), []).append(value.strip())
    return out


@pytest.fixture(scope="module")
def unit():
    return parse_unit(UNIT.read_text())


def one(unit, section, key):
    values = unit[section][key]
    assert len(values) == 1, (key, values)
    return values[0]


def test_service_type_and_lifecycle(unit):
    assert one(unit, "Service", "Type") == "notify"
    assert one(unit, "Service", "NotifyAccess") == "main"
    assert one(unit, "Service", "WatchdogSec") == "30"
    assert one(unit, "Service", "Restart") == "on-failure"
    assert one(unit, "Service", "ExecReload") == "/bin/kill -HUP $MAINPID"
    start = one(unit, "Service", "ExecStart").split()
    assert start[:4] == ["/usr/local/bin/speakerd", "run", "-c", "/etc/speakerd"]
    assert start[start.index("--socket") + 1] == "/run/speakerd/speakerd.sock"
    assert "--metrics" in start
    assert one(unit, "Install", "WantedBy") == "multi-user.target"
    assert "network-online.target" in one(unit, "Unit", "After")


def test_user_directories_and_capabilities(unit):
    assert one(unit, "Service", "User") == "speakerd"
    assert "DynamicUser" not in unit["Service"]
    assert one(unit, "Service", "RuntimeDirectory") == "speakerd"
    assert one(unit, "Service", "StateDirectory") == "speakerd"
    caps = {"CAP_NET_BIND_SERVICE", "CAP_NET_ADMIN", "CAP_NET_RAW"}
    assert set(one(unit, "Service", "CapabilityBoundingSet").split()) == caps
    assert set(one(unit, "Service", "AmbientCapabilities").split()) == caps
    # the user the unit names is the one sysusers.d creates
    fields = SYSUSERS.read_text().split("\n")[1].split()
    assert fields[:2] == ["u", "speakerd"]


def test_hardening(unit):
    s = unit["Service"]
    for key, value in {
        "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
        "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes", "ProtectControlGroups": "yes",
        "RestrictNamespaces": "yes", "LockPersonality": "yes", "MemoryDenyWriteExecute": "yes",
        "SystemCallArchitectures": "native", "RestrictSUIDSGID": "yes", "PrivateDevices": "yes",
    }.items():
        assert s[key] == [value], key
    assert set(one(unit, "Service", "RestrictAddressFamilies").split()) == {
        "AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"}
    assert "@system-service" in s["SystemCallFilter"]
    # nothing may undo the hardening: no second ProtectSystem, no PrivateNetwork (BGP is on the host network)
    assert "PrivateNetwork" not in s and "PrivateUsers" not in s


def _verifiable_copy(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at an executable that exists here."""
    exe = Path(sys.executable).parent / "speakerd"
    if not exe.exists():
        exe = Path(shutil.which("true") or "/bin/true")
    copy = tmp_path / "speakerd.service"
    copy.write_text(UNIT.read_text().replace("/usr/local/bin/speakerd", str(exe)))
    return copy


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_verify_is_clean(tmp_path):
    copy = _verifiable_copy(tmp_path)
    r = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True, text=True,
                       timeout=60, cwd=tmp_path)
    # verify reports unknown keys and bad values as warnings with exit status 0: demand silence
    out = (r.stdout + r.stderr).strip()
    assert r.returncode == 0 and out == "", out


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_verify_catches_mistakes(tmp_path):
    """The check above would notice a typo (guards against a verify that checks nothing)."""
    copy = _verifiable_copy(tmp_path)
    copy.write_text(copy.read_text().replace("ProtectSystem=strict", "ProtectSystem=strict\nProtectSistem=yes"))
    r = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True, text=True,
                       timeout=60, cwd=tmp_path)
    assert "ProtectSistem" in r.stdout + r.stderr
