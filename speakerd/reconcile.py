"""What a config reload changes, decided without touching anything.

:func:`diff_peers` compares the peers selected for this node before and after
a reload and sorts them into added, removed, reset (their own session
parameters changed) and kept.  Only session parameters reset a session:
a changed BFD profile, node selector or advertisement never does.
:func:`plan_peer_changes` adds the BGP identifier (:func:`choose_router_id`:
a derived one is sticky; a new one resets every session) and returns the
:class:`PeerChanges` that ``Speaker._apply`` carries out in order.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .config.model import Config, Peer, selectors_match

# Fields of a BGPPeer that, when changed, do not touch the BGP session.
# disable_mp: deprecated, no effect on the session (Peer.families ignores it)
_NON_SESSION_FIELDS = frozenset({"bfd_profile", "node_selectors", "source", "disable_mp"})


def session_params(peer: Peer) -> tuple:
    """The fields of ``peer`` whose change requires a new session."""
    return tuple(getattr(peer, f.name) for f in dataclasses.fields(peer)
                 if f.name not in _NON_SESSION_FIELDS)


def node_labels(config: Config, node: str) -> dict[str, str]:
    """The labels of this node: from its Node object, else only the hostname label."""
    obj = config.nodes.get(node)
    labels = obj.label_dict() if obj else {}
    labels.setdefault("kubernetes.io/hostname", node)
    return labels


def peers_for_node(config: Config, node: str) -> dict[str, Peer]:
    labels = node_labels(config, node)
    return {name: p for name, p in config.peers.items() if selectors_match(p.node_selectors, labels)}


@dataclass(frozen=True, slots=True)
class PeerDiff:
    added: tuple[str, ...]
    removed: tuple[str, ...]
    reset: tuple[str, ...]  # session parameters changed: tear down and start again
    kept: tuple[str, ...]
    bfd_changed: tuple[str, ...]  # kept or reset peers whose BFD profile (or its contents) changed


def diff_peers(old: Config | None, new: Config, node: str) -> PeerDiff:
    before = peers_for_node(old, node) if old else {}
    after = peers_for_node(new, node)
    added = tuple(sorted(after.keys() - before.keys()))
    removed = tuple(sorted(before.keys() - after.keys()))
    reset, kept, bfd_changed = [], [], []
    for name in sorted(after.keys() & before.keys()):
        a, b = before[name], after[name]
        (kept if session_params(a) == session_params(b) else reset).append(name)
        old_prof = old.bfd_profiles.get(a.bfd_profile) if (old and a.bfd_profile) else None
        new_prof = new.bfd_profiles.get(b.bfd_profile) if b.bfd_profile else None
        if old_prof != new_prof:
            bfd_changed.append(name)
    return PeerDiff(added, removed, tuple(reset), tuple(kept), tuple(bfd_changed))


def choose_router_id(derived: tuple[int, str], current: tuple[int, str], initial: bool) -> tuple[int, str]:
    """The BGP identifier to use after a (re)load: ``(value, how it was chosen)``.

    A configured routerID always wins.  A derived identifier stays as it is
    while routerID is unset: adding or removing a peer must not change it
    (that would reset every session).
    """
    value, source = derived
    if not initial and source != "configured" and current[1] not in ("", "configured"):
        return current
    return value, source


@dataclass(frozen=True, slots=True)
class PeerChanges:
    """What applying a configuration does to the running sessions, in order."""
    router_id: int
    router_id_source: str
    remove: tuple[str, ...]  # Cease 6/3, forget
    reset: tuple[str, ...]  # Cease 6/6, then started again (in ``start``)
    start: tuple[str, ...]  # new sessions: added and reset peers
    keep: tuple[str, ...]  # untouched sessions (only their routes change)
    added: tuple[str, ...]
    bfd_changed: tuple[str, ...]  # kept peers whose BFD profile (or its contents) changed


def plan_peer_changes(old: Config | None, new: Config, node: str, derived: tuple[int, str],
                      current: tuple[int, str], initial: bool) -> PeerChanges:
    """Decide, without touching anything, what a (re)load does to each session.

    ``derived`` is the identifier this configuration would give
    (speakerd.speaker.derive_router_id), ``current`` the one in use.  A new
    identifier is a session parameter of every session: all kept sessions
    are reset too.
    """
    router_id, source = choose_router_id(derived, current, initial)
    diff = diff_peers(old, new, node)
    reset = set(diff.reset)
    if router_id != current[0] and not initial:
        reset |= set(diff.kept)
    reset_t = tuple(sorted(reset))
    return PeerChanges(
        router_id=router_id, router_id_source=source, remove=diff.removed, reset=reset_t,
        start=tuple(sorted(set(diff.added) | reset)),
        keep=tuple(n for n in diff.kept if n not in reset), added=diff.added,
        bfd_changed=tuple(n for n in diff.bfd_changed if n not in reset))
