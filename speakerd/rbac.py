"""The Kubernetes API access speakerd's code uses, declared next to the calls, and the RBAC rules for it.

Each module that calls the API server declares ``ACCESS``: the (group,
resource, verbs, scope) its calls need; its tests record the calls it makes
and check they are exactly that. ``deploy/rbac.yaml`` is checked against
:func:`rules` of every declaration, so the granted verbs are the used ones —
no more (least privilege), no fewer (no 403 in production).

Scope "namespace": only in the speaker's own namespace (a Role); "cluster":
across namespaces or for cluster-scoped kinds (a ClusterRole).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass

# modules that call the API server (a module not importable yet is skipped)
MODULES = ("speakerd.publish.writer", "speakerd.kubewatch")


@dataclass(frozen=True, slots=True)
class Access:
    group: str  # "" = core
    resource: str  # plural, or "plural/subresource"
    verbs: tuple[str, ...]
    scope: str = "namespace"  # or "cluster"


def declared(modules: tuple[str, ...] = MODULES) -> list[Access]:
    out: list[Access] = []
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
                continue  # the module (or its package) is not there
            raise
        out.extend(getattr(module, "ACCESS", ()))
    return out


def rules(accesses: list[Access], scope: str) -> list[dict]:
    """RBAC ``rules`` for one scope: one rule per (group, verbs), resources sorted, merged per resource."""
    verbs: dict[tuple[str, str], set[str]] = {}
    for a in accesses:
        if a.scope == scope:
            verbs.setdefault((a.group, a.resource), set()).update(a.verbs)
    grouped: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for (group, resource), vs in verbs.items():
        grouped.setdefault((group, tuple(sorted(vs))), []).append(resource)
    return [{"apiGroups": [group], "resources": sorted(res), "verbs": list(vs)}
            for (group, vs), res in sorted(grouped.items())]


__all__ = ["Access", "declared", "rules", "MODULES"]
