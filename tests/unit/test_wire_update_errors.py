"""RFC 4271 §6.3 and RFC 7606 §7, row by row, with crafted UPDATE bodies."""
import struct

import pytest

from speakerd.wire.attributes import ATTRIBUTES, ErrorAction
from speakerd.wire.capabilities import DEFAULT_CONTEXT, Negotiated
from speakerd.wire.constants import AS_TRANS
from speakerd.wire.errors import UpdateError
from speakerd.wire.nlri import str_to_key
from speakerd.wire.update import Update

OLD = Negotiated(four_octet_as=False)  # a 2-octet-AS peer


def attr(flags, code, value):
    if flags & 0x10:
        return struct.pack("!BBH", flags, code, len(value)) + value
    return struct.pack("!BBB", flags, code, len(value)) + value


ORIGIN = attr(0x40, 1, b"\x00")
AS_PATH = attr(0x40, 2, b"\x02\x01" + struct.pack("!I", 65001))
NEXT_HOP = attr(0x40, 3, bytes([10, 0, 0, 1]))
BASE = ORIGIN + AS_PATH + NEXT_HOP
NLRI = b"\x18\x0a\x01\x02"  # 10.1.2.0/24
KEY = str_to_key("10.1.2.0/24")[1]


def body(attrs=b"", nlri=NLRI, withdrawn=b""):
    return struct.pack("!H", len(withdrawn)) + withdrawn + struct.pack("!H", len(attrs)) + attrs + nlri


def dec(b, ctx=DEFAULT_CONTEXT):
    return Update.decode_body(b, ctx)


def reset(b, ctx=DEFAULT_CONTEXT):
    with pytest.raises(UpdateError) as ei:
        dec(b, ctx)
    return ei.value.code, ei.value.subcode, ei.value.data


def test_valid_update():
    u = dec(body(BASE))
    assert u.nlri == [KEY] and not u.treat_as_withdraw and u.errors == ()
    assert u.attrs.origin == 0 and u.attrs.as_path == ((2, (65001,)),) and u.attrs.next_hop == 0x0A000001


# ---- RFC 4271 §6.3: Malformed Attribute List (session reset) -----------------

def test_withdrawn_length_overruns():
    assert reset(b"\x00\x10\x00\x00") == (3, 1, b"")


def test_total_attribute_length_overruns():
    assert reset(b"\x00\x00\x00\x20" + BASE) == (3, 1, b"")


def test_body_too_short():
    assert reset(b"\x00\x00\x00") == (3, 1, b"")


# ---- RFC 7606 §4: attribute overrunning the list -> treat-as-withdraw ---------

def test_attribute_overrun_is_treat_as_withdraw_and_nlri_still_located():
    bad = BASE + b"\x40\x05\x09\x00"  # LOCAL_PREF claims 9 bytes, 1 present
    u = dec(body(bad))
    assert u.treat_as_withdraw and u.nlri == [KEY]
    assert any((e.subcode, e.data) == (1, b"") for e in u.errors)


def test_truncated_attribute_header_is_treat_as_withdraw():
    u = dec(body(BASE + b"\x40\x05"))
    assert u.treat_as_withdraw and u.nlri == [KEY]


def test_mp_reach_overrun_resets():
    assert reset(body(BASE + b"\x80\x0e\x30\x00\x02", nlri=b"")) == (3, 1, b"")


# ---- duplicates, RFC 7606 §3(g) ---------------------------------------------

def test_duplicate_attribute_first_kept():
    u = dec(body(BASE + attr(0x40, 1, b"\x02")))
    assert not u.treat_as_withdraw and u.attrs.origin == 0
    assert [(e.code, e.subcode) for e in u.errors] == [(3, 1)]


def test_duplicate_mp_reach_resets():
    mp = attr(0x80, 14, b"\x00\x02\x01\x10" + bytes(16) + b"\x00")
    assert reset(body(ORIGIN + AS_PATH + mp + mp, nlri=b"")) == (3, 1, b"")


# ---- unrecognised / unknown attributes --------------------------------------

def test_unrecognized_well_known_resets_with_attribute_as_data():
    a = attr(0x40, 200, b"zz")
    assert reset(body(BASE + a)) == (3, 2, a)


def test_unknown_optional_transitive_passed_with_partial():
    u = dec(body(BASE + attr(0xC0, 200, b"zz")))
    assert u.attrs.unknown == ((0xE0, 200, b"zz"),)


def test_unknown_optional_non_transitive_dropped():
    u = dec(body(BASE + attr(0x80, 200, b"zz")))
    assert u.attrs.unknown == () and u.errors == ()


# ---- missing well-known, RFC 7606 §3(d) --------------------------------------

@pytest.mark.parametrize("drop,code", [(ORIGIN, 1), (AS_PATH, 2), (NEXT_HOP, 3)])
def test_missing_well_known_is_treat_as_withdraw(drop, code):
    u = dec(body(BASE.replace(drop, b"")))
    assert u.treat_as_withdraw
    assert [(e.code, e.subcode, e.data) for e in u.errors] == [(3, 3, bytes((code,)))]


def test_missing_next_hop_fine_without_ipv4_nlri():
    u = dec(body(ORIGIN + AS_PATH, nlri=b""))
    assert not u.treat_as_withdraw and u.errors == ()


def test_mp_reach_needs_origin_and_as_path_but_not_next_hop():
    mp = attr(0x80, 14, b"\x00\x02\x01\x10" + bytes(16) + b"\x00" + b"\x20\x20\x01\x0d\xb8")
    u = dec(body(ORIGIN + AS_PATH + mp, nlri=b""))
    assert not u.treat_as_withdraw and u.mp_reach.nlri == [str_to_key("2001:db8::/32")[1]]
    u = dec(body(ORIGIN + mp, nlri=b""))
    assert u.treat_as_withdraw and [e.data for e in u.errors] == [b"\x02"]


# ---- per-attribute rows of RFC 7606 §7 ---------------------------------------
# (attribute bytes, expected subcode, data is the attribute?, expected action)
ROWS = [
    ("origin-length", attr(0x40, 1, b"\x00\x00"), 5, True, "withdraw"),
    ("origin-value", attr(0x40, 1, b"\x03"), 6, True, "withdraw"),
    ("origin-flags", attr(0xC0, 1, b"\x00"), 4, True, "withdraw"),
    ("as-path-seg-type", attr(0x40, 2, b"\x05\x01" + bytes(4)), 11, False, "withdraw"),
    ("as-path-zero-seg", attr(0x40, 2, b"\x02\x00"), 11, False, "withdraw"),
    ("as-path-overrun", attr(0x40, 2, b"\x02\x02" + bytes(4)), 11, False, "withdraw"),
    ("as-path-trailing", attr(0x40, 2, b"\x02\x01" + bytes(4) + b"\x02"), 11, False, "withdraw"),
    ("next-hop-length", attr(0x40, 3, bytes(5)), 5, True, "withdraw"),
    ("next-hop-zero", attr(0x40, 3, bytes(4)), 8, True, "withdraw"),
    ("next-hop-multicast", attr(0x40, 3, bytes([224, 0, 0, 1])), 8, True, "withdraw"),
    ("med-length", attr(0x80, 4, bytes(3)), 5, True, "withdraw"),
    ("med-flags", attr(0x40, 4, bytes(4)), 4, True, "withdraw"),
    ("local-pref-length", attr(0x40, 5, bytes(2)), 5, True, "withdraw"),
    ("atomic-aggregate-length", attr(0x40, 6, b"\x01"), 5, True, "discard"),
    ("atomic-aggregate-flags", attr(0xC0, 6, b""), 4, True, "discard"),
    ("aggregator-length", attr(0xC0, 7, bytes(7)), 5, True, "discard"),
    ("communities-length", attr(0xC0, 8, bytes(5)), 9, True, "withdraw"),
    ("communities-empty", attr(0xC0, 8, b""), 9, True, "withdraw"),
    ("originator-id-length", attr(0x80, 9, bytes(3)), 5, True, "withdraw"),
    ("cluster-list-length", attr(0x80, 10, bytes(6)), 9, True, "withdraw"),
    ("ext-communities-length", attr(0xC0, 16, bytes(7)), 9, True, "withdraw"),
    ("large-communities-length", attr(0xC0, 32, bytes(11)), 9, True, "withdraw"),
    ("as4-aggregator-length", attr(0xC0, 18, bytes(6)), 9, True, "discard"),
    ("as4-path-malformed", attr(0xC0, 17, b"\x02\x02" + bytes(4)), 9, True, "discard"),
]


@pytest.mark.parametrize("name,a,subcode,data_is_attr,action", ROWS, ids=[r[0] for r in ROWS])
def test_attribute_rows(name, a, subcode, data_is_attr, action):
    code = a[1]
    base = b"".join(x for x in (ORIGIN, AS_PATH, NEXT_HOP) if x[1] != code)
    u = dec(body(base + a))
    errs = [(e.code, e.subcode, e.data) for e in u.errors]
    assert (3, subcode, a if data_is_attr else b"") in errs
    if action == "withdraw":
        assert u.treat_as_withdraw
    else:
        assert not u.treat_as_withdraw
        field = ATTRIBUTES[code].field
        if field in ("as4_path", "as4_aggregator"):
            assert u.attrs.aggregator is None
        else:
            assert getattr(u.attrs, field) in (None, (), False)


def test_table_actions_match_rfc7606():
    want = {1: ErrorAction.WITHDRAW, 2: ErrorAction.WITHDRAW, 3: ErrorAction.WITHDRAW, 4: ErrorAction.WITHDRAW,
            5: ErrorAction.WITHDRAW, 6: ErrorAction.DISCARD, 7: ErrorAction.DISCARD, 8: ErrorAction.WITHDRAW,
            9: ErrorAction.WITHDRAW, 10: ErrorAction.WITHDRAW, 14: ErrorAction.RESET, 15: ErrorAction.RESET,
            16: ErrorAction.WITHDRAW, 17: ErrorAction.DISCARD, 18: ErrorAction.DISCARD, 32: ErrorAction.WITHDRAW}
    assert {c: s.action for c, s in ATTRIBUTES.items()} == want


def test_mp_reach_flags_error_resets():
    a = attr(0x40, 14, b"\x00\x02\x01\x10" + bytes(16) + b"\x00")
    assert reset(body(ORIGIN + AS_PATH + a, nlri=b"")) == (3, 4, a)


def test_mp_reach_bad_next_hop_length_resets():
    a = attr(0x80, 14, b"\x00\x02\x01\x08" + bytes(8) + b"\x00")
    assert reset(body(ORIGIN + AS_PATH + a, nlri=b"")) == (3, 9, a)


def test_mp_unreach_too_short_resets():
    a = attr(0x80, 15, b"\x00\x02")
    assert reset(body(a, nlri=b"")) == (3, 9, a)


# ---- NLRI: RFC 7606 §5.3 -> session reset with Invalid Network Field ---------

@pytest.mark.parametrize("nlri", [b"\x21\x0a\x00\x00\x00\x01", b"\x18\x0a\x00", b"\x20"])
def test_invalid_ipv4_nlri_resets(nlri):
    assert reset(body(BASE, nlri=nlri)) == (3, 10, b"")


def test_invalid_withdrawn_resets():
    assert reset(body(b"", nlri=b"", withdrawn=b"\x40\x0a")) == (3, 10, b"")


def test_invalid_ipv6_mp_nlri_resets():
    a = attr(0x80, 14, b"\x00\x02\x01\x10" + bytes(16) + b"\x00" + b"\x81" + bytes(17))
    assert reset(body(ORIGIN + AS_PATH + a, nlri=b"")) == (3, 10, b"")


def test_host_bits_are_cleared():
    u = dec(body(BASE, nlri=b"\x17\x0a\x01\x03"))  # 10.1.3.0/23 -> 10.1.2.0/23
    assert u.nlri == [str_to_key("10.1.2.0/23")[1]]


# ---- extended length, AS4 (RFC 6793), add-path, interning --------------------

def test_extended_length_flag_accepted_and_not_reencoded():
    a = attr(0x50, 1, b"\x00")
    u = dec(body(a + AS_PATH + NEXT_HOP))
    assert u.attrs.origin == 0
    from speakerd.wire.update import encode_path
    assert encode_path(u.attrs, DEFAULT_CONTEXT).startswith(ORIGIN)


def test_as4_path_merged_for_old_peer():
    p2 = attr(0x40, 2, b"\x02\x03" + struct.pack("!HHH", 65001, AS_TRANS, AS_TRANS))
    p4 = attr(0xC0, 17, b"\x02\x02" + struct.pack("!II", 4200000000, 4200000001))
    nh = NEXT_HOP
    u = dec(body(ORIGIN + p2 + nh + p4), OLD)
    assert u.attrs.as_path == ((2, (65001,)), (2, (4200000000, 4200000001)))
    assert u.attrs.as_path_asns() == [65001, 4200000000, 4200000001]


def test_as4_path_longer_than_as_path_ignored():
    p2 = attr(0x40, 2, b"\x02\x01" + struct.pack("!H", AS_TRANS))
    p4 = attr(0xC0, 17, b"\x02\x02" + struct.pack("!II", 4200000000, 4200000001))
    u = dec(body(ORIGIN + p2 + NEXT_HOP + p4), OLD)
    assert u.attrs.as_path == ((2, (AS_TRANS,)),)


def test_as4_aggregator_used_only_with_as_trans():
    p2 = attr(0x40, 2, b"\x02\x01" + struct.pack("!H", AS_TRANS))
    p4 = attr(0xC0, 17, b"\x02\x01" + struct.pack("!I", 4200000000))
    agg = attr(0xC0, 7, struct.pack("!HI", AS_TRANS, 1))
    agg4 = attr(0xC0, 18, struct.pack("!II", 4200000000, 1))
    u = dec(body(ORIGIN + p2 + NEXT_HOP + agg + p4 + agg4), OLD)
    assert u.attrs.aggregator == (4200000000, 1) and u.attrs.as_path == ((2, (4200000000,)),)
    agg_old = attr(0xC0, 7, struct.pack("!HI", 65002, 1))
    u = dec(body(ORIGIN + p2 + NEXT_HOP + agg_old + p4 + agg4), OLD)
    assert u.attrs.aggregator == (65002, 1) and u.attrs.as_path == ((2, (AS_TRANS,)),)


def test_as4_attributes_from_new_speaker_dropped():
    p4 = attr(0xC0, 17, b"\x02\x01" + struct.pack("!I", 4200000000))
    u = dec(body(BASE + p4))
    assert u.attrs.as_path == ((2, (65001,)),)


def test_add_path_receive():
    ctx = Negotiated(four_octet_as=True, families=frozenset({(1, 1), (2, 1)}),
                     add_path_receive=frozenset({(1, 1), (2, 1)}))
    nlri = b"\x00\x00\x00\x01" + NLRI + b"\x00\x00\x00\x02" + NLRI + b"\x00\x00\x00\x03\x20\x0a\x00\x00\x01"
    u = dec(body(BASE, nlri=nlri), ctx)
    assert u.nlri == [KEY, KEY, str_to_key("10.0.0.1/32")[1]]
    mp = attr(0x80, 14, b"\x00\x02\x01\x10" + bytes(16) + b"\x00" + b"\x00\x00\x00\x07\x20\x20\x01\x0d\xb8")
    u = dec(body(ORIGIN + AS_PATH + mp, nlri=b""), ctx)
    assert u.mp_reach.nlri == [str_to_key("2001:db8::/32")[1]]
    with pytest.raises(UpdateError):
        dec(body(BASE, nlri=b"\x00\x00\x01"), ctx)


def test_attribute_sets_are_interned():
    a = dec(body(BASE)).attrs
    b = dec(body(BASE, nlri=b"\x20\x0a\x00\x00\x09")).attrs
    assert a is b
    mp1 = attr(0x80, 14, b"\x00\x02\x01\x10" + bytes(16) + b"\x00" + b"\x20\x20\x01\x0d\xb8")
    mp2 = attr(0x80, 14, b"\x00\x02\x01\x10" + bytes(16) + b"\x00" + b"\x20\x20\x01\x0d\xb9")
    x = dec(body(mp1 + ORIGIN + AS_PATH, nlri=b"")).attrs
    y = dec(body(ORIGIN + AS_PATH + mp2, nlri=b"")).attrs
    assert x is y
    # 2-octet and 4-octet sessions never share a cache entry
    assert dec(body(ORIGIN + AS_PATH), OLD).attrs != x


def test_end_of_rib():
    assert dec(b"\x00\x00\x00\x00").end_of_rib == (1, 1)
    mpu = attr(0x80, 15, b"\x00\x02\x01")
    assert dec(body(mpu, nlri=b"")).end_of_rib == (2, 1)
    assert dec(body(BASE)).end_of_rib is None
    assert dec(body(attr(0x80, 15, b"\x00\x02\x01\x00"), nlri=b"")).end_of_rib is None  # withdraws ::/0
    assert Update.eor(2, 1).end_of_rib == (2, 1) and Update.eor().end_of_rib == (1, 1)
