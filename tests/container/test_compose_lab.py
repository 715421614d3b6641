"""lab/compose: `docker-compose up -d` and both routers (FRR, GoBGP containers) hold speakerd's routes."""
from __future__ import annotations

import json
import os
import re
import shutil
import time

import pytest

from tests.container import engine
from tests.container.conftest import MEASURED, unavailable
from tests.container.test_image import assert_runs_as_image_user, ctl
from tests.interop.netlab import LabError, wait_for

LAB = engine.ROOT / "lab" / "compose"
SPEAKERD_IP = "198.19.17.10"
PROJECT_PREFIX = "sdt-lab-"


def sweep_dead_projects() -> None:
    """Containers, network and volume of a lab project whose pytest process is gone."""
    out = engine.docker("ps", "-a", "--filter", "label=com.docker.compose.project",
                        "--format", '{{.ID}} {{.Label "com.docker.compose.project"}}', check=False)
    for line in out.splitlines():
        ident, _, project = line.partition(" ")
        pid = project[len(PROJECT_PREFIX):]
        if project.startswith(PROJECT_PREFIX) and pid.isdigit() and int(pid) != os.getpid():
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                engine.remove_container(ident)
                engine.docker("network", "rm", f"{project}_lab", check=False)
                engine.docker("volume", "rm", f"{project}_speakerd-state", check=False)


@pytest.fixture
def lab_env(image, base_image):
    """What `make lab-up` / `make lab-down` get: this run's images and its own compose project."""
    for reason in (engine.compose_missing(), None if shutil.which("make") else "make not installed"):
        if reason:
            unavailable(f"compose lab unavailable: {reason}")
    sweep_dead_projects()
    project = f"{PROJECT_PREFIX}{os.getpid()}"
    env = {"LAB_PROJECT": project, "COMPOSE_PROJECT_NAME": project, "BASE_IMAGE": base_image,
           "SPEAKERD_IMAGE": image}
    make_vars = [f"IMAGE={image}", f"BASE_IMAGE={base_image}"]
    try:
        yield env, make_vars
    finally:
        try:
            for svc in ("speakerd", "frr", "gobgp"):
                print(f"---- {svc} ----\n" + engine.run([engine.COMPOSE, "logs", "--tail", "30", svc], cwd=LAB,
                                                       env=env, check=False, timeout=60).stdout)
        finally:
            engine.run(["make", "-C", str(engine.ROOT), "lab-down", *make_vars], env=env, timeout=120)


def test_compose_lab_routers_hold_speakerds_routes(lab_env):
    env, make_vars = lab_env
    t0 = time.monotonic()
    # builds what is missing (cached layers otherwise), docker-compose up -d, waits for speakerd's UPDATEs
    up = engine.run(["make", "-C", str(engine.ROOT), "lab-up", *make_vars], env=env, timeout=600).stdout
    m = re.search(r"^lab: every route sent ([0-9.]+ s) after docker-compose up", up, re.M)
    assert m, up[-2000:]
    MEASURED["compose lab: docker-compose up -d to every route sent (lab.sh)"] = m.group(1)
    ids = {svc: engine.run([engine.COMPOSE, "ps", "-q", svc], cwd=LAB, env=env, timeout=60).stdout.strip()
           for svc in ("speakerd", "frr", "gobgp")}
    assert all(ids.values()), ids

    def exec_json(svc: str, *argv: str):
        r = engine.run([engine.DOCKER, "exec", ids[svc], *argv], timeout=30, check=False)
        if r.returncode != 0:
            raise LabError(f"{svc}: {' '.join(argv)}: {r.stderr.strip() or r.stdout.strip()}")
        return json.loads(r.stdout) if r.stdout.strip() else {}

    def frr_prefixes() -> set[str]:
        return set(exec_json("frr", "vtysh", "-c", "show bgp ipv4 unicast json").get("routes", {}))

    def gobgp_prefixes() -> set[str]:
        return set(exec_json("gobgp", "gobgp", "global", "rib", "-a", "ipv4", "-j"))

    def both_hold_the_plan():
        for svc, ident in ids.items():
            if not engine.inspect(ident)["State"]["Running"]:
                raise AssertionError(f"{svc} exited:\n{engine.container_logs(ident)}")
        planned = {r["prefix"] for r in ctl(ids["speakerd"], "show", "bgp", "ipv4")["routes"]}
        return planned and frr_prefixes() == planned and gobgp_prefixes() == planned and planned

    planned = wait_for(both_hold_the_plan, 90, "the FRR and GoBGP containers holding speakerd's routes")
    MEASURED["compose lab: make lab-up (router images built when not cached) to routes at both routers"] = \
        f"{time.monotonic() - t0:.1f} s"
    assert planned == {"203.0.113.1/32", "203.0.113.10/32", "203.0.113.14/32"}  # as `speakerd plan` assigns them

    # the routes' attributes as each router stored them
    frr_routes = exec_json("frr", "vtysh", "-c", "show bgp ipv4 unicast 203.0.113.10/32 json")
    [path] = frr_routes["paths"]
    assert path["aspath"]["string"] == "64500"
    assert path["nexthops"][0]["ip"] == SPEAKERD_IP
    assert path["community"]["string"] == "64500:100"
    gobgp_rib = exec_json("gobgp", "gobgp", "global", "rib", "-a", "ipv4", "-j")
    [gpath] = gobgp_rib["203.0.113.10/32"]
    attrs = {a["type"]: a for a in gpath["attrs"]}
    assert attrs[3]["nexthop"] == SPEAKERD_IP  # NEXT_HOP
    assert attrs[2]["as_paths"][0]["asns"] == [64500]  # AS_PATH

    summary = ctl(ids["speakerd"], "show", "bgp", "summary")
    assert {p["peer"]: p["state"] for p in summary["peers"]} == {"frr": "Established", "gobgp": "Established"}
    assert_runs_as_image_user(ids["speakerd"])
