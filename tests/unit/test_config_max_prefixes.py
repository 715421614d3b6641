"""The speakerd extension annotation speakerd.io/max-prefixes on a BGPPeer."""
from __future__ import annotations

import pytest

from test_config_extension_annotations import PEER
from test_config_validation import one_error, write

from speakerd.config import load_config
from speakerd.fsm import SessionSettings
from speakerd.fsm.settings import DEFAULT_MAX_PREFIXES


def annotated(value=None):
    ann = "" if value is None else f"\n  annotations: {{speakerd.io/max-prefixes: {value!r}}}"
    return PEER.format(ann=ann)


def settings(tmp_path, value=None):
    peer = load_config([write(tmp_path, annotated(value))]).peers["p1"]
    return SessionSettings.from_peer(peer, router_id=1)


def test_default_is_generous(tmp_path):
    assert settings(tmp_path).max_prefixes == DEFAULT_MAX_PREFIXES


def test_annotation_sets_the_limit(tmp_path):
    assert settings(tmp_path, "500").max_prefixes == 500


@pytest.mark.parametrize("value", ["0", "-3", "many", "1e6"])
def test_bad_values_are_errors(tmp_path, value):
    path, err = one_error(tmp_path, annotated(value))
    assert err.startswith(f"{path}: BGPPeer/p1: metadata.annotations[speakerd.io/max-prefixes]: "), err
    assert "positive integer" in err
