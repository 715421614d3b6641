"""The object store: validated objects keyed by (kind, namespace, name), fed by events.

Input: single-object events ``Event(type, obj, source)`` — ``type`` ADDED, MODIFIED or
DELETED, ``obj`` the raw Kubernetes object dict (as the API server or kubectl gives it),
``source`` a label for messages (a file path, "api").  File mode (``sources.files``)
and the API reflector both produce them; validation happens here, one validator per
kind (``store.validate``), so both sources share it.

:meth:`Store.apply` takes a batch of events and returns :class:`Changes`: which
Services (old and new value), EndpointSlices and Nodes changed, and whether the
MetalLB configuration changed.  Rules:

* a Service, EndpointSlice or Node that does not validate is reported (its issues
  stay in :attr:`Store.issues` until the object changes or goes) and is absent from
  the store; every other object is unaffected.  A Service naming a pool that does not
  exist is held back until the pool exists;
* the MetalLB objects (BGPPeer, IPAddressPool, BGPAdvertisement, BFDProfile, Community,
  and the Secrets a BGPPeer names) are validated together after each batch that
  touches one of them; any error refuses the whole new MetalLB configuration and the
  running one stays (:attr:`Store.metallb_errors` says why), as MetalLB does;
* a MODIFIED that validates to what is stored changes nothing.

Pure: no I/O, no clock, no asyncio.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Iterator

from ..config.build import MetalLB, build_metallb
from ..config.common import Issues
from ..config.model import Config, ConfigIssue, EndpointSlice, Node, Service, Source
from . import validate

ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"
METALLB = frozenset(validate.METALLB_KINDS) | {"Secret"}
Key = tuple[str, str, str]  # (kind, namespace, name)


@dataclass(frozen=True, slots=True)
class Event:
    type: str  # ADDED | MODIFIED | DELETED
    obj: dict  # the raw object (for DELETED, at least kind, apiVersion and metadata)
    source: str = "api"  # where it came from, for messages: a file path, "api"


@dataclass(slots=True)
class Changes:
    """What one :meth:`Store.apply` changed."""
    services: dict[str, tuple[Service | None, Service | None]] = field(default_factory=dict)  # key -> (old, new)
    endpoint_slices: dict[str, tuple[EndpointSlice | None, EndpointSlice | None]] = field(default_factory=dict)
    nodes: dict[str, tuple[Node | None, Node | None]] = field(default_factory=dict)
    metallb: bool = False  # a new MetalLB configuration was accepted
    metallb_rejected: bool = False  # a new one was refused (the running one stays)
    unidentified: list[ConfigIssue] = field(default_factory=list)  # objects without a usable kind/name
    # Services whose ready endpoints on this node changed (set by the announce rules; the
    # planner re-plans them for endpoint-weighted ECMP)
    reweighed: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.services or self.endpoint_slices or self.nodes or self.metallb)

    def merge(self, later: "Changes") -> None:
        for mine, theirs in ((self.services, later.services), (self.endpoint_slices, later.endpoint_slices),
                             (self.nodes, later.nodes)):
            for k, (old, new) in theirs.items():
                mine[k] = (mine[k][0], new) if k in mine else (old, new)
        self.metallb |= later.metallb
        self.reweighed |= later.reweighed
        self.unidentified.extend(later.unidentified)
        self.metallb_rejected = later.metallb_rejected or (self.metallb_rejected and not later.metallb)


class ServiceView(Mapping):
    """``"namespace/name" -> Service`` of the Services planned (read-only, live).

    ``rows`` gives the compact rows the allocator reads (built on demand)."""

    __slots__ = ("_services",)

    def __init__(self, services: dict[str, Service]) -> None:
        self._services = services

    def __getitem__(self, key: str) -> Service:
        return self._services[key]

    def __contains__(self, key: object) -> bool:
        return key in self._services

    def __iter__(self) -> Iterator[str]:
        return iter(self._services)

    def __len__(self) -> int:
        return len(self._services)

    def __repr__(self) -> str:
        return f"ServiceView({len(self._services)} services)"


class Store:
    """Validated objects, kept by (kind, namespace, name); see the module text."""

    def __init__(self, lb_class: str | None = None, uids: bool = True) -> None:
        self.lb_class = lb_class
        self.uids = uids  # keep each Service's metadata.uid (False: Service.uid is "")
        self.services: dict[str, Service] = {}  # planned: valid, and every pool they name exists
        self.held: dict[str, Service] = {}  # valid, but naming a pool that does not exist
        self.endpoint_slices: dict[str, EndpointSlice] = {}
        self.nodes: dict[str, Node] = {}
        self.metallb = MetalLB()  # the running (last accepted) MetalLB configuration
        self.metallb_notes: tuple[ConfigIssue, ...] = ()  # its warnings and info notes
        self.metallb_errors: tuple[ConfigIssue, ...] = ()  # why the latest one was refused (empty: accepted)
        self._metallb_objs: dict[Key, tuple[str, Source, Any, dict]] = {}  # (kind, src, spec or None, doc)
        self._metallb_issues: dict[Key, list[ConfigIssue]] = {}  # per-object issues of the MetalLB kinds
        self.issues: dict[Key, list[ConfigIssue]] = {}  # current issues of Services, slices, Nodes
        self._origin: dict[Key, str] = {}  # source of the non-Service objects (for duplicates)
        self._metallb_seen = False
        self._metallb_dirty = False  # MetalLB objects changed since the last settle
        self._pending: dict[tuple[str, str, str], Event] = {}  # a duplicate from another source, by its key

    # ------------------------------------------------------------------ input
    def apply(self, events: Iterable[Event], settle: bool = True) -> Changes:
        """Apply ``events``. With ``settle=False`` the MetalLB objects are only recorded: a
        source that delivers one read in several batches calls :meth:`settle` after the last,
        so the MetalLB configuration is validated (and taken or refused) as a whole — never a
        half-read one (an object moved between files is gone from one batch before it is back
        in the next)."""
        ch = Changes()
        for ev in events:
            self._metallb_dirty |= self._one(ev, ch)
        if settle:
            self._settle(ch)
        return ch

    def settle(self) -> Changes:
        """Validate the MetalLB objects recorded since the last settle as one configuration."""
        ch = Changes()
        self._settle(ch)
        return ch

    def _settle(self, ch: Changes) -> None:
        if self._metallb_dirty or not self._metallb_seen:
            self._metallb_seen = True
            self._metallb_dirty = False
            self._rebuild_metallb(ch)

    def _one(self, ev: Event, ch: Changes) -> bool:
        """Apply one event; True when it touched a MetalLB object."""
        issues = Issues()
        ident = validate.identify(ev.obj, ev.source, issues)
        if ident is None:
            ch.unidentified.extend(issues.items)  # no key to keep them under: the source keeps them
            return False
        kind, ns, name = ident
        if kind == "Service":
            ns = ns or "default"
        key: Key = (kind, ns, name)
        pending = self._pending.get(key)
        if pending is not None and pending.source == ev.source:  # the duplicate itself changed or went
            del self._pending[key]
            self.issues.pop((kind + "@" + ev.source, ns, name), None)
            self._metallb_issues.pop((kind + "@" + ev.source, ns, name), None)
            if ev.type == DELETED:
                return kind in METALLB
        owner = self._owner(key)
        if owner is not None and owner != ev.source and ev.type != DELETED:
            self._pending[key] = ev  # taken when the first one goes
        touched = self._dispatch(ev, kind, key, issues, ch)
        if ev.type == DELETED and owner == ev.source:
            promoted = self._pending.pop(key, None)
            if promoted is not None:  # the object moved from one source to another
                self.issues.pop((kind + "@" + promoted.source, ns, name), None)
                self._metallb_issues.pop((kind + "@" + promoted.source, ns, name), None)
                touched |= self._dispatch(promoted, kind, key, Issues(), ch)
        return touched

    def _owner(self, key: Key) -> str | None:
        kind, ns, name = key
        if kind == "Service":
            cur = self.services.get(f"{ns}/{name}") or self.held.get(f"{ns}/{name}")
            return cur.origin if cur is not None else self._origin.get(key)
        if kind in METALLB:
            prev = self._metallb_objs.get(key)
            return prev[1].file if prev is not None else None
        return self._origin.get(key)

    def _dispatch(self, ev: Event, kind: str, key: Key, issues: Issues, ch: Changes) -> bool:
        ns, name = key[1], key[2]
        if kind == "Service":
            return self._service(ev, ns, name, ch)
        if kind in METALLB:
            return self._metallb_object(ev, kind, key, issues)
        if kind == "EndpointSlice":
            return self._simple(ev, key, f"{ns or 'default'}/{name}", self.endpoint_slices, ch.endpoint_slices,
                                lambda o, i: validate.endpoint_slice(o, ev.source, i), issues)
        return self._simple(ev, key, name, self.nodes, ch.nodes, lambda o, i: validate.node(o, ev.source, i), issues)

    def _service(self, ev: Event, ns: str, name: str, ch: Changes) -> bool:
        skey = f"{ns or 'default'}/{name}"
        key: Key = ("Service", ns or "default", name)
        old = self.services.get(skey)
        cur = old if old is not None else self.held.get(skey)
        if cur is not None and cur.origin != ev.source:
            if ev.type == DELETED:
                return False  # a duplicate elsewhere went away
            issues = Issues()
            issues.error(Source(ev.source, "Service", skey, ns), "metadata.name",
                         f"duplicate Service {skey} (first defined in {cur.origin})")
            self.issues[("Service@" + ev.source, ns, name)] = issues.items
            return False
        self.issues.pop(("Service@" + ev.source, ns, name), None)
        new = None
        if ev.type != DELETED:
            issues = Issues()
            new = validate.service(ev.obj, ev.source, self.lb_class, issues, self.uids)
            if issues.items:
                self.issues[key] = issues.items
            else:
                self.issues.pop(key, None)
        else:
            self.issues.pop(key, None)
        self.held.pop(skey, None)
        if new is None and ev.type != DELETED:
            pool = validate.pool_name(ev.obj)
            if pool is not None and pool not in self.metallb.pools:  # reported with the other issues
                self.issues.setdefault(key, []).append(self._unknown_pool(
                    Service(ns or "default", name, (), pool=pool, origin=ev.source), ev.obj))
        if new is not None and new.pool is not None and new.pool not in self.metallb.pools:
            self.held[skey] = new
            self.issues.setdefault(key, []).append(self._unknown_pool(new, ev.obj))
            new = None
        if new is None:
            if old is not None:
                del self.services[skey]
                self._note(ch.services, skey, old, None)
        elif new != old:
            self.services[skey] = new
            self._note(ch.services, skey, old, new)
        return False

    @staticmethod
    def _unknown_pool(svc: Service, obj: dict | None = None) -> ConfigIssue:
        ann = (obj or {}).get("metadata", {}).get("annotations") or {}
        key = validate._annotation_key(ann, validate.POOL_ANNOTATIONS) or validate.POOL_ANNOTATIONS[-1]
        return ConfigIssue(svc.origin, f"Service/{svc.key}", f"metadata.annotations[{key}]",
                           f"IPAddressPool {svc.pool!r} not found")

    @staticmethod
    def _note(changes: dict, key: str, old, new) -> None:
        if key in changes:
            first = changes[key][0]
            if first == new:
                del changes[key]
            else:
                changes[key] = (first, new)
        else:
            changes[key] = (old, new)

    def _simple(self, ev: Event, key: Key, mkey: str, table: dict, changes: dict, check, issues: Issues) -> bool:
        origin = self._origin.get(key)
        if origin is not None and origin != ev.source:
            if ev.type != DELETED:
                issues.error(Source(ev.source, key[0], mkey), "metadata.name",
                             f"duplicate {key[0]} {mkey} (first defined in {origin})")
                self.issues[(key[0] + "@" + ev.source, key[1], key[2])] = issues.items
            return False
        old = table.get(mkey)
        new = None
        if ev.type != DELETED:
            new = check(ev.obj, issues)
            self._origin[key] = ev.source
        else:
            self._origin.pop(key, None)
        if issues.items:
            self.issues[key] = issues.items
        else:
            self.issues.pop(key, None)
        if new is None:
            if old is not None:
                del table[mkey]
                self._note(changes, mkey, old, None)
        elif new != old:
            table[mkey] = new
            self._note(changes, mkey, old, new)
        return False

    def _metallb_object(self, ev: Event, kind: str, key: Key, issues: Issues) -> bool:
        prev = self._metallb_objs.get(key)
        if prev is not None and prev[1].file != ev.source:
            if ev.type != DELETED:
                issues.error(Source(ev.source, kind, key[2], key[1]), "metadata.name",
                             f"duplicate {kind} {key[1] + '/' if key[1] else ''}{key[2]} (first defined in {prev[1].file})")
                self._metallb_issues[(kind + "@" + ev.source, key[1], key[2])] = issues.items
                return True
            return False
        self._metallb_issues.pop((kind + "@" + ev.source, key[1], key[2]), None)
        if ev.type == DELETED:
            self._metallb_objs.pop(key, None)
            self._metallb_issues.pop(key, None)
            return True
        src = Source(ev.source, kind, key[2], key[1])
        spec = validate.metallb_spec(kind, ev.obj, src, issues) if kind != "Secret" else None
        self._metallb_objs[key] = (kind, src, spec, ev.obj)
        self._metallb_issues[key] = issues.items
        return True

    def _rebuild_metallb(self, ch: Changes) -> None:
        issues = Issues()
        for items in self._metallb_issues.values():
            issues.items.extend(items)
        specs = [(kind, src, spec, doc) for kind, src, spec, doc in self._metallb_objs.values()
                 if kind != "Secret" and spec is not None]
        secrets = [(src, doc) for kind, src, _, doc in self._metallb_objs.values() if kind == "Secret"]
        built = build_metallb(specs, secrets, issues)
        errors = issues.errors
        if errors:
            self.metallb_errors = tuple(errors)
            ch.metallb_rejected = True
            return
        self.metallb_errors = ()
        self.metallb_notes = tuple(issues.items)
        if built == self.metallb and not ch.metallb:
            return
        old_pools = self.metallb.pools.keys()
        self.metallb = built
        ch.metallb = True
        if built.pools.keys() != old_pools:
            self._recheck_pools(ch)

    def _recheck_pools(self, ch: Changes) -> None:
        """Services naming a pool: admitted when it exists, held back when it does not."""
        pools = self.metallb.pools
        for skey, svc in list(self.held.items()):
            if svc.pool in pools:
                del self.held[skey]
                key = ("Service", svc.namespace, svc.name)
                left = [i for i in self.issues.get(key, ()) if "not found" not in i.message or "IPAddressPool" not in i.message]
                if left:
                    self.issues[key] = left
                else:
                    self.issues.pop(key, None)
                self.services[skey] = svc
                self._note(ch.services, skey, None, svc)
        for skey, svc in [(k, s) for k, s in self.services.items() if s.pool is not None and s.pool not in pools]:
            del self.services[skey]
            self.held[skey] = svc
            self.issues.setdefault(("Service", svc.namespace, svc.name), []).append(self._unknown_pool(svc))
            self._note(ch.services, skey, svc, None)

    # ----------------------------------------------------------------- output
    def config(self) -> Config:
        """The running state as a Config (the view planner, allocator and control API read)."""
        m = self.metallb
        notes = self.metallb_notes + tuple(i for items in self.issues.values() for i in items if i.severity != "error")
        return Config(peers=m.peers, pools=m.pools, advertisements=m.advertisements, bfd_profiles=m.bfd_profiles,
                      services=ServiceView(self.services), nodes=self.nodes,
                      warnings=tuple(str(i) for i in notes if i.severity == "warning"), issues=notes)

    def errors(self) -> list[ConfigIssue]:
        """Every current error: the refused MetalLB configuration's, then each object's."""
        out = list(self.metallb_errors)
        out.extend(i for items in self.issues.values() for i in items if i.severity == "error")
        return out

    def notes(self) -> list[ConfigIssue]:
        out = list(self.metallb_notes)
        out.extend(i for items in self.issues.values() for i in items if i.severity != "error")
        return out
