"""Service rows straight from a :class:`~speakerd.config.fastyaml.Run`: no dict per document.

A generated or ``kubectl get -o yaml`` file holds thousands of Service
documents of one shape.  The fast YAML reader hands them over as a Run (one
shape tree, the values of all documents in one flat list), and here each
field the light path reads is one column of that list (``values[i::holes]``).
Every check is a C-level pass over a column (``set``, ``map``) instead of a
dict lookup per document.

Only the regular case is taken: kind ``Service``/``v1``, a name and
namespace that are strings, ``spec.type`` ``LoadBalancer`` in every document,
no ``ipFamilies``/``ipFamilyPolicy``/``loadBalancerClass``, exactly one
``status.loadBalancer.ingress`` entry with a valid IPv4 ``ip``, a pool
annotation (if any) naming a known pool, no duplicate names.  Anything else
makes :func:`service_run_ok` or :func:`rows_from_run` return False and the
caller builds the documents and reads them one by one, so results and
error messages are those of the per-document path.
"""
from __future__ import annotations

import socket
from itertools import repeat
from typing import Any

from .fastyaml import Run, hole

POOL_ANNOTATIONS = ("metallb.universe.tf/address-pool", "metallb.io/address-pool")
_V4 = (4,)


def _column(run: Run, node: Any) -> list | None:
    i = hole(node)
    return None if i is None else run.column(i)


def _all_str(col: list) -> bool:
    return set(map(type, col)) == {str}


def service_run_ok(run: Run) -> bool:
    """Whether every document of `run` is a v1 Service with a string name and namespace
    (what sort_documents sends down the Service path); False = read them one by one."""
    tree = run.shape.tree
    if type(tree) is not dict or type(tree.get("metadata")) is not dict:
        return False
    meta = tree["metadata"]
    for node, want in ((tree.get("kind"), "Service"), (tree.get("apiVersion"), "v1")):
        col = _column(run, node)
        if col is None or set(col) != {want}:
            return False
    name = _column(run, meta.get("name"))
    if name is None or not _all_str(name) or "" in set(name):
        return False
    if "namespace" in meta:
        ns = _column(run, meta["namespace"])
        if ns is None or not _all_str(ns) or "" in set(ns):
            return False
    return True


def rows_from_run(run: Run, file: str, pool_names: set[str], rows: dict[str, tuple]) -> bool:
    """Add a row per document of `run` (service_run_ok) to `rows`; False (and `rows`
    untouched) when some document needs the per-document path."""
    tree = run.shape.tree
    meta, spec, status = tree["metadata"], tree.get("spec"), tree.get("status")
    if type(spec) is not dict or "ipFamilies" in spec or "ipFamilyPolicy" in spec or "loadBalancerClass" in spec:
        return False
    kind = _column(run, spec.get("type"))
    if kind is None or set(kind) != {"LoadBalancer"}:
        return False
    lb = status.get("loadBalancer") if type(status) is dict else None
    ingress = lb.get("ingress") if type(lb) is dict else None
    if type(ingress) is not list or len(ingress) != 1 or type(ingress[0]) is not dict:
        return False
    ips = _column(run, ingress[0].get("ip"))
    if ips is None or not _all_str(ips):
        return False
    try:
        for _ in map(socket.inet_pton, repeat(socket.AF_INET), ips):
            pass  # only canonical dotted quads pass: the text is the canonical form
    except (OSError, ValueError):
        return False
    pool: list | repeat = repeat(None)
    ann = meta.get("annotations")
    if ann is not None:
        if type(ann) is not dict:
            return False
        for k in POOL_ANNOTATIONS:
            if k in ann:
                col = _column(run, ann[k])
                if col is None or not _all_str(col) or not set(col) <= pool_names:
                    return False
                pool = col
                break
    names = run.column(hole(meta["name"]))  # type: ignore[arg-type]
    ns = run.column(hole(meta["namespace"])) if "namespace" in meta else ["default"] * run.count  # type: ignore[arg-type]
    keys = list(map("/".join, zip(ns, names)))
    distinct = set(keys)
    if len(distinct) != len(keys) or not rows.keys().isdisjoint(distinct):  # iterates the smaller set
        return False
    rows.update(zip(keys, zip(ns, names, zip(ips), pool, repeat(False), repeat(_V4), repeat(file))))
    return True
