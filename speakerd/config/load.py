"""Read configuration files: paths -> Kubernetes objects tagged with their file.

A path is a file (multi-document YAML, or JSON) or a directory (its *.yaml,
*.yml and *.json files, sorted by name, not recursive).  ``kind: List``
documents (``kubectl get -o yaml``) are expanded into their items.

Scalars are resolved as Kubernetes resolves them, not as YAML 1.1 does:
``64500:100`` is the string a community is written as, never the
base-60 integer PyYAML would make of it.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Iterator

import yaml

from .fastyaml import Run, load_items
from .model import ConfigIssue

_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class KubeLoader(_Base):  # type: ignore[misc, valid-type]
    """Safe loader without YAML 1.1 sexagesimal numbers."""


# copy the resolver table, then replace the int/float resolvers with colon-free (base-10/8/16/2) ones
KubeLoader.yaml_implicit_resolvers = {ch: list(r) for ch, r in _Base.yaml_implicit_resolvers.items()}
import re as _re  # noqa: E402

_INT = _re.compile(r"""^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$""", _re.X)
_FLOAT = _re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9_]+(?:[eE][-+][0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$""", _re.X)
for _ch in list("-+0123456789."):
    _lst = [(t, r) for t, r in KubeLoader.yaml_implicit_resolvers.get(_ch, []) if t not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")]
    if _ch in "-+0123456789":
        _lst.append(("tag:yaml.org,2002:int", _INT))
    _lst.append(("tag:yaml.org,2002:float", _FLOAT))
    KubeLoader.yaml_implicit_resolvers[_ch] = _lst

EXTENSIONS = (".yaml", ".yml", ".json")

# A reload re-reads every file; a file whose text is unchanged reuses the documents parsed
# last time (nothing downstream mutates them).  Only files up to this size are kept, so a
# million-Service file is not held twice.
CACHE_MAX_CHARS = 8 << 20
_parsed: dict[str, tuple[str, list[Any]]] = {}


@dataclass(frozen=True, slots=True)
class Document:
    file: str
    index: int  # position of the document in its file (of the first one, for a Run)
    data: Any  # the document's data, or a fastyaml.Run of documents index, index + 1, ...


def list_items(data: Any) -> list | None:
    """The items of a ``kind: List`` document (``kubectl get -o yaml``) or of a typed list
    (``ServiceList``, ``BGPPeerList``: what the API server returns, items without kind and
    apiVersion, which are the list's); None for any other document."""
    if type(data) is not dict:
        return None
    kind, items = data.get("kind"), data.get("items")
    if type(kind) is not str or not kind.endswith("List") or not isinstance(items, list):
        return None
    if kind == "List":
        return items
    fill = {"kind": kind[:-4], "apiVersion": data.get("apiVersion")}
    return [{**fill, **it} if type(it) is dict and not it.keys() >= fill.keys() else it for it in items]


def expand_paths(paths: list[str]) -> tuple[list[str], list[ConfigIssue]]:
    files: list[str] = []
    issues: list[ConfigIssue] = []
    for p in paths:
        if os.path.isdir(p):
            names = sorted(n for n in os.listdir(p) if n.endswith(EXTENSIONS) and os.path.isfile(os.path.join(p, n)))
            if not names:
                issues.append(ConfigIssue(p, "", "", "directory has no .yaml, .yml or .json files", "warning"))
            files.extend(os.path.join(p, n) for n in names)
        elif os.path.isfile(p):
            files.append(p)
        else:
            issues.append(ConfigIssue(p, "", "", "no such file or directory"))
    return files, issues


def _docs_of(text: str, file: str) -> Iterator[Any]:
    if file.endswith(".json"):
        data = json.loads(text)
        yield data
        return
    yield from load_items(text, lambda part: yaml.load_all(part, Loader=KubeLoader))


def load_documents(paths: list[str]) -> tuple[list[Document], list[str], list[ConfigIssue]]:
    """All documents of all paths, in order; plus the files read and read/parse issues."""
    files, issues = expand_paths(paths)
    docs: list[Document] = []
    for f in files:
        try:
            with open(f, encoding="utf-8-sig") as fh:  # a leading byte order mark (editors on Windows) is dropped
                text = fh.read()
        except (OSError, UnicodeDecodeError) as exc:
            issues.append(ConfigIssue(f, "", "", f"cannot read: {exc}"))
            continue
        index = 0
        try:
            hit = _parsed.get(f)
            if hit is not None and hit[0] == text:
                datas = hit[1]
            else:
                datas = list(_docs_of(text, f))
                if len(text) <= CACHE_MAX_CHARS:
                    _parsed[f] = (text, datas)
                else:
                    _parsed.pop(f, None)
            for data in datas:
                if data is None:
                    continue
                if type(data) is Run:
                    docs.append(Document(f, index, data))
                    index += data.count
                    continue
                items = list_items(data)
                if items is not None:
                    for item in items:
                        docs.append(Document(f, index, item))
                        index += 1
                    continue
                docs.append(Document(f, index, data))
                index += 1
        except yaml.YAMLError as exc:
            issues.append(ConfigIssue(f, "", "", f"YAML syntax error: {' '.join(str(exc).split())}"))
        except ValueError as exc:  # json
            issues.append(ConfigIssue(f, "", "", f"JSON syntax error: {exc}"))
    for gone in _parsed.keys() - set(files):  # files removed from the config: do not keep their parse
        del _parsed[gone]
    return docs, files, issues
