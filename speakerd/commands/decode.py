"""`speakerd decode`: BGP messages out of a tcpdump capture (or hex bytes).

    speakerd decode session.pcap            one line per message
    speakerd decode --json session.pcapng   one JSON object per line
    tcpdump -w - -i eth0 port 179 | speakerd decode -
    speakerd decode --port 1790 lab.pcap    BGP on another port (--port 0: every TCP stream)
    echo ffff...  | speakerd decode --hex -

Each TCP stream (4-tuple and direction) is put back in sequence order, cut
into BGP messages and decoded.  Until both OPENs of a connection have been
seen the messages are decoded with ``DEFAULT_CONTEXT``; afterwards with what
the two OPENs negotiated (4-octet AS, add-path, extended messages), seen from
the receiving side.  A malformed message is reported with its BGPError and
decoding goes on with the next one; a capture that starts mid-stream, or
lost segments, make the decoder look for the next marker.

Link types read: Ethernet (with VLAN tags), Linux cooked (SLL, SLL2), BSD
and OpenBSD loopback, raw IP, Cisco HDLC and PPP (what router serial and POS
captures carry).  A packet of any other link type stops the run with an
error naming it (exit 2) rather than printing nothing.  Families other than
IPv4/IPv6 unicast (labeled unicast, flowspec, VPN...) are shown as
``not decoded (SAFI n)``, never as malformed.
"""
from __future__ import annotations

import binascii
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator

from ..pcap import TCP_ACK, TCP_SYN, CaptureError, TcpStream, addr_str, tcp_segments
from ..render import Record, record_fields, record_line
from ..wire.capabilities import DEFAULT_CONTEXT, Negotiated
from ..wire.constants import BGP_PORT, HEADER_LEN, MARKER, MAX_EXTENDED_MESSAGE_LEN, TYPE_OFFSET
from ..wire.errors import BGPError, bad_length
from ..wire.framing import check_header, decode_body
from ..wire.messages import Open

_UNDECODABLE = 0  # BGPError code used when the codec itself fails (not a wire error)


class MessageCutter:
    """Cut one direction's byte stream into whole BGP messages, resynchronising on errors.

    ``feed`` returns ``(raw message, error)`` pairs where ``raw`` is the whole
    message (header included) or, for a bad header, the 19 header bytes; and
    ``notes`` collects bytes skipped while looking for a marker.
    """

    __slots__ = ("buf", "synced", "skipped")

    def __init__(self, synced: bool = True) -> None:
        self.buf = bytearray()
        self.synced = synced  # False: the next message boundary is unknown
        self.skipped = 0

    def lose_sync(self) -> None:
        """Bytes are missing here: what is buffered can never be completed."""
        self.skipped += len(self.buf)
        self.buf.clear()
        self.synced = False

    def feed(self, data: bytes) -> Iterator[tuple[bytes, BGPError | None, int]]:
        """Yield (raw, header error or None, bytes skipped before it)."""
        buf = self.buf
        buf += data
        while True:
            if not self.synced:
                idx = buf.find(MARKER)
                if idx < 0:
                    keep = min(len(buf), len(MARKER) - 1)
                    self.skipped += len(buf) - keep
                    del buf[:len(buf) - keep]
                    return
                self.skipped += idx
                del buf[:idx]
                self.synced = True
            if len(buf) < HEADER_LEN:
                return
            marker, length, mtype = bytes(buf[:16]), int.from_bytes(buf[16:18], "big"), buf[TYPE_OFFSET]
            skipped, self.skipped = self.skipped, 0
            try:
                check_header(marker, length, mtype, MAX_EXTENDED_MESSAGE_LEN)
            except BGPError as err:
                raw = bytes(buf[:HEADER_LEN])
                del buf[:1]
                self.synced = False
                yield raw, err, skipped
                continue
            if len(buf) < length:
                self.skipped = skipped
                return
            raw = bytes(buf[:length])
            del buf[:length]
            yield raw, None, skipped


@dataclass(slots=True)
class _Direction:
    src: bytes
    sport: int
    dst: bytes
    dport: int
    tcp: TcpStream = field(default_factory=TcpStream)
    cutter: MessageCutter = field(default_factory=lambda: MessageCutter(synced=False))
    open: Open | None = None
    ctx: Negotiated = DEFAULT_CONTEXT
    negotiated: bool = False

    def reset(self, synced: bool) -> None:
        self.cutter = MessageCutter(synced=synced)
        self.open, self.ctx, self.negotiated = None, DEFAULT_CONTEXT, False


class CaptureDecoder:
    """Sans-IO: TCP segments in, :class:`Record` objects out."""

    def __init__(self, ports: Iterable[int] | None = (BGP_PORT,)) -> None:
        self.ports = frozenset(ports) if ports is not None else None  # None: every port
        self._dirs: dict[tuple, _Direction] = {}

    def _direction(self, key: tuple) -> _Direction:
        d = self._dirs.get(key)
        if d is None:
            d = self._dirs[key] = _Direction(*key)
        return d

    def segment(self, seg) -> list[Record]:
        if self.ports is not None and seg.sport not in self.ports and seg.dport not in self.ports:
            return []
        key = (seg.src, seg.sport, seg.dst, seg.dport)
        d = self._direction(key)
        rev = self._direction((seg.dst, seg.dport, seg.src, seg.sport))
        if seg.flags & TCP_SYN and not (d.tcp.from_syn and d.tcp.next_seq == (seg.seq + 1) & 0xFFFFFFFF):
            # a new connection on this 4-tuple: forget the old session's state
            d.reset(synced=True)
            if not seg.flags & TCP_ACK:
                rev.reset(synced=rev.cutter.synced)
        out: list[Record] = []
        if seg.flags & TCP_ACK:
            out.extend(self._chunks(rev, d, rev.tcp.acked(seg.ack), seg))
        out.extend(self._chunks(d, rev, d.tcp.push(seg.seq, seg.flags, seg.payload), seg))
        return out

    def _chunks(self, d: _Direction, rev: _Direction | None, chunks, seg) -> list[Record]:
        out: list[Record] = []
        for chunk in chunks:
            if chunk.gap:
                out.append(self._note(d, seg, f"{chunk.gap} bytes missing from the capture"))
                d.cutter.lose_sync()
            out.extend(self._bytes(d, rev, chunk.data, seg.ts_ns if seg else None, seg.number if seg else 0))
        return out

    def finish(self) -> list[Record]:
        """End of capture: what still waits behind holes, and cut-off messages."""
        out: list[Record] = []
        for d in self._dirs.values():
            rev = self._dirs.get((d.dst, d.dport, d.src, d.sport))
            out.extend(self._chunks(d, rev, d.tcp.flush(), None))
            if d.cutter.buf and d.cutter.synced:
                out.append(self._note(d, None, f"capture ends inside a message ({len(d.cutter.buf)} bytes)"))
        return out

    def _note(self, d: _Direction, seg, text: str) -> Record:
        return Record(ts_ns=seg.ts_ns if seg else None, src=addr_str(d.src), sport=d.sport,
                      dst=addr_str(d.dst), dport=d.dport, note=text, frame=seg.number if seg else 0)

    def _bytes(self, d: _Direction, rev: _Direction | None, data: bytes, ts_ns, number) -> list[Record]:
        out = []
        for raw, err, skipped in d.cutter.feed(data):
            if skipped:
                out.append(Record(ts_ns, addr_str(d.src), d.sport, addr_str(d.dst), d.dport,
                                  note=f"skipped {skipped} bytes to the next BGP marker", frame=number))
            rec = decode_message(raw, d.ctx, err, strict_length=d.negotiated)
            rec.ts_ns, rec.frame = ts_ns, number
            rec.src, rec.sport, rec.dst, rec.dport = addr_str(d.src), d.sport, addr_str(d.dst), d.dport
            out.append(rec)
            if isinstance(rec.msg, Open):
                d.open = rec.msg
                if rev is not None and rev.open is not None:
                    _negotiate(d, rev)
        return out


def _negotiate(a: _Direction, b: _Direction) -> None:
    """Both OPENs seen: each direction is decoded as its receiver sees it."""
    hold = min(a.open.hold_time, b.open.hold_time)
    for sender, receiver in ((a, b), (b, a)):
        sender.ctx = Negotiated.compute(receiver.open.capabilities, sender.open.capabilities,
                                        hold_time=hold, keepalive_time=hold // 3,
                                        peer_asn=sender.open.asn, peer_id=sender.open.bgp_id)
        sender.negotiated = True


def decode_message(raw: bytes, ctx: Negotiated, header_error: BGPError | None = None,
                   strict_length: bool = True) -> Record:
    """One whole message (or a bad header) → Record with msg or error."""
    mtype = raw[TYPE_OFFSET] if len(raw) >= HEADER_LEN else None
    length = int.from_bytes(raw[16:18], "big") if len(raw) >= HEADER_LEN else len(raw)
    rec = Record(mtype=mtype, length=length, raw=raw)
    if header_error is not None:
        rec.error = header_error
        return rec
    try:
        if strict_length and length > ctx.max_message_len:
            raise bad_length(length)
        rec.msg = decode_body(mtype, memoryview(raw)[HEADER_LEN:], ctx)
    except BGPError as err:
        rec.error = err
    except Exception as exc:  # a codec failure must not end the decode run
        rec.error = BGPError(_UNDECODABLE, 0, reason=f"decoder failed: {type(exc).__name__}: {exc}")
    return rec


def decode_hex(text: str, ctx: Negotiated = DEFAULT_CONTEXT) -> list[Record]:
    """Hex text (whitespace, ``0x``, ``:`` and ``-`` separators allowed) → Records."""
    cleaned = re.sub(r"0[xX]|[\s:\-,]", "", text)
    try:
        data = binascii.unhexlify(cleaned)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not hex: {exc}") from None
    cutter = MessageCutter(synced=True)
    out = []
    for raw, err, skipped in cutter.feed(data):
        if skipped:
            out.append(Record(note=f"skipped {skipped} bytes to the next BGP marker"))
        out.append(decode_message(raw, ctx, err, strict_length=False))
    if cutter.buf and cutter.synced:
        out.append(Record(note=f"input ends inside a message ({len(cutter.buf)} bytes)"))
    return out


def decode_capture(f: BinaryIO, ports: Iterable[int] | None = (BGP_PORT,)) -> Iterator[Record]:
    dec = CaptureDecoder(ports)
    for seg in tcp_segments(f):
        yield from dec.segment(seg)
    yield from dec.finish()


# ---------------------------------------------------------------- command line


def register(sub):
    p = sub.add_parser("decode", help="print the BGP messages in a tcpdump capture",
                       description="Decode BGP messages from a pcap/pcapng capture (or hex bytes with --hex).")
    p.add_argument("file", help="capture file (pcap or pcapng), or - for stdin")
    p.add_argument("--json", action="store_true", help="one JSON object per message")
    p.add_argument("--hex", action="store_true", help="input is hex-encoded BGP bytes (one message or a stream)")
    p.add_argument("--port", type=int, action="append", metavar="N",
                   help="TCP port carrying BGP (repeatable; default 179; 0 = every TCP stream)")
    return p


def main(args) -> int:
    emit = (lambda r: json.dumps(record_fields(r), separators=(",", ":"))) if args.json else record_line
    out = sys.stdout
    ports = args.port or [BGP_PORT]
    if 0 in ports:
        ports = None
    try:
        if args.hex:
            text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="ascii")
            records: Iterable[Record] = decode_hex(text)
            f = None
        else:
            f = sys.stdin.buffer if args.file == "-" else open(args.file, "rb")
            records = decode_capture(f, ports)
        try:
            for rec in records:
                out.write(emit(rec) + "\n")
        finally:
            if f is not None and f is not sys.stdin.buffer:
                f.close()
    except BrokenPipeError:
        raise
    except (OSError, ValueError, CaptureError) as exc:
        out.flush()
        print(f"speakerd decode: {exc}", file=sys.stderr)
        return 2
    return 0
