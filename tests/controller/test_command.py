"""`speakerd controller` as a process against the emulator: assigns, and on SIGTERM gives the Lease up."""
from __future__ import annotations

import asyncio
import os
import signal
import sys

from speakerd.kube.kinds import LEASES

from .emu import NS, Watcher, cluster, create, ingress, kubeconfig
from .objs import pool, svc


async def test_command_assigns_and_releases_the_lease_on_sigterm(tmp_path):
    async with cluster(pool("p", "192.0.2.0/28")) as (emu, api, services, events):
        path = kubeconfig(emu.url, str(tmp_path / "kubeconfig"))
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "speakerd.cli", "controller", "--kubeconfig", path, "--namespace", NS,
            "--identity", "replica-a", env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
        leases = Watcher(api, LEASES, NS)
        try:
            await leases.until(lambda s: (s.get(f"{NS}/speakerd-controller", {}).get("spec") or {})
                               .get("holderIdentity") == "replica-a", "replica-a leads")
            await create(api, svc("web"))
            await services.until(lambda s: ingress(s.get("default/web", {})) == ("192.0.2.0",), "web assigned")
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 30) == 0
            lease = await api.get(LEASES, NS, "speakerd-controller")
            assert lease["spec"]["holderIdentity"] == "" and lease["spec"]["leaseDurationSeconds"] == 1
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            await leases.close()


def test_command_without_credentials_fails_cleanly(tmp_path, capsys, monkeypatch):
    from speakerd.cli import main
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert main(["controller"]) == 1
    assert "no API credentials" in capsys.readouterr().err
    assert main(["controller", "--kubeconfig", str(tmp_path / "missing")]) == 1
