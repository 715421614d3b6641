"""Container tests: the speakerd image built once per run, the engine policy, measured figures.

Without a container engine these tests skip with the reason; with ``CI=true``
the same condition is an error, so a broken install step (docker.io, dockerd
not started) cannot turn them into a row of skips.

The base image: ``$SPEAKERD_BASE_IMAGE`` if set; else ``local/debian:bookworm``
(lab/make-base-image.sh) or ``debian:bookworm-slim`` if the engine has one;
else, as root with debootstrap installed, lab/make-base-image.sh makes
``local/debian:bookworm`` (about 45 s, once: it is kept).
"""
from __future__ import annotations

import os
import time

import pytest

from tests.container import engine

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# figures the terminal summary prints (build time, image size, compose time to routes)
MEASURED: dict[str, str] = {}


def pytest_configure(config):
    config.addinivalue_line("markers", "container: needs a container engine (docker) and builds images")


def pytest_collection_modifyitems(config, items):
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here + os.sep):
            item.add_marker(pytest.mark.container)


def pytest_terminal_summary(terminalreporter):
    if MEASURED:
        terminalreporter.write_sep("-", "container figures")
        for k, v in MEASURED.items():
            terminalreporter.write_line(f"{k}: {v}")


def unavailable(msg: str):
    if IN_CI:
        pytest.fail(msg + " (CI=true: the container install step is broken)", pytrace=False)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def docker_ready():
    reason = engine.engine_missing()
    if reason:
        unavailable(reason)
    removed = engine.sweep()
    if removed:
        print("removed leftovers of earlier container test runs:", " ".join(removed))


@pytest.fixture(scope="session")
def base_image(docker_ready) -> str:
    wanted = os.environ.get("SPEAKERD_BASE_IMAGE")
    if wanted:
        if not engine.image_exists(wanted):
            unavailable(f"base image {wanted} (SPEAKERD_BASE_IMAGE) is not in the engine")
        return wanted
    for ref in (engine.LOCAL_BASE, engine.PUBLIC_BASE):
        if engine.image_exists(ref):
            return ref
    if os.geteuid() != 0 or not os.path.exists("/usr/sbin/debootstrap"):
        unavailable(f"no bookworm base image ({engine.LOCAL_BASE} or {engine.PUBLIC_BASE}) and no root "
                    f"debootstrap to make one: run lab/make-base-image.sh")
    t0 = time.monotonic()
    engine.run(["bash", str(engine.ROOT / "lab" / "make-base-image.sh"), engine.LOCAL_BASE], timeout=600)
    MEASURED["base image (debootstrap + import)"] = f"{time.monotonic() - t0:.1f} s"
    return engine.LOCAL_BASE


@pytest.fixture(scope="session")
def image(base_image) -> str:
    """The repository's Dockerfile built on the base, tagged speakerd:test (kept: its layers are reused)."""
    before = engine.image_id(engine.IMAGE_TAG)
    seconds = engine.build(engine.IMAGE_TAG, engine.ROOT, base_image)
    if before and before != engine.image_id(engine.IMAGE_TAG):
        # the previous speakerd:test, now untagged: not kept (its build stage stays as cache)
        engine.docker("rmi", before, check=False)
    size = engine.image_size(engine.IMAGE_TAG)
    base_size = engine.image_size(base_image)
    MEASURED["speakerd image build"] = f"{seconds:.1f} s (base {base_image}; layers cached by earlier builds are reused)"
    MEASURED["speakerd image size"] = f"{size / 1e6:.1f} MB ({(size - base_size) / 1e6:.1f} MB above the base)"
    return engine.IMAGE_TAG
