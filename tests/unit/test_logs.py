"""speakerd.logs: text/JSON formats, peer context, redaction, message trace."""
from __future__ import annotations

import io
import json
import logging

import pytest

from speakerd import logs
from speakerd.wire.messages import KEEPALIVE, Notification, Open
from speakerd.wire.constants import CeaseSubcode


@pytest.fixture
def capture():
    """setup() into a StringIO; restores the root logger afterwards."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    buf = io.StringIO()
    redactor = logs.Redactor()

    def install(fmt="text", level="info"):
        logs.setup(level=level, fmt=fmt, stream=buf, redactor=redactor)
        return buf

    install.redactor = redactor
    yield install
    for h in list(root.handlers):
        if getattr(h, "_speakerd", False):
            root.removeHandler(h)
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def lines(buf):
    return buf.getvalue().splitlines()


def test_text_format_with_peer_context_and_extras(capture):
    buf = capture("text")
    log = logging.getLogger("speakerd.peer")
    log.info("session %s", "established", extra={"peer": "rtr1", "hold": 90, "why": "two words"})
    log.debug("not shown at info")
    [line] = lines(buf)
    ts, level, name, *rest = line.split(" ")
    assert ts.endswith("Z") and "T" in ts
    assert (level, name) == ("INFO", "speakerd.peer")
    assert " ".join(rest) == 'peer=rtr1 session established hold=90 why="two words"'


def test_text_is_one_line_even_with_newlines_and_tracebacks(capture):
    buf = capture("text")
    log = logging.getLogger("speakerd.x")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        log.exception("failed\nbadly")
    [line] = lines(buf)
    assert "failed\\nbadly" in line
    assert "exc=" in line and "RuntimeError: boom" in line


def test_json_format(capture):
    buf = capture("json", level="debug")
    log = logging.getLogger("speakerd.peer")
    log.debug("hold timer expired", extra={"peer": "rtr1", "address": "192.0.2.1", "hold": 3})
    logging.getLogger("speakerd.config").warning("no peers")
    first, second = (json.loads(l) for l in lines(buf))
    assert first["level"] == "debug" and first["logger"] == "speakerd.peer"
    assert first["msg"] == "hold timer expired"
    assert first["peer"] == "rtr1" and first["address"] == "192.0.2.1" and first["hold"] == 3
    assert first["ts"].endswith("Z")
    assert "peer" not in second and second["level"] == "warning"


def test_level_filtering_and_bad_values(capture):
    buf = capture("text", level="warning")
    logging.getLogger("speakerd.x").info("hidden")
    logging.getLogger("speakerd.x").error("shown")
    assert [l.split(" ", 3)[3] for l in lines(buf)] == ["shown"]
    with pytest.raises(ValueError):
        logs.setup(level="loud", stream=io.StringIO())
    with pytest.raises(ValueError):
        logs.setup(fmt="xml", stream=io.StringIO())


def test_setup_twice_keeps_one_handler(capture):
    capture("text")
    capture("json")
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_speakerd", False)]
    assert len(ours) == 1


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_redaction_in_message_args_extras_and_exceptions(capture, fmt):
    buf = capture(fmt)
    capture.redactor.add("s3cr3t-md5")
    capture.redactor.add(b"bytes-key")
    log = logging.getLogger("speakerd.peer")
    log.info("password is %s", "s3cr3t-md5")
    log.info("literal s3cr3t-md5 in the message")
    log.info("extra", extra={"cfg": {"password": "s3cr3t-md5"}, "key": "bytes-key"})
    try:
        raise ValueError("bad key s3cr3t-md5")
    except ValueError:
        log.exception("oops")
    out = buf.getvalue()
    assert "s3cr3t-md5" not in out and "bytes-key" not in out
    assert out.count("***") >= 5
    capture.redactor.discard("s3cr3t-md5")
    log.info("now visible: %s", "s3cr3t-md5")
    assert "now visible: s3cr3t-md5" in lines(buf)[-1]


def test_redaction_masks_longest_secret_first():
    r = logs.Redactor()
    r.add("abc")
    r.add("abcdef")
    assert r.scrub("x abcdef y abc") == "x *** y ***"
    r.add("")  # ignored
    assert len(r) == 2
    r.clear()
    assert r.scrub("abc") == "abc"


def test_global_redactor_is_installed_by_default():
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    buf = io.StringIO()
    try:
        logs.setup(stream=buf)
        logs.redact.add("global-secret")
        logging.getLogger("speakerd.t").warning("k=%s", "global-secret")
        assert "global-secret" not in buf.getvalue() and "k=***" in buf.getvalue()
    finally:
        logs.redact.discard("global-secret")
        for h in list(root.handlers):
            if getattr(h, "_speakerd", False):
                root.removeHandler(h)
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


def test_format_message():
    assert logs.format_message("received", KEEPALIVE) == "< KEEPALIVE"
    line = logs.format_message("sent", Open.build(65001, 90, 0x0A000001))
    assert line.startswith("> OPEN as 65001 hold 90 id 10.0.0.1")
    n = Notification.cease(CeaseSubcode.ADMINISTRATIVE_SHUTDOWN, "maintenance")
    assert logs.format_message("received", n).startswith("< NOTIFICATION Cease/Administrative Shutdown")
    assert "maintenance" in logs.format_message("received", n)
    with pytest.raises(KeyError):
        logs.format_message("sideways", KEEPALIVE)


def test_tracer_selection_and_output(capture):
    buf = capture("json", level="error")  # trace shows regardless of level
    t = logs.Tracer(["rtr1", "192.0.2.9"])
    assert t and t.enabled("rtr1") and t.enabled("other", "192.0.2.9") and not t.enabled("rtr2")
    assert not logs.Tracer([]) and not logs.Tracer([]).enabled("rtr1")
    assert logs.Tracer(["all"]).enabled("anything")
    t.message("rtr1", "sent", KEEPALIVE)
    [rec] = (json.loads(l) for l in lines(buf))
    assert rec["logger"] == "speakerd.trace" and rec["peer"] == "rtr1"
    assert rec["msg"] == "> KEEPALIVE" and rec["direction"] == "sent"
    assert rec["bgp"] == {"type": "KEEPALIVE"}


def test_tracer_text_hides_structured_payload(capture):
    buf = capture("text")
    logs.Tracer(["rtr1"]).message("rtr1", "received", KEEPALIVE)
    [line] = lines(buf)
    assert line.split(" ", 1)[1] == "INFO speakerd.trace peer=rtr1 < KEEPALIVE direction=received"


def test_add_arguments():
    import argparse
    p = argparse.ArgumentParser()
    logs.add_arguments(p)
    a = p.parse_args(["--log-format", "json", "--log-level", "debug", "--trace", "a", "--trace", "b"])
    assert (a.log_format, a.log_level, a.trace) == ("json", "debug", ["a", "b"])
