"""Prefix keys, text and wire packing; the UPDATE builder."""
import random

import pytest

from speakerd.wire.builder import build_updates, build_withdrawals, end_of_rib
from speakerd.wire.capabilities import DEFAULT_CONTEXT, Negotiated
from speakerd.wire.framing import Framer, decode, decode_body
from speakerd.wire.nlri import key_to_str, make_key, pack_nlri, str_to_key, unpack_nlri
from speakerd.wire.update import PathAttributes

ATTRS = PathAttributes(origin=0, as_path=((2, (65001,)),), next_hop=0x0A000001, communities=(1,))
NH6 = bytes.fromhex("20010db8000000000000000000000001")


@pytest.mark.parametrize("text,afi", [("10.0.0.0/24", 1), ("192.0.2.7/32", 1), ("0.0.0.0/0", 1),
                                      ("2001:db8::/32", 2), ("::/0", 2), ("2001:db8::1/128", 2)])
def test_text_round_trip(text, afi):
    a, key = str_to_key(text)
    assert a == afi and key_to_str(afi, key) == text


def test_key_layout_and_host_bits():
    assert str_to_key("10.0.0.0/24") == (1, (0x0A000000 << 8) | 24)
    assert str_to_key("10.0.0.77/24")[1] == str_to_key("10.0.0.0/24")[1]
    assert str_to_key("192.0.2.1") == (1, (0xC0000201 << 8) | 32)
    assert make_key(1, 0x0A0000FF, 24) == (0x0A000000 << 8) | 24
    assert pack_nlri(1, [str_to_key("10.1.2.0/23")[1]]) == b"\x17\x0a\x01\x02"
    assert unpack_nlri(1, b"\x00\x19\x0a\x01\x02\xff") == [0, str_to_key("10.1.2.128/25")[1]]


def _roundtrip(msgs, afi, ctx=DEFAULT_CONTEXT):
    got, attrs = [], set()
    for t, b in Framer(ctx.max_message_len).feed(b"".join(msgs)):
        u = decode_body(t, b, ctx)
        assert not u.treat_as_withdraw and u.errors == ()
        if u.attrs is not None:
            attrs.add(id(u.attrs))
        if afi == 1:
            got += u.nlri or u.withdrawn
        else:
            got += u.mp_reach.nlri if u.mp_reach else u.mp_unreach.withdrawn
    return got, attrs


@pytest.mark.parametrize("afi,plens", [(1, [32]), (1, [24]), (1, [32, 24, 19, 0]), (2, [128]), (2, [64, 128, 7])])
@pytest.mark.parametrize("ctx", [DEFAULT_CONTEXT, Negotiated(four_octet_as=True, extended_message=True)],
                         ids=["4096", "65535"])
def test_builder_packs_and_respects_limit(afi, plens, ctx):
    rnd = random.Random(7)
    width = 32 if afi == 1 else 128
    keys = [make_key(afi, rnd.getrandbits(width), rnd.choice(plens)) for _ in range(5000)]
    msgs = build_updates(afi, keys, ATTRS, ctx, NH6)
    limit = ctx.max_message_len
    assert all(len(m) <= limit for m in msgs)
    # as few messages as fit: every message but the last is within one prefix of the limit
    assert all(len(m) > limit - 18 for m in msgs[:-1])
    got, attrs = _roundtrip(msgs, afi, ctx)
    assert got == keys and len(attrs) == 1
    wd = build_withdrawals(afi, keys, ctx)
    assert all(len(m) <= limit for m in wd) and all(len(m) > limit - 18 for m in wd[:-1])
    assert _roundtrip(wd, afi, ctx)[0] == keys


def test_builder_small_and_empty():
    assert build_updates(1, [], ATTRS) == []
    assert build_withdrawals(2, []) == []
    (m,) = build_updates(1, [str_to_key("10.0.0.1/32")[1]], ATTRS)
    assert decode(m).nlri == [str_to_key("10.0.0.1/32")[1]]
    with pytest.raises(ValueError):
        build_updates(1, [1], PathAttributes(origin=0, as_path=()))
    with pytest.raises(ValueError):
        build_updates(2, [1], ATTRS, DEFAULT_CONTEXT, b"\0" * 4)


def test_builder_ipv6_link_local_next_hop():
    nh = NH6 + bytes.fromhex("fe800000000000000000000000000001")
    (m,) = build_updates(2, [str_to_key("2001:db8::/48")[1]], ATTRS, DEFAULT_CONTEXT, nh)
    assert decode(m).mp_reach.next_hop == nh


def test_end_of_rib_markers():
    assert end_of_rib(1) == b"\xff" * 16 + b"\x00\x17\x02\x00\x00\x00\x00"
    assert decode(end_of_rib(1)).end_of_rib == (1, 1)
    assert decode(end_of_rib(2)).end_of_rib == (2, 1)
    assert end_of_rib(2)[19:] == b"\x00\x00\x00\x06\x80\x0f\x03\x00\x02\x01"
