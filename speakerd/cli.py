"""`speakerd` command line: one subcommand per module in speakerd.commands.

Each module defines ``register(subparsers)`` (adds its parser) and
``main(args) -> int``.  The list is explicit, not discovered.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__

COMMANDS = ("run", "check", "plan", "decode", "crds", "controller")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or of command ``only`` alone: a command's module imports
    what the command needs (``check`` none of the Kubernetes client, aiohttp, the
    controller...: about 0.4 s of every ``speakerd check``)."""
    parser = argparse.ArgumentParser(prog="speakerd", description="BGP speaker for LoadBalancer service IPs")
    parser.add_argument("--version", action="version", version=f"speakerd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS if only not in COMMANDS else (only,):
        module = importlib.import_module(f"speakerd.commands.{name}")
        p = module.register(sub)
        p.set_defaults(_main=module.main)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv[0] if argv else None).parse_args(argv)
    try:
        return int(args._main(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
