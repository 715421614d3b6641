"""The allocation state file: which IPs speakerd gave which Services (a record, not an input).

A small JSON document, written atomically (temporary file in the same
directory, fsync, rename, fsync of the directory) so that a crash leaves
either the old or the new file, never a torn one.  It is read and passed to
the planner, whose file-mode allocation ignores it: every node must compute
the same assignment from the manifests alone (``policy.allocate``), so what
one node saw before can never make it differ from another::

    {"version": 1, "allocations": {"default/web": ["192.0.2.10", "2001:db8::10"]}}
"""
from __future__ import annotations

import json
import os
import tempfile

DEFAULT_PATH = "/var/lib/speakerd/state.json"
VERSION = 1


class StateError(Exception):
    """The state file exists but cannot be used."""


def load_allocations(path: str = DEFAULT_PATH) -> dict[str, tuple[str, ...]]:
    """Allocations from `path`; {} when the file does not exist. StateError if it is unreadable."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise StateError(f"{path}: cannot read state: {exc}") from exc
    if not isinstance(data, dict) or data.get("version") != VERSION or not isinstance(data.get("allocations"), dict):
        raise StateError(f"{path}: not a speakerd state file (version {VERSION})")
    out: dict[str, tuple[str, ...]] = {}
    for key, ips in data["allocations"].items():
        if isinstance(key, str) and isinstance(ips, list) and all(isinstance(i, str) for i in ips):
            out[key] = tuple(ips)
    return out


def save_allocations(allocations: dict[str, tuple[str, ...]], path: str = DEFAULT_PATH) -> None:
    """Write atomically: tmp + fsync + rename (+ fsync of the directory)."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    body = json.dumps({"version": VERSION, "allocations": {k: list(v) for k, v in sorted(allocations.items())}},
                      separators=(",", ":")).encode()
    fd, tmp = tempfile.mkstemp(prefix=".state.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(body)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    dfd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
