"""`speakerd plan` (not implemented yet)."""
from __future__ import annotations


def register(sub):
    return sub.add_parser("plan", help="plan (not implemented yet)")


def main(args) -> int:
    raise SystemExit("speakerd plan: not implemented yet")
