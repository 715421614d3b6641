"""Cluster-lab fixtures: one cluster per module, brought back to "every node up" before each test.

Outside CI the suite skips when the machine cannot run labs (not root, FRR
missing); with ``CI=true`` that is an error, as for tests/interop.  The
speakers run against the API emulator (``kube`` mode) when ``speakerd run
--kubernetes``, ``speakerd controller`` and the emulator exist, else from
files (``file`` mode); scenarios that need the API say so in their skip reason.
``SPEAKERD_CLUSTER_NODES`` changes N (default 5), ``SPEAKERD_CLUSTER_MODE``
(auto, file, kube) the mode; ``SPEAKERD_KEEP_LAB=1`` keeps the lab directory.
"""
from __future__ import annotations

import os

import pytest

from tests.cluster import harness
from tests.interop import netlab

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
NODES = int(os.environ.get("SPEAKERD_CLUSTER_NODES", "5"))


def missing() -> list[str]:
    out = netlab.missing_requirements(("frr",))
    if not (netlab.FRR_LIB / "bfdd").exists():
        out.append("frr bfdd not installed")
    return out


@pytest.fixture(scope="session")
def cluster_ready():
    miss = missing()
    if miss:
        msg = "cluster lab unavailable: " + ", ".join(miss)
        if IN_CI:
            pytest.fail(msg + " (CI=true: the install step is broken)", pytrace=False)
        pytest.skip(msg)
    reason = netlab.speakerd_run_missing()
    if reason:
        pytest.skip(reason)
    netlab.sweep()


@pytest.fixture(scope="session")
def mode() -> str:
    """``SPEAKERD_CLUSTER_MODE=file`` runs the speakers from files even when Kubernetes mode exists."""
    forced = os.environ.get("SPEAKERD_CLUSTER_MODE", "auto")
    if forced == "kube":
        reason = harness.kube_mode_missing()
        if reason:
            pytest.skip(reason)
    if forced in ("file", "kube"):
        return forced
    return "kube" if harness.kube_mode_missing() is None else "file"


@pytest.fixture(scope="module")
def running_cluster(cluster_ready, mode):
    keep = os.environ.get("SPEAKERD_KEEP_LAB") == "1"
    with harness.Cluster(NODES, mode, name=f"cluster-{mode}", keep_dir=keep) as c:
        c.setup()
        yield c


@pytest.fixture
def cluster(request, running_cluster):
    """The module's cluster with every speakerd running, no cut, sessions and BFD up on both ToRs."""
    c = running_cluster
    c.heal()
    yield c
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        print(f"---- cluster {c.lab.prefix}* ({c.lab.dir}) logs ----\n{c.logs()}")


@pytest.fixture
def kube_only(mode):
    reason = harness.kube_mode_missing() if mode == "kube" else "speakers run from files (SPEAKERD_CLUSTER_MODE=file)"
    if reason:
        pytest.skip(reason)
