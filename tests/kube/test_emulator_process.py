"""The emulator as a process (as the cluster harness runs it): serves, writes its state on SIGTERM,
and a restart from that state serves the same objects at the same resourceVersions."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def start(state: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "tests.kubeemu", "--listen", "127.0.0.1:0", "--state", str(state),
                             "--bookmark-interval", "0"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    line = proc.stdout.readline()
    assert "listening on" in line, line
    return proc, line.split()[-1]


def call(method: str, url: str, body=None):
    req = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=30)


def test_process_keeps_objects_across_a_restart(tmp_path):
    state = tmp_path / "state.json"
    proc, url = start(state)
    try:
        created = call("POST", f"{url}/api/v1/namespaces/default/services",
                       {"metadata": {"name": "web"}, "spec": {"type": "LoadBalancer"}})
        call("POST", f"{url}/_emulator/churn?count=3&rate=1000")
        want = int(created["metadata"]["resourceVersion"]) + 3
        for _ in range(1000):                      # wait for the three changes to be in
            if call("GET", f"{url}/_emulator/stats")["resourceVersion"] >= want:
                break
        before = call("GET", f"{url}/api/v1/namespaces/default/services/web")
        assert int(before["metadata"]["resourceVersion"]) == want
    finally:
        assert stop(proc) == 0
    assert state.exists()
    proc, url = start(state)
    try:
        got = call("GET", f"{url}/api/v1/namespaces/default/services/web")
        assert got["metadata"]["uid"] == created["metadata"]["uid"]
        assert got == before
        # the counter goes on from where it stopped
        nxt = call("POST", f"{url}/api/v1/namespaces/default/services", {"metadata": {"name": "api"}, "spec": {}})
        assert int(nxt["metadata"]["resourceVersion"]) == want + 1
    finally:
        assert stop(proc) == 0


async def test_churn_changes_objects_at_the_asked_count(emu, http):
    for i in range(3):
        await http.req("POST", "/api/v1/namespaces/default/services", {"metadata": {"name": f"s{i}"}, "spec": {}})
    rv = emu.store.rv
    info = emu.resource("v1", "services")
    assert await emu.churn(info, rate=10_000, count=7) == 7
    evs = await http.watch(f"/api/v1/services?watch=1&resourceVersion={rv}&timeoutSeconds=1")
    assert [e["type"] for e in evs] == ["MODIFIED"] * 7
    assert emu.store.rv == rv + 7
