"""Link-bandwidth extended community (draft-ietf-idr-link-bandwidth), its damping, and the
ready local endpoint counts it is computed from."""
from __future__ import annotations

import struct

import pytest
from hypothesis import given, strategies as st

from speakerd.config.model import Endpoint, EndpointSlice
from speakerd.policy.announce import EndpointIndex
from speakerd.policy.linkbw import (AS_TRANS, BYTES_PER_ENDPOINT, Damper, decode_link_bandwidth, endpoints_bandwidth,
                                    link_bandwidth)
from speakerd.policy.types import RouteAttrs  # noqa: F401  (the type a weighted route will carry)
from speakerd.wire.attributes import PathAttributes
from speakerd.wire.capabilities import DEFAULT_CONTEXT
from speakerd.wire.framing import decode
from speakerd.wire import builder
from speakerd.wire.nlri import str_to_key


def test_wire_form_is_the_drafts_non_transitive_as_specific_community():
    ec = link_bandwidth(64501, 125_000_000.0)
    raw = ec.to_bytes(8, "big")
    assert raw[:2] == b"\x40\x04"  # type 0x40 non-transitive 2-octet AS specific, subtype 0x04
    assert raw[2:4] == (64501).to_bytes(2, "big")
    assert struct.unpack("!f", raw[4:])[0] == 125_000_000.0  # IEEE-754 float, bytes per second
    assert decode_link_bandwidth(ec) == (64501, 125_000_000.0)


def test_four_octet_as_uses_as_trans_and_other_communities_are_not_bandwidth():
    assert decode_link_bandwidth(link_bandwidth(4_200_000_000, 1.0)) == (AS_TRANS, 1.0)
    route_target = int.from_bytes(b"\x00\x02" + (64501).to_bytes(2, "big") + (7).to_bytes(4, "big"), "big")
    assert decode_link_bandwidth(route_target) is None
    with pytest.raises(ValueError):
        link_bandwidth(64501, -1)


@given(st.integers(0, 64))
def test_bandwidths_are_proportional_to_endpoints(n):
    one = decode_link_bandwidth(endpoints_bandwidth(64501, 1))[1]
    assert decode_link_bandwidth(endpoints_bandwidth(64501, n))[1] == pytest.approx(n * one, rel=1e-6)


def test_community_survives_the_codec_in_an_update():
    key = str_to_key("198.51.100.10/32")[1]
    pa = PathAttributes(origin=0, as_path=((2, (64501,)),), next_hop=0xC6120202,
                        extended_communities=(endpoints_bandwidth(64501, 6),))
    msgs = builder.build_updates(1, [key], pa, DEFAULT_CONTEXT, None)
    msg = next(iter([msgs] if isinstance(msgs, (bytes, bytearray)) else msgs))
    got = decode(bytes(msg), DEFAULT_CONTEXT)
    (ec,) = got.attrs.extended_communities
    assert decode_link_bandwidth(ec) == (64501, 6 * BYTES_PER_ENDPOINT)


# ------------------------------------------------------------------------- damping


def test_damper_sends_the_first_change_and_holds_the_rest_for_the_interval():
    d = Damper(1.0)
    assert d.offer(10.0, "p", 1) is True
    assert d.offer(10.2, "p", 2) is False
    assert d.offer(10.5, "p", 3) is False  # the newest held value replaces the older one
    assert d.next_deadline() == 11.0
    assert d.due(10.9) == {}
    assert d.due(11.0) == {"p": 3}
    assert d.next_deadline() is None
    assert d.offer(11.4, "p", 4) is False  # 0.4 s after the last one went out
    assert d.due(12.0) == {"p": 4}
    assert d.offer(13.5, "p", 5) is True  # quiet for longer than the interval: at once


def test_damper_keys_are_independent_and_forget_clears_a_withdrawn_route():
    d = Damper(1.0)
    assert d.offer(0.0, "a", 1) and d.offer(0.1, "b", 1)
    assert not d.offer(0.5, "a", 2)
    d.forget("a")
    assert d.next_deadline() is None and d.offer(0.6, "a", 3) is True


@given(st.lists(st.tuples(st.floats(0, 0.5), st.integers()), min_size=1, max_size=50))
def test_damper_never_sends_one_key_twice_within_the_interval(steps):
    d, now, sent = Damper(1.0), 0.0, []
    last_value = None
    for dt, value in steps:
        now += dt
        for k, v in d.due(now).items():
            sent.append((now, v))
        if d.offer(now, "p", value):
            sent.append((now, value))
        last_value = value
    while d.next_deadline() is not None:
        now = d.next_deadline()
        sent.extend((now, v) for v in d.due(now).values())
    times = [t for t, _ in sent]
    assert all(b - a >= 1.0 - 1e-9 for a, b in zip(times, times[1:]))
    assert sent[-1][1] == last_value  # the newest value always goes out in the end


# ------------------------------------------------------------- ready local endpoints


def _slice(name: str, *nodes_ready: tuple[str, bool]) -> EndpointSlice:
    return EndpointSlice("default", name, "web", tuple(Endpoint(n, ready=r, serving=r) for n, r in nodes_ready))


def test_ready_local_counts_follow_slices_per_node():
    idx = EndpointIndex()
    idx.apply(_slice("web-a", ("n1", True), ("n1", True), ("n2", True), ("n1", False)))
    assert idx.ready_local("default/web", "n1") == 2 and idx.ready_local("default/web", "n2") == 1
    idx.apply(_slice("web-b", ("n1", True)))
    assert idx.ready_local("default/web", "n1") == 3
    idx.apply(_slice("web-a", ("n2", True)))  # a scale-down on n1
    assert idx.ready_local("default/web", "n1") == 1
    idx.remove("default", "web-b")
    assert idx.ready_local("default/web", "n1") == 0 and idx.ready_local("default/other", "n1") == 0
