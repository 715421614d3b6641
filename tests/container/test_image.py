"""The speakerd image, built and run: its contents, `speakerd check` on the examples, the demo in two containers."""
from __future__ import annotations

import json
import re
import subprocess

import pytest

from tests.container import engine
from tests.interop.netlab import LabError, wait_for

EXAMPLES = sorted(p for p in (engine.ROOT / "config" / "examples").iterdir()
                  if p.is_dir() and p.name != "demo")
DEMO = engine.ROOT / "config" / "examples" / "demo"
CAPS = [a for c in engine.DAEMON_CAPS for a in ("--cap-add", c)]


def sh_in(image: str, script: str, *opts: str) -> subprocess.CompletedProcess:
    """Run a shell script in a throwaway container of ``image`` (no network)."""
    return engine.run([engine.DOCKER, "run", "--rm", "--network", "none", *engine.owner_labels(), *opts,
                       "--entrypoint", "sh", image, "-c", script], timeout=60, check=False)


def test_image_runs_as_its_user_with_no_build_tools(image):
    cfg = engine.inspect(image)["Config"]
    assert cfg["User"] == "10001:10001"
    assert cfg["Entrypoint"][0] == "/opt/speakerd/bin/speakerd-python"
    r = sh_in(image, "id -u; id -g; "
                     "for t in pip pip3 gcc cc make setcap python3-config; do command -v $t || true; done; "
                     "ls /var/lib/apt/lists | grep -v -x -e lock -e partial -e auxfiles || true; "
                     "for d in /opt/speakerd /opt/speakerd/lib/python3.11/site-packages/speakerd /etc/speakerd; do "
                     "  [ -w $d ] && echo writable: $d; done; "
                     "for m in pip setuptools wheel; do /opt/speakerd/bin/python -c \"import $m\" 2>&1 | tail -n1; done; "
                     "/opt/speakerd/bin/python -c 'import speakerd, pydantic, yaml, prometheus_client, pyroute2'")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[:2] == ["10001", "10001"]
    # nothing after the ids but the ImportErrors: no tools on PATH, no package lists, no build backend,
    # and the code and config directories are not writable by the daemon's user
    assert lines[2:] == [f"ModuleNotFoundError: No module named '{m}'" for m in ("pip", "setuptools", "wheel")], \
        lines


def test_only_the_daemon_interpreter_carries_capabilities(image):
    """security.capability on speakerd-python: exactly NET_BIND_SERVICE, NET_ADMIN, NET_RAW (=ep)."""
    r = sh_in(image, "cd /opt/speakerd/bin && python3 - <<'EOF'\n"
                     "import os, struct\n"
                     "for f in sorted(os.listdir('.')):\n"
                     "    p = os.path.realpath(f)\n"
                     "    try:\n"
                     "        raw = os.getxattr(p, 'security.capability')\n"
                     "    except OSError:\n"
                     "        continue\n"
                     "    magic, perm, inh = struct.unpack_from('<III', raw)\n"
                     "    print(f, p, hex(magic), perm, inh)\n"
                     "EOF")
    assert r.returncode == 0, r.stderr
    rows = [line.split() for line in r.stdout.splitlines()]
    assert len(rows) == 1, rows  # python, python3, speakerd, speakerctl ... carry none
    name, path, magic, perm, inh = rows[0]
    assert (name, path) == ("speakerd-python", "/opt/speakerd/bin/speakerd-python")
    assert int(magic, 16) & 1 == 1  # VFS_CAP_FLAGS_EFFECTIVE
    assert int(perm) == engine.DAEMON_CAP_MASK and int(inh) == 0


def test_daemon_refuses_to_start_without_its_capabilities(image, tmp_path):
    """--cap-drop ALL and no --cap-add: the kernel refuses the exec; no half-working speaker."""
    r = engine.run([engine.DOCKER, "run", "--rm", "--network", "none", "--cap-drop", "ALL",
                    *engine.owner_labels(), "-v", f"{EXAMPLES[0]}:/etc/speakerd:ro", image, "--node", "n1"],
                   timeout=60, check=False)
    assert r.returncode != 0
    assert "operation not permitted" in (r.stdout + r.stderr).lower()


def host_check(path) -> subprocess.CompletedProcess:
    return engine.run([str(engine.ROOT / ".venv" / "bin" / "speakerd"), "check", "-c", str(path)], check=False,
                      timeout=60)


CHECKED = EXAMPLES + [DEMO / "sender", DEMO / "receiver"]
EXAMPLES_ROOT = engine.ROOT / "config" / "examples"


@pytest.fixture(scope="module")
def container_checks(image) -> dict[str, tuple[int, str]]:
    """`speakerd check` on every example, all in one container: {name: (exit code, output)}."""
    names = [str(p.relative_to(EXAMPLES_ROOT)) for p in CHECKED]
    script = ('for d in "$@"; do speakerd check -c "/examples/$d" 2>&1; echo "@@@ $d $?"; done')
    r = engine.run([engine.DOCKER, "run", "--rm", "--network", "none", "--cap-drop", "ALL", "--read-only",
                    *engine.owner_labels(), "-v", f"{EXAMPLES_ROOT}:/examples:ro",
                    "--entrypoint", "sh", image, "-c", script, "sh", *names], timeout=120, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    out, buf = {}, []
    for line in r.stdout.splitlines(keepends=True):
        m = re.fullmatch(r"@@@ (\S+) (\d+)\n", line)
        if m:
            out[m.group(1)] = (int(m.group(2)), "".join(buf))
            buf = []
        else:
            buf.append(line)
    assert sorted(out) == sorted(names), r.stdout
    return out


@pytest.mark.parametrize("example", CHECKED, ids=lambda p: str(p.relative_to(EXAMPLES_ROOT)))
def test_check_examples_in_the_container(container_checks, example):
    name = str(example.relative_to(EXAMPLES_ROOT))
    rc, output = container_checks[name]
    assert rc == 0, output
    assert output.startswith("ok: ")
    # the same verdict as the speakerd of this checkout
    host = host_check(example)
    assert host.returncode == 0 and host.stdout.replace(str(example), f"/examples/{name}") == output


def test_check_reports_errors_in_the_container(image, tmp_path):
    tmp_path.chmod(0o755)  # readable by the image's user
    (tmp_path / "bad.yaml").write_text(
        "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: p1, namespace: metallb-system}\n"
        "spec: {myASN: 64500, peerASN: 64501, peerAddress: 198.19.0.1, holdTime: 2s}\n")
    r = engine.run([engine.DOCKER, "run", "--rm", "--network", "none", "--cap-drop", "ALL",
                    *engine.owner_labels(), "-v", f"{tmp_path}:/etc/speakerd:ro",
                    "--entrypoint", "speakerd", image, "check", "-c", "/etc/speakerd"], timeout=60, check=False)
    assert r.returncode != 0
    assert re.search(r"BGPPeer/p1: spec\.holdTime", r.stdout + r.stderr), r.stdout + r.stderr


# --- the demo: two containers peering on a user-defined internal network ------

DEMO_SUBNET = "198.19.1.0/24"
RECEIVER_IP, SENDER_IP = "198.19.1.10", "198.19.1.11"


@pytest.fixture
def demo_network():
    name = engine.new_name("demo")
    engine.docker("network", "create", "--internal", "--subnet", DEMO_SUBNET, *engine.owner_labels(), name)
    try:
        yield name
    finally:
        engine.docker("network", "rm", name, check=False)


def ctl(container: str, *words: str) -> dict:
    r = engine.run([engine.DOCKER, "exec", container, "speakerctl", "--socket", "/run/speakerd/speakerd.sock",
                    "--json", *words], timeout=30, check=False)
    if r.returncode != 0:
        raise LabError(f"speakerctl {' '.join(words)}: {r.stderr.strip() or r.stdout.strip()}")
    return json.loads(r.stdout)


def start_speakerd(image: str, name: str, config_dir, node: str, network: str, ip: str | None = None,
                   extra: tuple[str, ...] = ()) -> str:
    argv = ["run", "-d", "--name", name, *engine.owner_labels(), "--network", network,
            "--cap-drop", "ALL", *CAPS, "--read-only",
            "--tmpfs", "/run/speakerd:uid=10001,gid=10001,mode=0750",
            "-v", f"{config_dir}:/etc/speakerd:ro", *extra]
    if ip:
        argv += ["--ip", ip]
    engine.docker(*argv, image, "--node", node, "--socket", "/run/speakerd/speakerd.sock")
    return name


def assert_runs_as_image_user(container: str) -> None:
    """The daemon (PID 1 of the container) seen from the host: uid/gid 10001, the three capabilities."""
    state = engine.inspect(container)["State"]
    assert state["Running"], state
    status = engine.proc_status(state["Pid"])
    assert status["Uid"].split() == ["10001"] * 4, status["Uid"]
    assert status["Gid"].split() == ["10001"] * 4, status["Gid"]
    assert int(status["CapEff"], 16) == engine.DAEMON_CAP_MASK, status["CapEff"]
    assert "speakerd.cli" in engine.docker("top", container, "-o", "pid,user,args")


def test_demo_in_two_containers(image, demo_network, tmp_path):
    """config/examples/demo with the two containers' addresses: the receiver holds the sender's routes."""
    for side in ("receiver", "sender"):
        (tmp_path / side).mkdir()
        text = (DEMO / side / f"{side}.yaml").read_text()
        text = text.replace("127.0.0.1", RECEIVER_IP).replace("127.0.0.2", SENDER_IP)
        assert RECEIVER_IP in text and SENDER_IP in text
        (tmp_path / side / f"{side}.yaml").write_text(text)
    receiver = engine.new_name("receiver")
    sender = engine.new_name("sender")
    try:
        start_speakerd(image, receiver, tmp_path / "receiver", "receiver", demo_network, RECEIVER_IP)
        start_speakerd(image, sender, tmp_path / "sender", "demo-node", demo_network, SENDER_IP)

        def routes(container, *words):
            return {r["prefix"]: r for r in ctl(container, *words)["routes"]}

        def received_all():
            for c in (receiver, sender):
                if not engine.inspect(c)["State"]["Running"]:
                    raise AssertionError(f"{c} exited:\n{engine.container_logs(c)}")
            want = {fam: routes(sender, "show", "bgp", fam) for fam in ("ipv4", "ipv6")}
            got = {fam: routes(receiver, "show", "bgp", fam, "received-routes", "sender") for fam in want}
            return want["ipv4"] and all(set(got[f]) == set(want[f]) for f in want) and got

        got = wait_for(received_all, 60, "the receiver container holding the sender container's routes")
        assert set(got["ipv4"]) == {"198.51.100.0/26", "198.51.100.24/32", "198.51.100.34/32", "198.51.100.53/32"}
        assert set(got["ipv6"]) == {"2001:db8:100::/120", "2001:db8:100::e2/128"}
        web = got["ipv4"]["198.51.100.24/32"]
        assert web["next_hop"] == SENDER_IP and web["local_pref"] == 200
        assert {"64512:100", "64512:80"} <= set(web["communities"])
        summary = ctl(receiver, "show", "bgp", "summary")
        assert [p["state"] for p in summary["peers"]] == ["Established"], summary
        for c in (receiver, sender):
            assert_runs_as_image_user(c)
        # docker stop: SIGTERM -> Cease, exit 0
        engine.docker("stop", "-t", "20", sender, timeout=60)
        assert engine.inspect(sender)["State"]["ExitCode"] == 0, engine.container_logs(sender)
    except BaseException:
        for c in (receiver, sender):
            print(f"---- {c} ----\n{engine.container_logs(c)}")
        raise
    finally:
        for c in (sender, receiver):
            engine.remove_container(c)
