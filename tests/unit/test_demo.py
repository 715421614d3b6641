"""scripts/demo.sh from a clean venv: install, two daemons, the routes the manifests ask for, clean stop."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from test_daemon_harness import ROOT, loopback_endpoints

SCRIPT = ROOT / "scripts" / "demo.sh"


def _run(env_extra: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, **env_extra}
    env.pop("VIRTUAL_ENV", None)
    return subprocess.run(["bash", str(SCRIPT)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.slow
def test_demo_from_a_fresh_venv(tmp_path):
    receiver, sender, port = loopback_endpoints()
    venv = tmp_path / "venv"
    r = _run({"VENV": str(venv), "PYTHON": sys.executable, "DEMO_RECEIVER": receiver, "DEMO_SENDER": sender,
              "DEMO_PORT": str(port)})
    assert r.returncode == 0, f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    assert (venv / "bin" / "speakerd").exists() and (venv / "bin" / "speakerctl").exists()
    out = r.stdout
    assert "IPv4 unicast routes received from sender: 4" in out
    assert "IPv6 unicast routes received from sender: 2" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines()
            if re.match(r"^(198\.51\.100\.|2001:db8:100::)\S*/\d+ ", line)}
    assert set(rows) == {"198.51.100.0/26", "198.51.100.34/32", "198.51.100.24/32", "198.51.100.53/32",
                         "2001:db8:100::/120", "2001:db8:100::e2/128"}
    for prefix in ("198.51.100.34/32", "198.51.100.24/32", "198.51.100.53/32", "2001:db8:100::e2/128"):
        cells = rows[prefix]
        # Network, Next Hop, LocPrf, Origin, communities...: local-pref 200, the literal, the large
        # community and the alias demo-web = 64512:80
        assert cells[2] == "200", cells
        assert {"64512:100", "64512:0:1", "64512:80"} <= set(cells[4:]), cells
    assert rows["198.51.100.53/32"][1] == sender
    assert re.search(rf"^sender\s+{re.escape(sender)}\s+64512\s.*\s6\s+0\s*$", out, re.M), out
    assert "Total number of neighbors 1, 1 established" in out
    assert "demo: both daemons stopped cleanly" in out
    # the temporary directory (sockets, state, logs) is gone
    assert not any(p.name.startswith("speakerd-demo.") for p in tmp_path.iterdir())


def test_demo_refuses_non_loopback_addresses(tmp_path):
    r = _run({"VENV": str(ROOT / ".venv"), "DEMO_RECEIVER": "192.0.2.1", "TMPDIR": str(tmp_path)}, timeout=30)
    assert r.returncode == 2
    assert "192.0.2.1 is not a loopback address" in r.stderr


def test_demo_fails_when_a_daemon_does_not_start(tmp_path):
    """An invalid config (peerPort above MetalLB's 16384) stops the daemons at once: exit 1, cleaned up."""
    receiver, sender, _ = loopback_endpoints()
    r = _run({"VENV": str(ROOT / ".venv"), "DEMO_RECEIVER": receiver, "DEMO_SENDER": sender,
              "DEMO_PORT": "20000", "DEMO_TIMEOUT": "10", "TMPDIR": str(tmp_path)}, timeout=60)
    assert r.returncode == 1
    assert "demo: a daemon exited early" in r.stderr
    assert "spec.peerPort" in r.stderr  # the daemon's own error, from its log
    assert not any(p.name.startswith("speakerd-demo.") for p in tmp_path.iterdir())
