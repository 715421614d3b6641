"""Configuration: MetalLB manifests in, validated :class:`model.Config` out.

``load_config(paths)`` is what the daemon calls on start and on every reload:
it reads every file, validates everything, and either returns a Config or
raises :class:`ConfigError` listing every problem (file, Kind/name, field,
reason).  Nothing is half-applied.
"""
from __future__ import annotations

from .build import build
from .gcpause import gc_paused
from .load import load_documents
from .model import (Advertisement, BFDProfile, Config, ConfigError, ConfigIssue, LabelSelector, Node, Peer, Pool,
                    Service, Source)


def load_config(paths: list[str] | str, node: str | None = None) -> Config:
    """Read and validate ``paths`` (files or directories). Raises ConfigError.

    ``node`` is accepted for the caller's convenience (the planner takes the
    node name); validation does not depend on it.
    """
    if isinstance(paths, str):
        paths = [paths]
    with gc_paused():
        docs, files, issues = load_documents(list(paths))
        return build(docs, tuple(files), issues)


__all__ = ["load_config", "Config", "ConfigError", "ConfigIssue", "Peer", "Pool", "Advertisement", "Service",
           "BFDProfile", "Node", "LabelSelector", "Source"]
