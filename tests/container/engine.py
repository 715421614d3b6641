"""The container engine as the container tests use it: the docker CLI, images, labelled resources.

Everything a test creates (containers, networks, compose projects) carries the
label ``io.speakerd.test.owner=<pid of the pytest process>``, and its name starts
with ``sdt-``; :func:`sweep` removes what dead test runs left behind and
never touches what a live one owns.  Images get stable tags (``speakerd:test``,
``speakerd-lab-*:bookworm``), so a later run reuses their layers.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKER = os.environ.get("DOCKER", "docker")
COMPOSE = os.environ.get("DOCKER_COMPOSE", "docker-compose")
OWNER_LABEL = "io.speakerd.test.owner"
IMAGE_TAG = os.environ.get("SPEAKERD_TEST_IMAGE", "speakerd:test")
LOCAL_BASE = "local/debian:bookworm"
PUBLIC_BASE = "debian:bookworm-slim"
# the capabilities the image's interpreter carries: NET_BIND_SERVICE(10), NET_ADMIN(12), NET_RAW(13)
DAEMON_CAPS = ("NET_BIND_SERVICE", "NET_ADMIN", "NET_RAW")
DAEMON_CAP_MASK = (1 << 10) | (1 << 12) | (1 << 13)


class EngineError(RuntimeError):
    pass


def run(argv: list[str], timeout: float = 120, check: bool = True, env: dict[str, str] | None = None,
        cwd: Path | None = None) -> subprocess.CompletedProcess:
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                       env=None if env is None else {**os.environ, **env}, cwd=cwd)
    if check and p.returncode != 0:
        raise EngineError(f"{' '.join(argv[:6])}{' ...' if len(argv) > 6 else ''} -> {p.returncode}:\n"
                          f"{(p.stderr or p.stdout)[-3000:]}")
    return p


def docker(*args: str, timeout: float = 120, check: bool = True) -> str:
    return run([DOCKER, *args], timeout=timeout, check=check).stdout


def engine_missing() -> str | None:
    """Why no container engine can be used here (None: docker answers)."""
    if shutil.which(DOCKER) is None:
        return f"no container engine: {DOCKER!r} not installed"
    try:
        p = run([DOCKER, "info", "--format", "{{.ServerVersion}}"], timeout=30, check=False)
    except subprocess.TimeoutExpired:
        return "no container engine: 'docker info' did not answer in 30 s"
    if p.returncode != 0:
        return f"no container engine: docker info: {(p.stderr or p.stdout).strip()[:300]}"
    return None


def compose_missing() -> str | None:
    if shutil.which(COMPOSE) is None:
        return f"{COMPOSE!r} not installed"
    return None


def image_exists(ref: str) -> bool:
    return run([DOCKER, "image", "inspect", ref], timeout=30, check=False).returncode == 0


def image_id(ref: str) -> str | None:
    p = run([DOCKER, "image", "inspect", "-f", "{{.Id}}", ref], timeout=30, check=False)
    return p.stdout.strip() if p.returncode == 0 else None


def image_size(ref: str) -> int:
    return int(docker("image", "inspect", "-f", "{{.Size}}", ref, timeout=30).strip())


def extra_ca_certs() -> str:
    """The CAs this machine adds to Debian's (a TLS-intercepting proxy's), for pip in the build stage."""
    d = Path("/usr/local/share/ca-certificates")
    # as the Makefile passes it ("$(cat FILES)": trailing newlines dropped), so both share the layer cache
    return "".join(p.read_text() for p in sorted(d.glob("*.crt"))).rstrip("\n") if d.is_dir() else ""


def build(tag: str, context: Path, base: str, dockerfile: Path | None = None, timeout: float = 600) -> float:
    """``docker build`` on ``base``; returns the wall time in seconds."""
    # --force-rm: a failed step's container is removed too, not left behind
    argv = [DOCKER, "build", "--force-rm", "--network", "host", "--build-arg", f"BASE_IMAGE={base}", "-t", tag]
    ca = extra_ca_certs()
    if ca:
        argv += ["--build-arg", f"EXTRA_CA_CERTS={ca}"]
    if dockerfile is not None:
        argv += ["-f", str(dockerfile)]
    t0 = time.monotonic()
    run([*argv, str(context)], timeout=timeout)
    return time.monotonic() - t0


def new_name(what: str) -> str:
    return f"sdt-{secrets.token_hex(3)}-{what}"


def owner_labels() -> list[str]:
    return ["--label", f"{OWNER_LABEL}={os.getpid()}"]


def inspect(ref: str) -> dict:
    return json.loads(docker("inspect", ref, timeout=30))[0]


def remove_container(ref: str) -> None:
    """Stop (SIGTERM, then the engine's SIGKILL after 5 s) and remove with its anonymous volumes."""
    docker("rm", "-f", "-v", ref, timeout=60, check=False)


def container_logs(ref: str, tail: int = 60) -> str:
    p = run([DOCKER, "logs", "--tail", str(tail), ref], timeout=30, check=False)
    return p.stdout + p.stderr


def proc_status(pid: int) -> dict[str, str]:
    """/proc/PID/status of a container's process, seen from the host."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        out[k] = v.strip()
    return out


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep() -> list[str]:
    """Remove containers and networks of test runs whose pytest process is gone."""
    removed = []
    for kind, ls in (("container", ["ps", "-a"]), ("network", ["network", "ls"])):
        out = docker(*ls, "--filter", f"label={OWNER_LABEL}",
                     "--format", f'{{{{.ID}}}} {{{{.Label "{OWNER_LABEL}"}}}}', timeout=30, check=False)
        for line in out.splitlines():
            ident, _, owner = line.partition(" ")
            if owner.isdigit() and int(owner) != os.getpid() and not _pid_alive(int(owner)):
                if kind == "container":
                    remove_container(ident)
                else:
                    docker("network", "rm", ident, timeout=30, check=False)
                removed.append(f"{kind} {ident}")
    return removed
