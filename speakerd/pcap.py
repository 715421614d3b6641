"""Packet captures: read pcap/pcapng, dissect down to TCP, write pcap.

Reading: :func:`read_packets` takes a binary file object holding a classic
pcap (either byte order, microsecond or nanosecond timestamps) or a pcapng
file and yields :class:`Packet` records; :func:`dissect` turns one packet of a
supported link type (Ethernet with VLAN tags, Linux cooked SLL and SLL2, raw
IP, BSD loopback/null) into a :class:`TcpSegment`, or ``None`` for anything
that is not TCP over IPv4/IPv6.

Writing: :class:`PcapWriter` takes ``(timestamp, src ip, src port, dst ip,
dst port, payload)`` records and writes a classic pcap with synthesized
Ethernet/IP/TCP headers: a three-way handshake per connection, sequence and
acknowledgement numbers that follow each direction's byte count, and correct
checksums, so tcpdump, tshark and ``speakerd decode`` reassemble the streams.

Plain synchronous code; no sockets.
"""
from __future__ import annotations

import ipaddress
import socket
import struct
import zlib
from dataclasses import dataclass
from typing import BinaryIO, Iterator

# Link-layer header types (tcpdump.org/linktypes.html)
LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_PPP = 9  # RFC 1661, with or without the HDLC-like address/control octets
LINKTYPE_PPP_HDLC = 50  # RFC 1662 PPP in HDLC-like framing
LINKTYPE_RAW = 101
LINKTYPE_C_HDLC = 104  # Cisco HDLC: address, control, EtherType (router serial/POS captures)
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_PPP_WITH_DIR = 204  # one direction octet, then PPP
LINKTYPE_C_HDLC_WITH_DIR = 205  # one direction octet, then Cisco HDLC
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276
DLT_RAW_ALT = (12, 14)  # DLT_RAW as some platforms number it

# PPP protocol numbers (RFC 1661 §2, IANA "PPP DLL Protocol Numbers")
PPP_IPV4 = 0x0021
PPP_IPV6 = 0x0057
PPP_ADDRESS_CONTROL = b"\xff\x03"

READABLE_LINKTYPES = {
    LINKTYPE_NULL: "BSD loopback", LINKTYPE_ETHERNET: "Ethernet", LINKTYPE_PPP: "PPP",
    LINKTYPE_PPP_HDLC: "PPP in HDLC framing", LINKTYPE_RAW: "raw IP", LINKTYPE_C_HDLC: "Cisco HDLC",
    LINKTYPE_LOOP: "OpenBSD loopback", LINKTYPE_LINUX_SLL: "Linux cooked (SLL)",
    LINKTYPE_PPP_WITH_DIR: "PPP with direction", LINKTYPE_C_HDLC_WITH_DIR: "Cisco HDLC with direction",
    LINKTYPE_IPV4: "raw IPv4", LINKTYPE_IPV6: "raw IPv6", LINKTYPE_LINUX_SLL2: "Linux cooked (SLL2)",
    **{n: "raw IP" for n in DLT_RAW_ALT},
}
# a few others seen in router captures, named in the error message
_OTHER_LINKTYPES = {8: "SLIP", 10: "FDDI", 105: "IEEE 802.11", 107: "Frame Relay", 127: "802.11 radiotap",
                    139: "MTP2", 143: "DOCSIS", 147: "user-defined (147)", 192: "PPI", 220: "USB (Linux)"}

PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D
PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_BYTE_ORDER = 0x1A2B3C4D

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
ETH_VLAN = (0x8100, 0x88A8, 0x9100)
IPPROTO_TCP = 6
_IPV6_EXT = (0, 43, 60)  # hop-by-hop, routing, destination options
_IPV6_FRAG = 44

TCP_FIN = 0x01
TCP_SYN = 0x02
TCP_RST = 0x04
TCP_PSH = 0x08
TCP_ACK = 0x10


class CaptureError(ValueError):
    """The file is not a capture this reader understands, or is cut short."""


class UnsupportedLinkType(CaptureError):
    """Packets of a link-layer type the dissector does not read."""

    def __init__(self, linktype: int, number: int) -> None:
        self.linktype = linktype
        name = _OTHER_LINKTYPES.get(linktype)
        what = f"link type {linktype}" + (f" ({name})" if name else "")
        readable = ", ".join(sorted(set(READABLE_LINKTYPES.values())))
        super().__init__(f"packet {number}: cannot read {what}; speakerd decode reads {readable}")


@dataclass(slots=True, frozen=True)
class Packet:
    ts_ns: int  # nanoseconds since the epoch
    linktype: int
    data: bytes
    number: int  # 1-based frame number, as tcpdump/tshark count


@dataclass(slots=True, frozen=True)
class TcpSegment:
    ts_ns: int
    src: bytes  # 4 or 16 bytes
    sport: int
    dst: bytes
    dport: int
    seq: int
    ack: int
    flags: int
    payload: bytes
    number: int = 0


def addr_str(addr: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET if len(addr) == 4 else socket.AF_INET6, addr)


# ---------------------------------------------------------------- reading


def _read(f: BinaryIO, n: int, what: str, allow_eof: bool = False) -> bytes:
    data = f.read(n)
    if len(data) != n:
        if allow_eof and not data:
            return b""
        raise CaptureError(f"capture cut short in {what} ({len(data)} of {n} bytes)")
    return data


def read_packets(f: BinaryIO) -> Iterator[Packet]:
    """Every packet of a pcap or pcapng file, in file order."""
    head = _read(f, 4, "file header", allow_eof=True)
    if not head:
        return
    if struct.unpack("<I", head)[0] == PCAPNG_SHB:
        yield from _read_pcapng(f, head)
        return
    for endian in ("<", ">"):
        (magic,) = struct.unpack(endian + "I", head)
        if magic in (PCAP_MAGIC_US, PCAP_MAGIC_NS):
            yield from _read_pcap(f, endian, magic == PCAP_MAGIC_NS)
            return
    raise CaptureError(f"not a pcap or pcapng file (magic {head.hex()})")


def _read_pcap(f: BinaryIO, e: str, nano: bool) -> Iterator[Packet]:
    rest = _read(f, 20, "pcap header")
    _vmaj, _vmin, _zone, _sig, _snap, linktype = struct.unpack(e + "HHiIII", rest)
    linktype &= 0x0FFFFFFF  # upper bits may carry FCS information
    rec = struct.Struct(e + "IIII")
    scale = 1 if nano else 1000
    number = 0
    while True:
        hdr = _read(f, 16, "record header", allow_eof=True)
        if not hdr:
            return
        sec, frac, caplen, _origlen = rec.unpack(hdr)
        if caplen > 0x4000000:
            raise CaptureError(f"record {number + 1}: captured length {caplen} is not plausible")
        number += 1
        yield Packet(sec * 1_000_000_000 + frac * scale, linktype, _read(f, caplen, "packet data"), number)


def _read_pcapng(f: BinaryIO, first: bytes) -> Iterator[Packet]:
    e = "<"
    interfaces: list[tuple[int, int, int]] = []  # (linktype, units per second, offset seconds)
    number = 0
    btype_raw = first
    while True:
        if not btype_raw:
            return
        lenraw = _read(f, 4, "block length")
        if struct.unpack("<I", btype_raw)[0] == PCAPNG_SHB:
            bom = _read(f, 4, "byte-order magic")
            e = "<" if struct.unpack("<I", bom)[0] == PCAPNG_BYTE_ORDER else ">"
            if struct.unpack(e + "I", bom)[0] != PCAPNG_BYTE_ORDER:
                raise CaptureError("pcapng section header with a bad byte-order magic")
            (blen,) = struct.unpack(e + "I", lenraw)
            _read(f, blen - 12, "section header")
            interfaces = []  # interface ids are per section
        else:
            (btype,) = struct.unpack(e + "I", btype_raw)
            (blen,) = struct.unpack(e + "I", lenraw)
            if blen < 12 or blen % 4:
                raise CaptureError(f"pcapng block of length {blen}")
            body = _read(f, blen - 12, "block body")
            _read(f, 4, "block trailer")
            if btype == 1:  # Interface Description Block
                linktype, _res, _snap = struct.unpack_from(e + "HHI", body)
                units, offset = _pcapng_if_options(body[8:], e)
                interfaces.append((linktype, units, offset))
            elif btype in (6, 2):  # Enhanced Packet Block, obsolete Packet Block
                if btype == 6:
                    ifid, hi, lo, caplen, _orig = struct.unpack_from(e + "IIIII", body)
                else:
                    ifid, _drops, hi, lo, caplen, _orig = struct.unpack_from(e + "HHIIII", body)
                if ifid >= len(interfaces):
                    raise CaptureError(f"packet for undeclared interface {ifid}")
                linktype, units, offset = interfaces[ifid]
                ts = (hi << 32) | lo
                ts_ns = ts * 1_000_000_000 // units + offset * 1_000_000_000
                number += 1
                yield Packet(ts_ns, linktype, bytes(body[20:20 + caplen]), number)
            elif btype == 3:  # Simple Packet Block: no timestamp, interface 0
                (orig,) = struct.unpack_from(e + "I", body)
                linktype = interfaces[0][0] if interfaces else LINKTYPE_ETHERNET
                number += 1
                yield Packet(0, linktype, bytes(body[4:4 + min(orig, len(body) - 4)]), number)
            # other blocks (name resolution, statistics, custom) carry no packets
        btype_raw = _read(f, 4, "block type", allow_eof=True)


def _pcapng_if_options(opts: bytes, e: str) -> tuple[int, int]:
    units, offset = 1_000_000, 0
    off = 0
    while off + 4 <= len(opts):
        code, length = struct.unpack_from(e + "HH", opts, off)
        value = opts[off + 4: off + 4 + length]
        if code == 0:
            break
        if code == 9 and length >= 1:  # if_tsresol
            r = value[0]
            units = 2 ** (r & 0x7F) if r & 0x80 else 10 ** r
        elif code == 14 and length == 8:  # if_tsoffset, seconds
            (offset,) = struct.unpack(e + "q", value)
        off += 4 + length + (-length % 4)
    return units, offset


# ---------------------------------------------------------------- dissecting


def dissect(pkt: Packet) -> TcpSegment | None:
    """The TCP segment in ``pkt``, or None if it holds something else.

    Raises :class:`UnsupportedLinkType` for a link type not in
    :data:`READABLE_LINKTYPES` (rather than silently finding nothing)."""
    data = pkt.data
    lt = pkt.linktype
    if lt == LINKTYPE_ETHERNET:
        if len(data) < 14:
            return None
        (etype,) = struct.unpack_from("!H", data, 12)
        off = 14
        while etype in ETH_VLAN and len(data) >= off + 4:
            (etype,) = struct.unpack_from("!H", data, off + 2)
            off += 4
        return _ip(pkt, etype, data, off)
    if lt == LINKTYPE_LINUX_SLL:
        if len(data) < 16:
            return None
        return _ip(pkt, struct.unpack_from("!H", data, 14)[0], data, 16)
    if lt == LINKTYPE_LINUX_SLL2:
        if len(data) < 20:
            return None
        return _ip(pkt, struct.unpack_from("!H", data, 0)[0], data, 20)
    if lt in (LINKTYPE_NULL, LINKTYPE_LOOP):
        if len(data) < 4:
            return None
        # NULL: host byte order of the capturing machine; LOOP: network order.
        fam = struct.unpack_from("<I", data)[0]
        if fam > 0xFFFF:
            fam = struct.unpack_from(">I", data)[0]
        if fam == 2:
            return _ip(pkt, ETH_IPV4, data, 4)
        if fam in (10, 24, 28, 30):  # AF_INET6 on Linux, the BSDs, macOS
            return _ip(pkt, ETH_IPV6, data, 4)
        return None
    if lt in (LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6) or lt in DLT_RAW_ALT:
        if not data:
            return None
        version = data[0] >> 4
        return _ip(pkt, ETH_IPV4 if version == 4 else ETH_IPV6 if version == 6 else 0, data, 0)
    if lt in (LINKTYPE_C_HDLC, LINKTYPE_C_HDLC_WITH_DIR):
        off = 1 if lt == LINKTYPE_C_HDLC_WITH_DIR else 0
        if len(data) < off + 4:
            return None
        # address (0x0F unicast, 0x8F broadcast), control 0x00, then an EtherType
        return _ip(pkt, struct.unpack_from("!H", data, off + 2)[0], data, off + 4)
    if lt in (LINKTYPE_PPP, LINKTYPE_PPP_HDLC, LINKTYPE_PPP_WITH_DIR):
        off = 1 if lt == LINKTYPE_PPP_WITH_DIR else 0
        if data[off:off + 2] == PPP_ADDRESS_CONTROL:
            off += 2
        if len(data) < off + 1:
            return None
        if data[off] & 1:  # RFC 1661 §6.5: a compressed one-octet protocol field
            proto, off = data[off], off + 1
        elif len(data) >= off + 2:
            proto, off = struct.unpack_from("!H", data, off)[0], off + 2
        else:
            return None
        etype = ETH_IPV4 if proto == PPP_IPV4 else ETH_IPV6 if proto == PPP_IPV6 else 0
        return _ip(pkt, etype, data, off)  # LCP, IPCP, ...: not IP, skipped
    raise UnsupportedLinkType(lt, pkt.number)


def _ip(pkt: Packet, etype: int, data: bytes, off: int) -> TcpSegment | None:
    if etype == ETH_IPV4:
        if len(data) < off + 20 or data[off] >> 4 != 4:
            return None
        ihl = (data[off] & 0x0F) * 4
        total, frag, proto = struct.unpack_from("!H2xH1xB", data, off + 2)
        if proto != IPPROTO_TCP or frag & 0x3FFF:  # not TCP, or a fragment
            return None
        # total length 0: a TSO super-packet captured on the sending host
        end = off + total if total else len(data)
        return _tcp(pkt, data[off + 12: off + 16], data[off + 16: off + 20], data, off + ihl, min(end, len(data)))
    if etype == ETH_IPV6:
        if len(data) < off + 40 or data[off] >> 4 != 6:
            return None
        plen, nh = struct.unpack_from("!HB", data, off + 4)
        src, dst = data[off + 8: off + 24], data[off + 24: off + 40]
        end = off + 40 + plen if plen else len(data)
        p = off + 40
        while nh in _IPV6_EXT and p + 8 <= len(data):
            nh, hlen = data[p], (data[p + 1] + 1) * 8
            p += hlen
        if nh != IPPROTO_TCP:
            return None  # including fragments (44): BGP never fragments
        return _tcp(pkt, src, dst, data, p, min(end, len(data)))
    return None


def _tcp(pkt: Packet, src: bytes, dst: bytes, data: bytes, off: int, end: int) -> TcpSegment | None:
    if end - off < 20:
        return None
    sport, dport, seq, ack, doff, flags = struct.unpack_from("!HHIIBB", data, off)
    hlen = (doff >> 4) * 4
    if hlen < 20 or off + hlen > end:
        return None
    return TcpSegment(pkt.ts_ns, bytes(src), sport, bytes(dst), dport, seq, ack, flags,
                      bytes(data[off + hlen: end]), pkt.number)


def tcp_segments(f: BinaryIO) -> Iterator[TcpSegment]:
    for pkt in read_packets(f):
        seg = dissect(pkt)
        if seg is not None:
            yield seg


# ---------------------------------------------------------------- writing


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


class PcapWriter:
    """Write a classic pcap (Ethernet, microsecond or nanosecond) of TCP streams.

    Each new (src, sport, dst, dport) connection gets a SYN / SYN-ACK / ACK
    first; payloads larger than ``mss`` are split into several segments.
    """

    def __init__(self, f: BinaryIO, nanosecond: bool = False, mss: int = 1460,
                 handshake: bool = True) -> None:
        self._f = f
        self._nano = nanosecond
        self.mss = mss
        self._handshake = handshake
        self._next_seq: dict[tuple, int] = {}  # direction -> next sequence number
        self._ip_id = 1
        magic = PCAP_MAGIC_NS if nanosecond else PCAP_MAGIC_US
        f.write(struct.pack("<IHHiIII", magic, 2, 4, 0, 0, 262144, LINKTYPE_ETHERNET))

    def write(self, ts: float, src: str, sport: int, dst: str, dport: int, payload: bytes) -> None:
        """One chunk of application data from src:sport to dst:dport at ``ts`` seconds."""
        s, d = ipaddress.ip_address(src).packed, ipaddress.ip_address(dst).packed
        if len(s) != len(d):
            raise ValueError("source and destination must be the same address family")
        fwd, rev = (s, sport, d, dport), (d, dport, s, sport)
        if fwd not in self._next_seq:
            self._open(ts, fwd, rev)
        payload = bytes(payload)
        for i in range(0, max(len(payload), 1), self.mss):
            chunk = payload[i:i + self.mss]
            self._segment(ts, fwd, self._next_seq[fwd], self._next_seq[rev], TCP_ACK | TCP_PSH, chunk)
            self._next_seq[fwd] = (self._next_seq[fwd] + len(chunk)) & 0xFFFFFFFF

    def _open(self, ts: float, fwd: tuple, rev: tuple) -> None:
        # Deterministic initial sequence numbers, different per direction.
        isn_f = zlib.crc32(b"%b%d%b%d" % fwd) | 0x1000
        isn_r = zlib.crc32(b"%b%d%b%d" % rev) | 0x2000
        if self._handshake:
            self._segment(ts, fwd, isn_f, 0, TCP_SYN, b"")
            self._segment(ts, rev, isn_r, isn_f + 1, TCP_SYN | TCP_ACK, b"")
            self._segment(ts, fwd, isn_f + 1, isn_r + 1, TCP_ACK, b"")
        self._next_seq[fwd] = (isn_f + 1) & 0xFFFFFFFF
        self._next_seq[rev] = (isn_r + 1) & 0xFFFFFFFF

    def _segment(self, ts: float, d: tuple, seq: int, ack: int, flags: int, payload: bytes) -> None:
        src, sport, dst, dport = d
        tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                          5 << 4, flags, 65535, 0, 0) + payload
        if len(src) == 4:
            pseudo = src + dst + struct.pack("!BBH", 0, IPPROTO_TCP, len(tcp))
            tcp = tcp[:16] + struct.pack("!H", _checksum(pseudo + tcp)) + tcp[18:]
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), self._ip_id & 0xFFFF, 0x4000,
                             64, IPPROTO_TCP, 0, src, dst)
            ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
            etype = ETH_IPV4
            self._ip_id += 1
        else:
            pseudo = src + dst + struct.pack("!IxxxB", len(tcp), IPPROTO_TCP)
            tcp = tcp[:16] + struct.pack("!H", _checksum(pseudo + tcp)) + tcp[18:]
            ip = struct.pack("!IHBB16s16s", 6 << 28, len(tcp), IPPROTO_TCP, 64, src, dst)
            etype = ETH_IPV6
        # locally administered MACs derived from the addresses' last bytes
        eth = b"\x02\x00\x00\x00\x00" + dst[-1:] + b"\x02\x00\x00\x00\x00" + src[-1:] + struct.pack("!H", etype)
        frame = eth + ip + tcp
        ns = round(ts * 1_000_000_000)
        sec, frac = divmod(ns, 1_000_000_000)
        if not self._nano:
            frac //= 1000
        self._f.write(struct.pack("<IIII", sec, frac, len(frame), len(frame)) + frame)

    def close(self) -> None:
        self._f.flush()


# ---------------------------------------------------------------- reassembly

_M32 = 0xFFFFFFFF


def _seq_diff(a: int, b: int) -> int:
    """a - b in 32-bit sequence space, as a signed number."""
    d = (a - b) & _M32
    return d - (1 << 32) if d & 0x80000000 else d


@dataclass(slots=True, frozen=True)
class Chunk:
    """In-order stream bytes; ``gap`` bytes were never captured just before them."""
    data: bytes
    gap: int = 0


class TcpStream:
    """One direction of a TCP connection, put back in sequence order.

    Retransmitted and overlapping bytes are delivered once; segments that
    arrive early wait for the hole before them.  When more than
    ``max_pending`` bytes wait (the capture lost a segment for good), the
    stream jumps over the hole and says so with :attr:`Chunk.gap`.
    """

    __slots__ = ("next_seq", "pending", "pending_bytes", "max_pending", "from_syn")

    def __init__(self, max_pending: int = 4 << 20) -> None:
        self.next_seq: int | None = None
        self.pending: dict[int, bytes] = {}
        self.pending_bytes = 0
        self.max_pending = max_pending
        self.from_syn = False  # True when the stream start was captured

    def push(self, seq: int, flags: int, payload: bytes) -> list[Chunk]:
        out: list[Chunk] = []
        if flags & TCP_SYN:
            self.next_seq = (seq + 1) & _M32
            self.pending.clear()
            self.pending_bytes = 0
            self.from_syn = True
            seq = (seq + 1) & _M32
        if not payload:
            return out
        if self.next_seq is None:
            self.next_seq = seq
        rel = _seq_diff(seq, self.next_seq)
        if rel < 0:
            if -rel >= len(payload):
                return out  # pure retransmission
            payload = payload[-rel:]
            seq, rel = self.next_seq, 0
        if rel > 0:
            if len(payload) > len(self.pending.get(seq, b"")):
                self.pending_bytes += len(payload) - len(self.pending.get(seq, b""))
                self.pending[seq] = payload
            if self.pending_bytes > self.max_pending:
                out.extend(self._skip_hole())
            return out
        out.append(Chunk(payload))
        self.next_seq = (seq + len(payload)) & _M32
        out.extend(self._drain(0))
        return out

    def _drain(self, gap: int) -> list[Chunk]:
        out: list[Chunk] = []
        progress = True
        while progress and self.pending:
            progress = False
            for seq in list(self.pending):
                rel = _seq_diff(seq, self.next_seq)
                if rel > 0:
                    continue
                data = self.pending.pop(seq)
                self.pending_bytes -= len(data)
                progress = True
                if -rel < len(data):
                    data = data[-rel:]
                    out.append(Chunk(data, gap))
                    gap = 0
                    self.next_seq = (self.next_seq + len(data)) & _M32
        return out

    def _skip_hole(self) -> list[Chunk]:
        first = min(self.pending, key=lambda s: _seq_diff(s, self.next_seq))
        gap = _seq_diff(first, self.next_seq)
        self.next_seq = first
        return self._drain(gap)

    def acked(self, ack: int) -> list[Chunk]:
        """The peer acknowledged up to ``ack``: a hole below it was lost by the capture, not the network.

        Only acted on when data after the hole is waiting and the peer has
        acknowledged some of it too, so a capture that reorders an ACK ahead
        of its data does not make us skip bytes that are still coming.
        """
        if not self.pending or self.next_seq is None or _seq_diff(ack, self.next_seq) <= 0:
            return []
        first = min(self.pending, key=lambda s: _seq_diff(s, self.next_seq))
        if _seq_diff(first, ack) >= 0:
            return []
        return self._skip_hole()

    def flush(self) -> list[Chunk]:
        """At the end of the capture: deliver what waits behind holes."""
        out: list[Chunk] = []
        while self.pending:
            out.extend(self._skip_hole())
        return out
