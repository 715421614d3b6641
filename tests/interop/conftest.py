"""Interop fixtures: a fresh :class:`netlab.Lab` per test, leftover sweeping, skip/fail policy.

Outside CI the interop tests skip when the machine cannot run them (not root,
FRR/GoBGP/nftables missing).  With ``CI=true`` the same condition is an error,
so a broken install step cannot turn the interop suite into a row of skips.
"""
from __future__ import annotations

import os

import pytest

from tests.interop import netlab

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def lab_ready():
    """The machine can run labs; namespaces of crashed earlier runs are removed first."""
    missing = netlab.missing_requirements(("frr", "gobgp"))
    if missing:
        msg = "interop lab unavailable: " + ", ".join(missing)
        if IN_CI:
            pytest.fail(msg + " (CI=true: the install step is broken)", pytrace=False)
        pytest.skip(msg)
    removed = netlab.sweep()
    if removed:
        print(f"removed leftover lab namespaces: {' '.join(removed)}")


@pytest.fixture
def lab(request, lab_ready):
    """A Lab named after the test; its logs are printed when the test fails.

    ``SPEAKERD_KEEP_LAB=1`` keeps the lab directory (configs, logs) for inspection.
    """
    keep = os.environ.get("SPEAKERD_KEEP_LAB") == "1"
    with netlab.Lab(request.node.name, keep_dir=keep) as lab:
        yield lab
        rep = getattr(request.node, "rep_call", None)
        if rep is None or rep.failed:
            print(f"---- lab {lab.prefix}* ({lab.dir}) logs ----\n{lab.logs()}")


@pytest.fixture(scope="session")
def speakerd_ready(lab_ready):
    """`speakerd run` exists with the options the lab uses; skip with the reason otherwise."""
    reason = netlab.speakerd_run_missing()
    if reason:
        pytest.skip(reason)
