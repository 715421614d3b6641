"""Framing: RFC 4271 §6.1 header checks and stream reassembly."""
import pytest
from hypothesis import given, settings, strategies as st

from speakerd.wire.capabilities import DEFAULT_CONTEXT, Negotiated
from speakerd.wire.constants import MARKER, MessageType
from speakerd.wire.errors import BGPError, HeaderError
from speakerd.wire.framing import Framer, decode, decode_stream, encode, frame
from speakerd.wire.messages import KEEPALIVE, Notification, Open, RouteRefresh


def hdr(length, mtype, marker=MARKER):
    return marker + length.to_bytes(2, "big") + bytes((mtype,))


STREAM = b"".join([
    encode(Open.build(65001, 90, 0x01020304)),
    encode(KEEPALIVE),
    frame(MessageType.UPDATE, b"\0\0\0\0"),
    encode(RouteRefresh(1, 1, 1)),
    encode(Notification.cease(2, "bye")),
])


def test_one_byte_at_a_time():
    f = Framer()
    got = []
    for i in range(len(STREAM)):
        got += [(t, bytes(b)) for t, b in f.feed(STREAM[i:i + 1])]
    assert [t for t, _ in got] == [1, 4, 2, 5, 3]
    assert f.pending == 0
    assert b"".join(frame(t, b) for t, b in got) == STREAM


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, len(STREAM)), min_size=1, max_size=20))
def test_arbitrary_chunk_boundaries(cuts):
    points = sorted(set(c for c in cuts if c < len(STREAM)))
    chunks = [STREAM[a:b] for a, b in zip([0] + points, points + [len(STREAM)])]
    f = Framer()
    got = []
    for c in chunks:
        got += [(t, bytes(b)) for t, b in f.feed(c)]
    assert b"".join(frame(t, b) for t, b in got) == STREAM


def test_partial_message_kept_until_complete():
    f = Framer()
    assert f.feed(STREAM[:30]) == []
    assert f.pending == 30
    assert [t for t, _ in f.feed(STREAM[30:])] == [1, 4, 2, 5, 3]


@pytest.mark.parametrize("data,subcode,edata", [
    (hdr(19, 4, b"\xfe" + MARKER[1:]), 1, b""),  # Connection Not Synchronized
    (hdr(18, 4), 2, b"\x00\x12"),  # length below the header
    (hdr(4097, 2), 2, b"\x10\x01"),  # above 4096 without extended messages
    (hdr(20, 4) + b"\0", 2, b"\x00\x14"),  # KEEPALIVE must be exactly 19
    (hdr(22, 2) + b"\0" * 3, 2, b"\x00\x16"),  # UPDATE minimum 23
    (hdr(28, 1) + b"\0" * 9, 2, b"\x00\x1c"),  # OPEN minimum 29
    (hdr(20, 3) + b"\0", 2, b"\x00\x14"),  # NOTIFICATION minimum 21
    (hdr(19, 6), 3, b"\x06"),  # Bad Message Type, data = the type
    (hdr(19, 0), 3, b"\x00"),
])
def test_header_errors(data, subcode, edata):
    with pytest.raises(HeaderError) as ei:
        Framer().feed(data + b"\0" * 64)
    assert (ei.value.code, ei.value.subcode, ei.value.data) == (1, subcode, edata)
    n = ei.value.notification()
    assert (n.code, n.subcode, n.data) == (1, subcode, edata)


def test_extended_message_length():
    body = b"\0\0\0\0" + b"\0" * 5000
    big = frame(MessageType.UPDATE, body)
    with pytest.raises(HeaderError) as ei:
        Framer(4096).feed(big)
    assert ei.value.data == len(big).to_bytes(2, "big")
    assert [(t, len(b)) for t, b in Framer(65535).feed(big)] == [(2, len(body))]
    # OPEN and KEEPALIVE stay within 4096 even with extended messages (RFC 8654 §4)
    with pytest.raises(HeaderError):
        Framer(65535).feed(hdr(5000, 1) + b"\0" * 4981)


def test_messages_before_an_error_are_not_returned_but_error_raised():
    f = Framer()
    with pytest.raises(HeaderError):
        f.feed(encode(KEEPALIVE) + hdr(19, 9))


def test_decode_whole_and_stream():
    assert decode(encode(KEEPALIVE)) == KEEPALIVE
    with pytest.raises(HeaderError):
        decode(encode(KEEPALIVE) + b"\0")
    msgs = decode_stream(STREAM)
    assert [m.type for m in msgs] == [1, 4, 2, 5, 3]


def test_encode_refuses_oversize_update():
    from speakerd.wire.update import Update
    big = Update(nlri=[(i << 8) | 32 for i in range(900)])
    with pytest.raises(ValueError):
        encode(big, DEFAULT_CONTEXT)
    assert len(encode(big, Negotiated(extended_message=True))) > 4096


def test_large_chunks_do_not_copy_per_message():
    # 2000 messages in one chunk: bodies are views into one buffer
    stream = encode(KEEPALIVE) * 2000
    out = Framer().feed(stream)
    assert len(out) == 2000
    assert all(b.obj is out[0][1].obj for _, b in out)


def test_errors_are_bgp_errors():
    assert issubclass(HeaderError, BGPError)
