"""The reload decisions, pure: which sessions stop, restart, start or stay."""
from __future__ import annotations

import dataclasses
from types import SimpleNamespace

from speakerd.config.model import Peer
from speakerd.reconcile import choose_router_id, plan_peer_changes

A = Peer(name="a", local_asn=64512, peer_asn=64513, peer_address="192.0.2.1")
B = Peer(name="b", local_asn=64512, peer_asn=64513, peer_address="192.0.2.2")
C = Peer(name="c", local_asn=64512, peer_asn=64513, peer_address="192.0.2.3")


def config(*peers, profiles=None):
    return SimpleNamespace(peers={p.name: p for p in peers}, nodes={}, bfd_profiles=profiles or {})


def test_a_derived_router_id_sticks_while_router_id_is_unset():
    assert choose_router_id((2, "source address"), (1, "route to x"), initial=False) == (1, "route to x")
    assert choose_router_id((2, "source address"), (0, ""), initial=True) == (2, "source address")
    # a configured one always wins, and replacing a configured one is allowed
    assert choose_router_id((9, "configured"), (1, "route to x"), initial=False) == (9, "configured")
    assert choose_router_id((2, "source address"), (9, "configured"), initial=False) == (2, "source address")


def test_added_removed_changed_and_kept_peers():
    old = config(A, B, C)
    new = config(dataclasses.replace(A, hold_time=30), B, Peer(name="d", local_asn=1, peer_asn=2,
                                                               peer_address="192.0.2.4"))
    ch = plan_peer_changes(old, new, "n1", (7, "configured"), (7, "configured"), initial=False)
    assert ch.remove == ("c",)
    assert ch.reset == ("a",)
    assert ch.start == ("a", "d") and ch.added == ("d",)
    assert ch.keep == ("b",)


def test_a_new_router_id_resets_every_kept_session():
    old = config(A, B)
    ch = plan_peer_changes(old, config(A, B), "n1", (8, "configured"), (7, "configured"), initial=False)
    assert ch.router_id == 8 and ch.reset == ("a", "b") and ch.start == ("a", "b") and ch.keep == ()


def test_a_bfd_profile_change_touches_only_bfd_of_kept_sessions():
    p1, p2 = SimpleNamespace(rx=300), SimpleNamespace(rx=100)
    a, b = dataclasses.replace(A, bfd_profile="fast"), dataclasses.replace(B, bfd_profile="fast")
    b_changed = dataclasses.replace(b, hold_time=30)
    ch = plan_peer_changes(config(a, b, profiles={"fast": p1}), config(a, b_changed, profiles={"fast": p2}),
                           "n1", (7, "configured"), (7, "configured"), initial=False)
    assert ch.keep == ("a",) and ch.bfd_changed == ("a",)  # b is restarted, its BFD with it
    assert ch.reset == ("b",)


def test_initial_load_starts_everything():
    ch = plan_peer_changes(None, config(A, B), "n1", (5, "hash of the node name"), (0, ""), initial=True)
    assert ch.start == ("a", "b") and ch.reset == () and ch.remove == () and ch.router_id == 5
