"""`speakerd decode` (not implemented yet)."""
from __future__ import annotations


def register(sub):
    return sub.add_parser("decode", help="decode (not implemented yet)")


def main(args) -> int:
    raise SystemExit("speakerd decode: not implemented yet")
