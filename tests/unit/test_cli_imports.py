"""`speakerd COMMAND` imports what that command needs, not every command's dependencies."""
from __future__ import annotations

import subprocess
import sys


def test_check_does_not_load_the_kubernetes_client(tmp_path):
    (tmp_path / "m.yaml").write_text("apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\n"
                                     "metadata: {name: a, namespace: m}\nspec: {addresses: [10.0.0.0/24]}\n")
    code = ("import sys\nfrom speakerd import cli\nrc = cli.main(['check', '-c', sys.argv[1]])\n"
            "print(rc, sorted(m for m in ('aiohttp', 'kubernetes_asyncio', 'speakerd.controller.loop') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[-1] == "0 []"


def test_help_still_lists_every_command():
    out = subprocess.run([sys.executable, "-m", "speakerd.cli", "--help"], capture_output=True, text=True, check=True)
    for name in ("run", "check", "plan", "decode", "crds", "controller"):
        assert name in out.stdout
