"""BFD control packet codec: round trip and every RFC 5880 §6.8.6 drop."""
import struct

import pytest
from hypothesis import given, strategies as st

from speakerd.bfd.packet import (BfdDropped, ControlPacket, Diag, DropReason, BfdState, decode)


def pkt(**kw) -> ControlPacket:
    base = dict(state=BfdState.UP, my_discr=0x01020304, your_discr=0x0A0B0C0D,
                desired_min_tx_us=50_000, required_min_rx_us=60_000, detect_mult=3)
    base.update(kw)
    return ControlPacket(**base)


def test_encode_layout_known_bytes():
    raw = pkt(diag=Diag.NEIGHBOR_SIGNALED_DOWN, poll=True, required_min_echo_rx_us=7).encode()
    assert raw == bytes([0x23, 0xE0, 3, 24, 1, 2, 3, 4, 0x0A, 0x0B, 0x0C, 0x0D]) + struct.pack(
        "!III", 50_000, 60_000, 7)


@given(state=st.sampled_from(list(BfdState)), diag=st.integers(0, 31),
       my=st.integers(1, 2**32 - 1), your=st.integers(1, 2**32 - 1),
       tx=st.integers(0, 2**32 - 1), rx=st.integers(0, 2**32 - 1), echo=st.integers(0, 2**32 - 1),
       mult=st.integers(1, 255), flags=st.sampled_from([(False, False), (True, False), (False, True)]),
       c=st.booleans(), d=st.booleans())
def test_round_trip(state, diag, my, your, tx, rx, echo, mult, flags, c, d):
    p = pkt(state=state, diag=Diag.of(diag), my_discr=my, your_discr=your, desired_min_tx_us=tx,
            required_min_rx_us=rx, required_min_echo_rx_us=echo, detect_mult=mult,
            poll=flags[0], final=flags[1], cpi=c, demand=d)
    assert decode(p.encode()) == p


def test_trailing_bytes_beyond_length_are_ignored():
    raw = pkt().encode()
    assert decode(raw + b"\x00" * 8) == pkt()


@given(st.binary(max_size=64))
def test_garbage_never_crashes(data):
    try:
        decode(data)
    except BfdDropped:
        pass


def _mutate(raw: bytes, offset: int, value: int) -> bytes:
    b = bytearray(raw)
    b[offset] = value
    return bytes(b)


def drop_reason(data: bytes) -> DropReason:
    with pytest.raises(BfdDropped) as e:
        decode(data)
    return e.value.reason


def test_short_datagram():
    assert drop_reason(pkt().encode()[:23]) is DropReason.TOO_SHORT


@pytest.mark.parametrize("version", [0, 2, 7])
def test_bad_version(version):
    raw = pkt().encode()
    assert drop_reason(_mutate(raw, 0, (version << 5) | (raw[0] & 0x1F))) is DropReason.BAD_VERSION


def test_length_field_below_24():
    assert drop_reason(_mutate(pkt().encode(), 3, 23)) is DropReason.TOO_SHORT


def test_length_field_beyond_datagram():
    assert drop_reason(_mutate(pkt().encode(), 3, 28)) is DropReason.BAD_LENGTH


def test_zero_detect_mult():
    assert drop_reason(_mutate(pkt().encode(), 2, 0)) is DropReason.ZERO_DETECT_MULT


def test_multipoint_bit():
    raw = pkt().encode()
    assert drop_reason(_mutate(raw, 1, raw[1] | 0x01)) is DropReason.MULTIPOINT


def test_zero_my_discriminator():
    assert drop_reason(pkt(my_discr=0).encode()) is DropReason.ZERO_MY_DISCR


@pytest.mark.parametrize("state", [BfdState.INIT, BfdState.UP])
def test_zero_your_discriminator_when_not_down(state):
    assert drop_reason(pkt(state=state, your_discr=0).encode()) is DropReason.ZERO_YOUR_DISCR


@pytest.mark.parametrize("state", [BfdState.DOWN, BfdState.ADMIN_DOWN])
def test_zero_your_discriminator_allowed_when_down(state):
    assert decode(pkt(state=state, your_discr=0).encode()).your_discr == 0


def test_auth_bit_without_auth_configured():
    raw = pkt().encode() + b"\x01\x05\x00\x00\x00"  # simple password section
    raw = _mutate(_mutate(raw, 3, 29), 1, raw[1] | 0x04)
    assert drop_reason(raw) is DropReason.AUTH_NOT_CONFIGURED


def test_poll_and_final_together():
    assert drop_reason(pkt(poll=True, final=True).encode()) is DropReason.POLL_AND_FINAL


def test_unknown_diag_kept_as_int():
    raw = _mutate(pkt().encode(), 0, (1 << 5) | 30)
    assert decode(raw).diag == 30
