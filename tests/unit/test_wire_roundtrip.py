"""Property tests: encode -> decode -> encode is byte-identical, and decode inverts encode."""
from dataclasses import replace

from hypothesis import given, settings, strategies as st

from speakerd.wire.capabilities import Negotiated
from speakerd.wire.framing import decode, encode
from speakerd.wire.nlri import make_key, pack_nlri, unpack_nlri
from speakerd.wire.update import MpReach, MpUnreach, PathAttributes, Update

NEW = Negotiated(four_octet_as=True, extended_message=True)
OLD = Negotiated(four_octet_as=False, extended_message=True)

u32 = st.integers(0, 2**32 - 1)
asn = st.one_of(st.integers(1, 65535), st.integers(65536, 2**32 - 1))


def keys(afi, max_size=60):
    width = 32 if afi == 1 else 128
    return st.lists(st.builds(lambda a, p: make_key(afi, a, p), st.integers(0, 2**width - 1),
                              st.integers(0, width)), max_size=max_size)


def seg(types):
    return st.tuples(st.sampled_from(types), st.lists(asn, min_size=1, max_size=20).map(tuple))


def attributes(seg_types):
    known_unknown = st.lists(st.integers(33, 255), unique=True, max_size=3).map(sorted)
    return st.builds(
        PathAttributes,
        origin=st.sampled_from([None, 0, 1, 2]),
        as_path=st.one_of(st.none(), st.lists(seg(seg_types), max_size=4).map(tuple)),
        next_hop=st.one_of(st.none(), st.integers(1, 0xDFFFFFFF)),
        med=st.one_of(st.none(), u32),
        local_pref=st.one_of(st.none(), u32),
        atomic_aggregate=st.booleans(),
        aggregator=st.one_of(st.none(), st.tuples(asn, u32)),
        communities=st.lists(u32, max_size=8).map(tuple),
        extended_communities=st.lists(st.integers(0, 2**64 - 1), max_size=4).map(tuple),
        large_communities=st.lists(st.tuples(u32, u32, u32), max_size=4).map(tuple),
        originator_id=st.one_of(st.none(), u32),
        cluster_list=st.lists(u32, max_size=4).map(tuple),
        unknown=known_unknown.flatmap(lambda codes: st.tuples(
            *[st.binary(max_size=300).map(lambda v, c=c: (0xE0, c, v)) for c in codes]))
    ).map(_mandatory)


def _mandatory(a):
    # announcements need ORIGIN, AS_PATH and (IPv4) NEXT_HOP, or they are treat-as-withdraw
    return replace(a, origin=0 if a.origin is None else a.origin,
                   as_path=() if a.as_path is None else a.as_path,
                   next_hop=a.next_hop or 0x0A000001)


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_update_round_trip(data):
    four = data.draw(st.booleans())
    ctx = NEW if four else OLD
    attrs = data.draw(attributes([1, 2, 3, 4] if four else [1, 2]))
    fam = data.draw(st.sampled_from(["v4", "v6", "v6-withdraw"]))
    if fam == "v4":
        u = Update(withdrawn=data.draw(keys(1)), attrs=attrs, nlri=data.draw(keys(1)))
    elif fam == "v6":
        nh = data.draw(st.sampled_from([16, 32]).flatmap(lambda n: st.binary(min_size=n, max_size=n)))
        u = Update(attrs=attrs, mp_reach=MpReach(2, 1, nh, data.draw(keys(2, 30))))
    else:
        u = Update(mp_unreach=MpUnreach(2, 1, data.draw(keys(2, 30))))
    wire = encode(u, ctx)
    back = decode(wire, ctx)
    assert back.errors == ()
    assert encode(back, ctx) == wire
    assert back.withdrawn == u.withdrawn and back.nlri == u.nlri
    assert back.attrs == u.attrs
    assert back.mp_reach == u.mp_reach and back.mp_unreach == u.mp_unreach


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([1, 2]).flatmap(lambda afi: st.tuples(st.just(afi), keys(afi, 100))))
def test_nlri_round_trip(arg):
    afi, ks = arg
    packed = pack_nlri(afi, ks)
    assert unpack_nlri(afi, packed) == ks
    assert pack_nlri(afi, unpack_nlri(afi, packed)) == packed


@settings(max_examples=100, deadline=None)
@given(st.sampled_from([1, 2]).flatmap(lambda afi: st.tuples(
    st.just(afi), st.integers(0, 32 if afi == 1 else 128),
    st.lists(st.integers(0, 2**(32 if afi == 1 else 128) - 1), min_size=1, max_size=300))))
def test_uniform_fast_path_matches_generic(arg):
    from speakerd.wire import nlri
    afi, plen, addrs = arg
    ks = [make_key(afi, a, plen) for a in addrs]
    packed = pack_nlri(afi, ks)
    assert len(packed) == len(ks) * (1 + (plen + 7) // 8)
    assert unpack_nlri(afi, packed) == nlri._generic(afi, packed, 32 if afi == 1 else 128, 0) == ks
