"""Logging for the daemon: one line per event, peer context, secrets redacted.

Setup (``speakerd run``)::

    from speakerd import logs
    logs.add_arguments(parser)            # --log-level, --log-format, --trace
    ...
    logs.setup_from_args(args)            # or logs.setup(level="info", fmt="text")

Conventions
-----------
* Loggers are ``speakerd.<area>`` (``speakerd.peer``, ``speakerd.config``, ...).
* Peer context: ``logger.info(..., extra={"peer": "rtr1", "hold": 90})``.
  Any ``extra`` key becomes a field: ``key=value`` in text, a JSON key in
  JSON.
* Text format: ``2026-11-26T12:00:00.123Z INFO speakerd.peer peer=rtr1 session established hold=90``
  (values with spaces/quotes are quoted; newlines are escaped, so a record is
  always one line, tracebacks included).
* JSON format: one object per line with ``ts``, ``level``, ``logger``, ``msg``,
  ``peer`` (when set), the extra fields, and ``exc`` for exceptions.

Secrets
-------
``logs.redact`` is the process-wide :class:`Redactor`; the daemon registers
every MD5 password it loads with ``logs.redact.add(secret)``.  The handler
installed by :func:`setup` replaces each registered secret with ``***`` in the
formatted message, in string extra fields and in exception text, before any
formatter sees the record.

Tracing
-------
``--trace PEER`` (repeatable; ``all`` for every peer) logs every BGP message
exchanged with the peer, one line each, via :class:`Tracer`::

    tracer = logs.Tracer(args.trace)
    if tracer.enabled(peer):   # cheap check on the hot path
        tracer.message(peer, "received", msg)

The line text is :func:`format_message` (built on :mod:`speakerd.render`, the
same renderer ``speakerd decode`` uses); in JSON mode the decoded fields are
also attached under ``bgp``.  Trace records go to ``speakerd.trace`` at INFO
and are shown whatever ``--log-level`` says (asking for a trace is explicit).
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
import sys
import threading
from typing import Any, Iterable, Mapping, TextIO

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
          "warn": logging.WARNING, "error": logging.ERROR, "critical": logging.CRITICAL}
FORMATS = ("text", "json")
MASK = "***"
TRACE_LOGGER = "speakerd.trace"

# attributes every LogRecord has; anything else on a record came from ``extra``
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime",
                                                                                  "taskName"}
_HIDDEN_IN_TEXT = frozenset({"bgp"})  # structured trace payload: JSON only


# ---------------------------------------------------------------------------
# redaction


class Redactor(logging.Filter):
    """Replaces registered secrets with ``***`` in records (a handler filter).

    Thread-safe registration; filtering costs nothing while no secret is set.
    """

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._secrets: tuple[str, ...] = ()

    def add(self, secret: str | bytes | None) -> None:
        if not secret:
            return
        if isinstance(secret, (bytes, bytearray)):
            secret = bytes(secret).decode("utf-8", "surrogateescape")
        with self._lock:
            if secret not in self._secrets:
                # longest first, so a secret containing another is masked whole
                self._secrets = tuple(sorted(self._secrets + (secret,), key=len, reverse=True))

    def discard(self, secret: str | bytes) -> None:
        if isinstance(secret, (bytes, bytearray)):
            secret = bytes(secret).decode("utf-8", "surrogateescape")
        with self._lock:
            self._secrets = tuple(s for s in self._secrets if s != secret)

    def clear(self) -> None:
        with self._lock:
            self._secrets = ()

    def __len__(self) -> int:
        return len(self._secrets)

    def scrub(self, text: str) -> str:
        for s in self._secrets:
            if s in text:
                text = text.replace(s, MASK)
        return text

    def _scrub_value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, (bytes, bytearray)):
            return self.scrub(bytes(value).decode("utf-8", "backslashreplace"))
        if isinstance(value, Mapping):
            return {k: self._scrub_value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self._scrub_value(v) for v in value]
        return value

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        # Format now, then drop args: the secret may sit in an argument.
        msg = record.getMessage()
        record.msg = self.scrub(msg)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
            record.exc_info = None  # formatters would re-render it from the traceback
        if record.stack_info:
            record.stack_info = self.scrub(record.stack_info)
        for key, value in list(vars(record).items()):
            if key not in _STANDARD:
                setattr(record, key, self._scrub_value(value))
        return True


redact = Redactor()


# ---------------------------------------------------------------------------
# formatters


def _ts(created: float) -> str:
    t = _dt.datetime.fromtimestamp(created, _dt.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The ``extra`` fields of a record (everything not standard), in insertion order."""
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


def _exc_text(formatter: logging.Formatter, record: logging.LogRecord) -> str:
    if record.exc_info and not record.exc_text:
        record.exc_text = formatter.formatException(record.exc_info)
    text = record.exc_text or ""
    if record.stack_info:
        text = (text + "\n" if text else "") + record.stack_info
    return text


def _quote(value: Any) -> str:
    s = value if isinstance(value, str) else str(value)
    if s == "" or any(c in s for c in ' "=\n\r\t\\'):
        return json.dumps(s, ensure_ascii=False)
    return s


def _one_line(s: str) -> str:
    return s.replace("\\", "\\\\").replace("\r", "\\r").replace("\n", "\\n") if ("\n" in s or "\r" in s) else s


class TextFormatter(logging.Formatter):
    """``TS LEVEL logger peer=P message k=v ...`` — always exactly one line."""

    def __init__(self, timestamps: bool = True):
        super().__init__()
        self.timestamps = timestamps

    def format(self, record: logging.LogRecord) -> str:
        extras = extra_fields(record)
        parts = []
        if self.timestamps:
            parts.append(_ts(record.created))
        parts.append(record.levelname)
        parts.append(record.name)
        peer = extras.pop("peer", None)
        if peer is not None:
            parts.append(f"peer={_quote(peer)}")
        parts.append(_one_line(record.getMessage()))
        for k, v in extras.items():
            if k not in _HIDDEN_IN_TEXT:
                parts.append(f"{k}={_quote(v)}")
        exc = _exc_text(self, record)
        if exc:
            parts.append(f"exc={json.dumps(exc, ensure_ascii=False)}")
        return " ".join(parts)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, peer, extras, exc."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {"ts": _ts(record.created), "level": record.levelname.lower(),
                               "logger": record.name, "msg": record.getMessage()}
        extras = extra_fields(record)
        if "peer" in extras:
            out["peer"] = extras.pop("peer")
        for k, v in extras.items():
            out.setdefault(k, v)
        exc = _exc_text(self, record)
        if exc:
            out["exc"] = exc
        return json.dumps(out, ensure_ascii=False, default=str, separators=(",", ":"))


# ---------------------------------------------------------------------------
# setup


def parse_level(level: str | int) -> int:
    if isinstance(level, int):
        return level
    try:
        return LEVELS[level.lower()]
    except KeyError:
        raise ValueError(f"unknown log level {level!r} (one of {', '.join(sorted(LEVELS))})") from None


def _handler_marker(h: logging.Handler) -> bool:
    return getattr(h, "_speakerd", False)


def setup(level: str | int = "info", fmt: str = "text", stream: TextIO | None = None,
          timestamps: bool = True, redactor: Redactor | None = None) -> logging.Handler:
    """Install speakerd's one handler on the root logger (replacing a previous one).

    ``stream`` defaults to stderr (journald / kubectl logs read it).  Returns
    the handler.  Safe to call again, e.g. after a reload changes the level.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown log format {fmt!r} (one of {', '.join(FORMATS)})")
    root = logging.getLogger()
    for h in list(root.handlers):
        if _handler_marker(h):
            root.removeHandler(h)
            h.close()
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler._speakerd = True  # type: ignore[attr-defined]
    handler.addFilter(redactor if redactor is not None else redact)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter(timestamps=timestamps))
    root.addHandler(handler)
    root.setLevel(parse_level(level))
    # an explicit --trace is shown whatever the level
    logging.getLogger(TRACE_LOGGER).setLevel(logging.INFO)
    logging.captureWarnings(True)
    return handler


def add_arguments(parser) -> None:
    """Add ``--log-level``, ``--log-format`` and ``--trace`` to an argparse parser."""
    parser.add_argument("--log-level", default="info", choices=sorted(set(LEVELS) - {"warn"}),
                        help="minimum level logged (default: info)")
    parser.add_argument("--log-format", default="text", choices=FORMATS,
                        help="text: key=value lines; json: one JSON object per line (default: text)")
    parser.add_argument("--trace", action="append", default=[], metavar="PEER",
                        help="log every BGP message exchanged with PEER (name or address; "
                             "'all' for every peer); repeatable")


def setup_from_args(args) -> logging.Handler:
    return setup(level=getattr(args, "log_level", "info"), fmt=getattr(args, "log_format", "text"))


# ---------------------------------------------------------------------------
# message trace


_ARROWS = {"sent": ">", "received": "<"}


def format_message(direction: str, msg: object) -> str:
    """One tcpdump-style line for a decoded BGP message.

    ``direction`` is ``"sent"`` or ``"received"``; the line starts with
    ``>`` (to the peer) or ``<`` (from the peer).  Example::

        > UPDATE origin igp as-path [65001] next-hop 192.0.2.1 nlri 198.51.100.10/32
    """
    from .render import message_text  # imported lazily: the codec is not needed to log

    return f"{_ARROWS[direction]} {message_text(msg)}"


class Tracer:
    """Decides which peers are traced and logs their messages.

    ``peers`` are the ``--trace`` values; each matches a peer by any of the
    identities the daemon passes to :meth:`enabled` (name, address, label).
    """

    def __init__(self, peers: Iterable[str] = (), logger: logging.Logger | None = None):
        wanted = {p.strip() for p in peers if p and p.strip()}
        self.all = bool(wanted & {"all", "*"})
        self.peers = frozenset(wanted - {"all", "*"})
        self.log = logger or logging.getLogger(TRACE_LOGGER)

    def __bool__(self) -> bool:
        return self.all or bool(self.peers)

    def enabled(self, *identities: str) -> bool:
        if self.all:
            return True
        return not self.peers.isdisjoint(identities)

    def message(self, peer: str, direction: str, msg: object, **extra: Any) -> None:
        """Log one message (check :meth:`enabled` first on hot paths)."""
        from .render import message_fields

        try:
            fields = message_fields(msg)
        except TypeError:
            fields = {"type": type(msg).__name__}
        self.log.info("%s", format_message(direction, msg),
                      extra={"peer": peer, "direction": direction, "bgp": fields, **extra})
