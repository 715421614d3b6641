"""`speakerd run` (not implemented yet)."""
from __future__ import annotations


def register(sub):
    return sub.add_parser("run", help="run (not implemented yet)")


def main(args) -> int:
    raise SystemExit("speakerd run: not implemented yet")
