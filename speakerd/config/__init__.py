"""Configuration: Kubernetes objects (MetalLB manifests, Services, Nodes...) in, validated model out.

``load_config(paths)`` reads files once through the same path the daemon uses
(file source -> object store, see :mod:`speakerd.store`) and returns the
:class:`model.Config`, or raises :class:`ConfigError` listing every problem (file,
Kind/name, field, reason) — also those of single Services, which the daemon
reports and skips while planning every other one.
"""
from __future__ import annotations

from .gcpause import gc_paused
from .model import (Advertisement, BFDProfile, Config, ConfigError, ConfigIssue, LabelSelector, Node, Peer, Pool,
                    Service, Source)


def read_config(paths: list[str] | str, store=None) -> tuple[Config, list[ConfigIssue]]:
    """What the daemon would run on: the Config of every valid object, and every error
    (a refused MetalLB configuration leaves the Config without peers, pools...).
    ``store``: the ``speakerd.store.Store`` to fill (its EndpointSlices and Nodes are
    for the announce rules); a new one by default."""
    from ..sources.files import FileSource
    from ..store import Store
    if isinstance(paths, str):
        paths = [paths]
    with gc_paused():
        source = FileSource(list(paths))
        store = Store() if store is None else store
        for batch in source.batches():  # one batch of raw objects at a time, as the daemon reads
            store.apply(batch, settle=False)
            del batch
        store.settle()  # the MetalLB objects of every file, as one configuration
        issues = source.issues()
        errors = [i for i in issues if i.severity == "error"] + store.errors()
        config = store.config()
        notes = tuple(i for i in issues if i.severity != "error") + config.issues
        return Config(peers=config.peers, pools=config.pools, advertisements=config.advertisements,
                      bfd_profiles=config.bfd_profiles, services=config.services, nodes=config.nodes,
                      warnings=tuple(str(i) for i in notes if i.severity == "warning"), files=tuple(source.files),
                      issues=notes), errors


def load_config(paths: list[str] | str) -> Config:
    """Read and validate ``paths`` (files or directories). Raises ConfigError."""
    config, errors = read_config(paths)
    if errors:
        raise ConfigError(errors)
    return config


__all__ = ["load_config", "read_config", "Config", "ConfigError", "ConfigIssue", "Peer", "Pool", "Advertisement", "Service",
           "BFDProfile", "Node", "LabelSelector", "Source"]
