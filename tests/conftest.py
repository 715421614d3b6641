"""Top-level pytest setup shared by unit and interop tests (kept small on purpose)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

# `tests.interop.netlab` must import the same way from tests, benches and a bare `python`.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_report_header(config):
    return f"speakerd tests: CI={'yes' if IN_CI else 'no'} uid={os.geteuid()}"
