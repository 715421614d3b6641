"""The control socket: one JSON request per line in, one JSON answer per line out.

Request: ``{"command": "summary", "args": {...}}``.  Answer: ``{"ok": true,
"result": {...}}`` or ``{"ok": false, "error": "..."}``.  ``capture`` streams:
one ``{"message": {...}}`` line per BGP message (hex bytes, timestamp,
direction), then a final ``{"ok": true, ...}``.

The socket is a Unix socket, mode 0600 (root and the daemon's own user only);
there is no TCP listener for control.
"""
from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import time

from . import api

log = logging.getLogger("speakerd.control")
MAX_REQUEST = 64 * 1024
MAX_CAPTURE_SECONDS = 3600


class ControlServer:
    def __init__(self, speaker, path: str) -> None:
        self.speaker = speaker
        self.path = path
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, exist_ok=True)
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        old = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(self._client, path=self.path, limit=MAX_REQUEST)
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    line = await reader.readline()
                except (asyncio.LimitOverrunError, ValueError):
                    await self._send(writer, {"ok": False, "error": "request too long"})
                    break
                if not line:
                    break
                try:
                    req = json.loads(line)
                    command = req["command"]
                    args = req.get("args") or {}
                    if not isinstance(args, dict):
                        raise TypeError("args must be an object")
                except (ValueError, KeyError, TypeError) as e:
                    await self._send(writer, {"ok": False, "error": f"bad request: {e}"})
                    continue
                if command == "capture":
                    await self._capture(writer, args)
                    continue
                await self._send(writer, await self.answer(command, args))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def answer(self, command: str, args: dict) -> dict:
        handler = api.HANDLERS.get(command)
        if handler is None:
            return {"ok": False, "error": f"unknown command {command!r} (one of: "
                                          f"{', '.join(sorted(api.HANDLERS) + ['capture'])})"}
        try:
            result = handler(self.speaker, args)
            if asyncio.iscoroutine(result):
                result = await result
            return {"ok": True, "result": result}
        except api.ApiError as e:
            return {"ok": False, "error": str(e)}
        except Exception as e:  # the daemon must outlive a bad question
            log.exception("control command %s failed", command)
            return {"ok": False, "error": f"internal error: {e}"}

    async def _capture(self, writer: asyncio.StreamWriter, args: dict) -> None:
        """Stream the ring buffer of a peer, then live messages for ``seconds``."""
        try:
            rt = api.resolve_peer(self.speaker, str(args.get("peer") or ""))
        except api.ApiError as e:
            await self._send(writer, {"ok": False, "error": str(e)})
            return
        try:
            seconds = float(args.get("seconds") or 0)
        except (TypeError, ValueError):
            seconds = math.nan
        if not 0 <= seconds < math.inf:  # NaN too: it would never time out
            await self._send(writer, {"ok": False, "error": f"bad seconds {args.get('seconds')!r}: "
                                                            "a number of seconds, 0 or more"})
            return
        seconds = min(seconds, MAX_CAPTURE_SECONDS)
        queue: asyncio.Queue = asyncio.Queue(maxsize=100_000)
        name = rt.config.name
        subs = self.speaker.capture_subscribers[name]
        subs.append(queue)
        p = rt.peer
        # the ports of the current connection; the local one is unknown before the first connection
        endpoints = {"local": p.local_address or "0.0.0.0", "remote": p.remote_address or rt.config.peer_address,
                     "remote_port": getattr(p, "remote_port", None) or rt.config.peer_port,
                     "local_port": getattr(p, "local_port", None)}
        count = 0
        try:
            await self._send(writer, {"capture": {"peer": name, **endpoints, "seconds": seconds}})
            history = list(rt.ring) if args.get("history", True) else []
            for ts, direction, raw in history:
                await self._send(writer, {"message": {"ts": ts, "dir": direction, "hex": raw.hex()}}, drain=False)
                count += 1
            await writer.drain()
            deadline = time.monotonic() + seconds
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    ts, direction, raw = await asyncio.wait_for(queue.get(), left)
                except asyncio.TimeoutError:
                    break
                await self._send(writer, {"message": {"ts": ts, "dir": direction, "hex": raw.hex()}})
                count += 1
        finally:
            subs.remove(queue)
        await self._send(writer, {"ok": True, "result": {"messages": count}})

    @staticmethod
    async def _send(writer: asyncio.StreamWriter, obj: dict, drain: bool = True) -> None:
        writer.write(json.dumps(obj, separators=(",", ":"), default=str).encode() + b"\n")
        if drain:
            await writer.drain()
