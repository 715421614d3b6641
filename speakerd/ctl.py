"""`speakerctl`: ask a running speakerd, like vtysh or birdc.

    speakerctl show bgp summary
    speakerctl show bgp neighbors [PEER]
    speakerctl show bgp ipv4|ipv6 [advertised-routes PEER | received-routes PEER]
    speakerctl show bfd peers
    speakerctl show history [PEER]
    speakerctl explain IP|PREFIX|NAMESPACE/SERVICE
    speakerctl reload [--dry-run]
    speakerctl drain [--wait SECONDS] [--message TEXT]
    speakerctl undrain
    speakerctl capture PEER -w FILE.pcap [--seconds N]
    speakerctl health

``--json`` (anywhere on the line) prints the daemon's answer as JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import sys

from .control import show

DEFAULT_SOCKET = os.environ.get("SPEAKERD_SOCKET", "/run/speakerd/speakerd.sock")


class CtlError(Exception):
    pass


def request(path: str, command: str, args: dict | None = None, timeout: float = 30.0):
    """Send one request; yield every answer line (more than one only for capture)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
    except FileNotFoundError:
        raise CtlError(f"no control socket at {path}: is speakerd running? (--socket PATH)") from None
    except PermissionError:
        raise CtlError(f"permission denied on {path}: run as root or as the speakerd user") from None
    except OSError as e:
        raise CtlError(f"cannot connect to {path}: {e}") from None
    with s:
        s.sendall(json.dumps({"command": command, "args": args or {}}).encode() + b"\n")
        f = s.makefile("rb")
        for line in f:
            obj = json.loads(line)
            yield obj
            if "ok" in obj:
                return
        raise CtlError("the daemon closed the connection without answering")


def call(path: str, command: str, args: dict | None = None, timeout: float = 30.0) -> dict:
    for obj in request(path, command, args, timeout):
        if "ok" in obj:
            if not obj["ok"]:
                raise CtlError(obj.get("error", "error"))
            return obj["result"]
    raise CtlError("no answer")


def _parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="speakerctl", description="Query and control a running speakerd.")
    p.add_argument("--socket", default=DEFAULT_SOCKET, help=f"control socket (default {DEFAULT_SOCKET})")
    p.add_argument("--json", action="store_true", help="print the answer as JSON")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for an answer")
    p.add_argument("-w", "--write", metavar="FILE", help="capture: the pcap file to write")
    p.add_argument("--seconds", type=float, default=0.0,
                   help="capture: keep capturing live messages this long after the buffered ones")
    p.add_argument("--limit", type=int, default=0, help="routes: show at most this many")
    p.add_argument("--wait", type=float, default=10.0, metavar="SECONDS",
                   help="drain: how long the routes stay announced with GRACEFUL_SHUTDOWN before they "
                        "are withdrawn (default 10)")
    p.add_argument("--dry-run", action="store_true",
                   help="reload: show what reloading the files on disk would change, per peer; apply nothing")
    p.add_argument("--message", default=None, help="drain: the shutdown message of the Cease (RFC 9003)")
    p.add_argument("words", nargs="+", help="the command, e.g. show bgp summary")
    # allow --json (and other options) after the command words
    return p.parse_intermixed_args(argv)


USAGE = __doc__


def _command(words: list[str]) -> tuple[str, dict]:
    w = [x.lower() for x in words]
    orig = list(words)
    if w[:1] == ["show"]:
        w, orig = w[1:], orig[1:]
        if w[:1] == ["ip"]:  # tolerate "show ip bgp ..."
            w, orig = w[1:], orig[1:]
        if w[:2] == ["bgp", "summary"]:
            return "summary", {}
        if w[:2] in (["bgp", "neighbors"], ["bgp", "neighbor"]):
            return "neighbors", {"peer": orig[2]} if len(orig) > 2 else {}
        if w[:1] == ["bgp"] and len(w) >= 2 and w[1] in ("ipv4", "ipv6"):
            fam = w[1]
            rest, orest = w[2:], orig[2:]
            if rest and rest[0] == "unicast":
                rest, orest = rest[1:], orest[1:]
            if not rest:
                return "routes", {"family": fam}
            if rest[0] in ("advertised-routes", "received-routes") and len(rest) == 2:
                return "routes", {"family": fam, "direction": rest[0].split("-")[0], "peer": orest[1]}
            if rest[0] == "neighbors" and len(rest) == 3 and rest[2] in ("advertised-routes", "received-routes"):
                return "routes", {"family": fam, "direction": rest[2].split("-")[0], "peer": orest[1]}
        if w[:1] == ["bgp"] and len(w) == 1:
            return "routes", {"family": "ipv4"}
        if w[:2] == ["bfd", "peers"] or w == ["bfd"]:
            return "bfd", {}
        if w[:1] == ["history"]:
            return "history", {"peer": orig[1]} if len(orig) > 1 else {}
    elif w[:1] == ["explain"] and len(w) == 2:
        return "explain", {"target": orig[1]}
    elif w == ["reload"]:
        return "reload", {}
    elif w == ["health"]:
        return "health", {}
    elif w == ["drain"]:
        return "drain", {}
    elif w == ["undrain"]:
        return "undrain", {}
    elif w[:1] == ["capture"] and len(w) == 2:
        return "capture", {"peer": orig[1]}
    raise CtlError(f"unknown command: {' '.join(words)}\n{USAGE}")


def _capture(ns: argparse.Namespace, args: dict) -> int:
    from .pcap import PcapWriter
    if not ns.write:
        raise CtlError("capture needs -w FILE.pcap")
    args = {**args, "seconds": ns.seconds}
    header = None
    count = 0
    out = sys.stdout.buffer if ns.write == "-" else open(ns.write, "wb")
    try:
        writer = PcapWriter(out)
        for obj in request(ns.socket, "capture", args, timeout=ns.seconds + ns.timeout):
            if "capture" in obj:
                header = obj["capture"]
                continue
            if "message" in obj:
                m = obj["message"]
                local, remote, rport = header["local"], header["remote"], header["remote_port"]
                # the daemon reports the connection's real local port; before any connection
                # (or from an older daemon) a fixed one keeps the messages in one stream
                lport = header.get("local_port") or (50179 if rport == 179 else 179)
                raw = bytes.fromhex(m["hex"])
                if m["dir"] == "out":
                    writer.write(m["ts"], local, lport, remote, rport, raw)
                else:
                    writer.write(m["ts"], remote, rport, local, lport, raw)
                count += 1
                continue
            if not obj.get("ok"):
                raise CtlError(obj.get("error", "capture failed"))
        writer.close()
    finally:
        if out is not sys.stdout.buffer:
            out.close()
    if ns.write != "-":
        print(f"{count} message(s) written to {ns.write}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        ns = _parse(argv)
        command, args = _command(ns.words)
        if ns.limit and command == "routes":
            args["limit"] = ns.limit
        if command == "capture":
            return _capture(ns, args)
        timeout = ns.timeout
        if command == "reload" and ns.dry_run:
            command = "plan_diff"
        if command == "drain":
            args["wait"] = ns.wait
            if ns.message:
                args["message"] = ns.message
            timeout = ns.wait + ns.timeout  # the answer comes when the drain is done
        result = call(ns.socket, command, args, timeout)
    except CtlError as e:
        print(f"speakerctl: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0
    except (OSError, ValueError) as e:
        print(f"speakerctl: {e}", file=sys.stderr)
        return 1
    try:
        _print(ns, command, result)
    except BrokenPipeError:  # `speakerctl ... | head`
        sys.stderr.close()
        return 0
    if command in ("reload", "plan_diff") and not result.get("ok", True):
        return 3
    return 0


def _print(ns: argparse.Namespace, command: str, result: dict) -> None:
    if ns.json:
        json.dump(result, sys.stdout, indent=2, sort_keys=True, default=str)
        sys.stdout.write("\n")
    else:
        print(show.RENDERERS[command](result))


if __name__ == "__main__":
    sys.exit(main())
