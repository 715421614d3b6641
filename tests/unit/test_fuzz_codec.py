"""Bounded, deterministic fuzzing of framing + decode (the long run is bench/fuzz_long.py).

Start from valid messages produced by speakerd's own encoder, mutate them
(bit flips, byte sets, truncation, extension, splicing, wrong lengths), and
decode them in four negotiated contexts (4-octet AS, 2-octet AS, extended
message, add-path): nothing but a BGPError with an RFC-defined
(code, subcode) may come out, whether the bytes are decoded whole or fed to
the Framer at once or in small chunks.
"""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.robustness.mutate import (CONTEXTS, OPS, VALID_ERRORS, OracleFailure, apply,
                                     check_decode, check_stream, seeds)
from speakerd.wire.errors import BGPError
from speakerd.wire.framing import encode
from speakerd.wire.messages import Notification

SEEDS = {name: seeds(ctx) for name, ctx in CONTEXTS.items()}
MUTATION = st.tuples(st.sampled_from(OPS), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF))
FUZZ = settings(max_examples=200, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("name", sorted(CONTEXTS))
def test_every_seed_decodes_cleanly(name):
    """The seeds are valid: a mutation is what makes an input bad."""
    for raw in SEEDS[name]:
        msg = check_decode(raw, CONTEXTS[name])
        assert not isinstance(msg, BGPError), (name, raw.hex(), msg)
        assert not getattr(msg, "treat_as_withdraw", False)


@pytest.mark.parametrize("name", sorted(CONTEXTS))
@FUZZ
@given(data=st.data())
def test_mutated_messages_only_raise_valid_bgp_errors(name, data):
    pool = SEEDS[name]
    seed = data.draw(st.sampled_from(pool), label="seed")
    muts = data.draw(st.lists(MUTATION, min_size=1, max_size=6), label="mutations")
    if data.draw(st.booleans(), label="fix header length"):
        muts.append(("fixlen", 0, 0))
    raw = apply(seed, muts, pool)
    ctx = CONTEXTS[name]
    check_decode(raw, ctx)
    check_stream(raw, ctx, data.draw(st.sampled_from([0, 1, 5, 19]), label="chunk"))


@FUZZ
@given(raw=st.binary(max_size=200), name=st.sampled_from(sorted(CONTEXTS)))
def test_random_bytes_behind_a_valid_header(raw, name):
    """A correct marker, length and type in front of random bodies."""
    ctx = CONTEXTS[name]
    for mtype in (1, 2, 3, 4, 5):
        framed = b"\xff" * 16 + (19 + len(raw)).to_bytes(2, "big") + bytes((mtype,)) + raw
        check_decode(framed, ctx)
        check_stream(framed + framed, ctx)


def test_oracle_catches_an_undefined_code():
    """The oracle itself is not vacuous: an undefined pair and a foreign exception fail it."""
    assert (3, 12) not in VALID_ERRORS and (3, 11) in VALID_ERRORS
    from tests.robustness import mutate
    with pytest.raises(OracleFailure):
        mutate._check_error(BGPError(3, 12), "test", b"")
    assert encode(Notification(3, 11))  # a valid one passes through encode


def test_many_messages_in_one_stream():
    """Every seed back to back in one read, and one byte per read."""
    for name, ctx in CONTEXTS.items():
        stream = b"".join(SEEDS[name])
        check_stream(stream, ctx, 0)
        check_stream(stream, ctx, 1)
