"""Top-level pytest setup shared by unit and interop tests (kept small on purpose)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# `tests.interop.netlab` must import the same way from tests, benches and a bare `python`.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_report_header(config):
    return f"speakerd tests: CI={'yes' if IN_CI else 'no'} uid={os.geteuid()}"


# the suites that run real daemons in network namespaces: marked interop
NAMESPACE_SUITES = (ROOT / "tests" / "interop", ROOT / "tests" / "cluster")


def pytest_collection_modifyitems(config, items):
    for item in items:
        parents = Path(str(item.fspath)).resolve().parents
        if any(d in parents for d in NAMESPACE_SUITES):
            item.add_marker(pytest.mark.interop)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """``item.rep_setup/rep_call/rep_teardown``: fixtures keep a failed test's logs and labs."""
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)
