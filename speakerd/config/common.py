"""What every MetalLB builder shares: the issue collector and label selectors."""
from __future__ import annotations

from .model import ConfigIssue, LabelSelector, Source


class Issues:
    """Collects ConfigIssues; ``error``/``warn``/``info`` take the Source of the object."""

    def __init__(self) -> None:
        self.items: list[ConfigIssue] = []

    def add(self, src: Source, fld: str, msg: str, severity: str = "error") -> None:
        self.items.append(ConfigIssue(src.file, f"{src.kind}/{src.name}" if src.kind else "", fld, msg, severity))

    def error(self, src: Source, fld: str, msg: str) -> None:
        self.add(src, fld, msg)

    def warn(self, src: Source, fld: str, msg: str) -> None:
        self.add(src, fld, msg, "warning")

    def info(self, src: Source, fld: str, msg: str) -> None:
        self.add(src, fld, msg, "info")

    @property
    def errors(self) -> list[ConfigIssue]:
        return [i for i in self.items if i.severity == "error"]


def selectors(specs: list) -> tuple[LabelSelector, ...]:
    return tuple(
        LabelSelector(
            match_labels=tuple(sorted(s.matchLabels.items())),
            match_expressions=tuple((e.key, e.operator, tuple(e.values)) for e in s.matchExpressions),
        )
        for s in specs
    )


def check_selectors(specs: list, src: Source, path: str, issues: Issues) -> None:
    for i, s in enumerate(specs):
        for j, e in enumerate(s.matchExpressions):
            if e.operator in ("In", "NotIn") and not e.values:
                issues.error(src, f"{path}[{i}].matchExpressions[{j}].values", f"operator {e.operator} needs at least one value")
            if e.operator in ("Exists", "DoesNotExist") and e.values:
                issues.error(src, f"{path}[{i}].matchExpressions[{j}].values", f"operator {e.operator} takes no values")


def label_strings(src: Source, labels: dict, issues: Issues) -> bool:
    """Whether every label key and value is a string, as Kubernetes requires; an error for each
    that is not (``bgp: true`` is the boolean True, which no selector value "true" would match)."""
    ok = True
    for k, v in labels.items():
        if type(k) is not str or type(v) is not str:
            issues.error(src, f"metadata.labels[{k}]", f"label keys and values must be strings, got {k!r}: {v!r} (quote it)")
            ok = False
    return ok


def annotation(src: Source, doc: dict | None, key: str, issues: Issues):
    """The value of annotation ``key`` on the object ``doc`` (a speakerd extension annotation),
    None when absent; annotations that are not a mapping are an error of that field (a
    hand-written file can say ``annotations: a=b``; the API server never does)."""
    meta = (doc or {}).get("metadata")
    ann = meta.get("annotations") if type(meta) is dict else None
    if ann is None:
        return None
    if type(ann) is not dict:
        issues.error(src, "metadata.annotations", f"expected a mapping of names to values, got {ann!r}")
        return None
    return ann.get(key)
