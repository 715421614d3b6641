"""`speakerd check` (not implemented yet)."""
from __future__ import annotations


def register(sub):
    return sub.add_parser("check", help="check (not implemented yet)")


def main(args) -> int:
    raise SystemExit("speakerd check: not implemented yet")
