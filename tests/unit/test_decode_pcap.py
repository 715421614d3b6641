"""speakerd.pcap: reading every supported file format and link type, TCP reassembly, the writer."""
from __future__ import annotations

import io
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from speakerd import pcap
from speakerd.commands.decode import decode_capture
from speakerd.pcap import CaptureError, PcapWriter, TcpStream, read_packets, tcp_segments
from speakerd.wire.framing import encode
from speakerd.wire.messages import KEEPALIVE, Notification, Open, RouteRefresh
from speakerd.wire.capabilities import Multiprotocol

DATA = Path(__file__).resolve().parent.parent / "data"

OPEN_A = encode(Open.build(65001, 90, 0x0A000001, [Multiprotocol(1, 1)]))
OPEN_B = encode(Open.build(65002, 90, 0x0A000002, [Multiprotocol(1, 1)]))
KA = encode(KEEPALIVE)


def _session_pcap(**kw) -> bytes:
    """A little IPv4 + IPv6 session, as PcapWriter writes it."""
    b = io.BytesIO()
    w = PcapWriter(b, **kw)
    w.write(10.25, "10.0.0.1", 40000, "10.0.0.2", 179, OPEN_A)
    w.write(10.5, "10.0.0.2", 179, "10.0.0.1", 40000, OPEN_B + KA)
    w.write(11.0, "10.0.0.1", 40000, "10.0.0.2", 179, KA + encode(RouteRefresh(1, 1)))
    w.write(12.0, "fd00::1", 40001, "fd00::2", 179, OPEN_A)
    w.write(12.5, "fd00::2", 179, "fd00::1", 40001, encode(Notification.cease(2, "bye")))
    return b.getvalue()


def _types(data: bytes) -> list[tuple[str, str, int | None]]:
    from speakerd.render import record_fields
    return [(r["src"], r["type"], r.get("frame") and r["ts"]) for r in map(record_fields, decode_capture(io.BytesIO(data)))]


EXPECTED = [("10.0.0.1", "OPEN", 10.25), ("10.0.0.2", "OPEN", 10.5), ("10.0.0.2", "KEEPALIVE", 10.5),
            ("10.0.0.1", "KEEPALIVE", 11.0), ("10.0.0.1", "ROUTE-REFRESH", 11.0),
            ("fd00::1", "OPEN", 12.0), ("fd00::2", "NOTIFICATION", 12.5)]


# ------------------------------------------------------------------ transcoding helpers


def _frames(data: bytes):
    """(ts_ns, ethernet frame) of a pcap written by PcapWriter."""
    return [(p.ts_ns, p.data) for p in read_packets(io.BytesIO(data))]


def _pcap(frames, linktype: int, endian: str = "<", nano: bool = False) -> bytes:
    magic = pcap.PCAP_MAGIC_NS if nano else pcap.PCAP_MAGIC_US
    out = [struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, 65535, linktype)]
    for ts, f in frames:
        sec, frac = divmod(ts, 1_000_000_000)
        out.append(struct.pack(endian + "IIII", sec, frac if nano else frac // 1000, len(f), len(f)) + f)
    return b"".join(out)


def _pcapng(frames, linktype: int, endian: str = "<", tsresol: int | None = None) -> bytes:
    def block(btype, body):
        body += b"\0" * (-len(body) % 4)
        n = len(body) + 12
        return struct.pack(endian + "II", btype, n) + body + struct.pack(endian + "I", n)
    units = 1_000_000
    opts = b""
    if tsresol is not None:
        opts = struct.pack(endian + "HHB3x", 9, 1, tsresol) + struct.pack(endian + "HH", 0, 0)
        units = 10 ** tsresol
    out = [block(0x0A0D0D0A, struct.pack(endian + "IHHq", 0x1A2B3C4D, 1, 0, -1)),
           block(1, struct.pack(endian + "HHI", linktype, 0, 65535) + opts)]
    for ts, f in frames:
        t = ts * units // 1_000_000_000
        out.append(block(6, struct.pack(endian + "IIIII", 0, t >> 32, t & 0xFFFFFFFF, len(f), len(f)) + f))
    return b"".join(out)


def _relink(frames, linktype: int):
    """Replace the Ethernet header by another link type's."""
    out = []
    for ts, f in frames:
        etype, ip = struct.unpack_from("!H", f, 12)[0], f[14:]
        v6 = etype == 0x86DD
        if linktype == pcap.LINKTYPE_LINUX_SLL:
            hdr = struct.pack("!HHH8sH", 0, 1, 6, b"\x02" * 6 + b"\0\0", etype)
        elif linktype == pcap.LINKTYPE_LINUX_SLL2:
            hdr = struct.pack("!HHIHBB8s", etype, 0, 2, 1, 0, 6, b"\x02" * 6 + b"\0\0")
        elif linktype == pcap.LINKTYPE_RAW:
            hdr = b""
        elif linktype == pcap.LINKTYPE_NULL:
            hdr = struct.pack("<I", 30 if v6 else 2)  # host order of a little-endian BSD
        elif linktype == pcap.LINKTYPE_LOOP:
            hdr = struct.pack(">I", 24 if v6 else 2)
        elif linktype == pcap.LINKTYPE_ETHERNET:  # add an 802.1Q tag
            hdr = f[:12] + struct.pack("!HH", 0x8100, 100) + f[12:14]
        elif linktype == pcap.LINKTYPE_C_HDLC:  # unicast address, control 0, EtherType
            hdr = struct.pack("!BBH", 0x0F, 0x00, etype)
        elif linktype == pcap.LINKTYPE_C_HDLC_WITH_DIR:
            hdr = b"\x01" + struct.pack("!BBH", 0x8F, 0x00, etype)
        elif linktype == pcap.LINKTYPE_PPP:  # protocol field compressed to one octet (RFC 1661 §6.5)
            hdr = bytes((0x57 if v6 else 0x21,))
        elif linktype == pcap.LINKTYPE_PPP_HDLC:  # address/control, two-octet protocol
            hdr = b"\xff\x03" + struct.pack("!H", 0x0057 if v6 else 0x0021)
        elif linktype == pcap.LINKTYPE_PPP_WITH_DIR:
            hdr = b"\x00\xff\x03" + struct.pack("!H", 0x0057 if v6 else 0x0021)
        out.append((ts, hdr + ip))
    return out


# ------------------------------------------------------------------ reading


def test_writer_output_decodes_back():
    assert _types(_session_pcap()) == EXPECTED


@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
def test_classic_pcap_both_byte_orders_and_resolutions(endian, nano):
    data = _pcap(_frames(_session_pcap()), pcap.LINKTYPE_ETHERNET, endian, nano)
    assert _types(data) == EXPECTED


@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("tsresol", [None, 9])
def test_pcapng_both_byte_orders_and_resolutions(endian, tsresol):
    data = _pcapng(_frames(_session_pcap()), pcap.LINKTYPE_ETHERNET, endian, tsresol)
    assert _types(data) == EXPECTED


@pytest.mark.parametrize("linktype", [pcap.LINKTYPE_ETHERNET, pcap.LINKTYPE_LINUX_SLL, pcap.LINKTYPE_LINUX_SLL2,
                                      pcap.LINKTYPE_RAW, pcap.LINKTYPE_NULL, pcap.LINKTYPE_LOOP,
                                      pcap.LINKTYPE_C_HDLC, pcap.LINKTYPE_C_HDLC_WITH_DIR, pcap.LINKTYPE_PPP,
                                      pcap.LINKTYPE_PPP_HDLC, pcap.LINKTYPE_PPP_WITH_DIR])
def test_link_types(linktype):
    data = _pcap(_relink(_frames(_session_pcap()), linktype), linktype)
    assert _types(data) == EXPECTED


def test_ppp_control_protocols_are_skipped():
    lcp = pcap.Packet(0, pcap.LINKTYPE_PPP_HDLC, b"\xff\x03\xc0\x21" + b"\x01\x01\x00\x04", 1)
    assert pcap.dissect(lcp) is None


def test_an_unreadable_link_type_is_an_error_naming_it():
    frames = _frames(_session_pcap())
    data = _pcap([(ts, f[14:]) for ts, f in frames], 107)  # Frame Relay
    with pytest.raises(pcap.UnsupportedLinkType, match=r"link type 107 \(Frame Relay\).*Cisco HDLC"):
        list(pcap.tcp_segments(io.BytesIO(data)))


def test_nanosecond_timestamps_are_kept():
    frames = [(1_700_000_000_123_456_789, f) for _, f in _frames(_session_pcap())]
    pkts = list(read_packets(io.BytesIO(_pcap(frames, 1, nano=True))))
    assert pkts[0].ts_ns == 1_700_000_000_123_456_789
    pkts = list(read_packets(io.BytesIO(_pcapng(frames, 1, tsresol=9))))
    assert pkts[0].ts_ns == 1_700_000_000_123_456_789


def test_real_capture_pcap_and_pcapng_agree():
    a = _types((DATA / "frr-gobgp.pcap").read_bytes())
    b = _types((DATA / "frr-gobgp.pcapng").read_bytes())
    assert a == b and len(a) > 10


def test_not_a_capture():
    with pytest.raises(CaptureError, match="not a pcap"):
        list(read_packets(io.BytesIO(b"hello world, not a capture")))


def test_truncated_capture_raises_after_the_whole_packets():
    data = _session_pcap()
    got = []
    with pytest.raises(CaptureError, match="cut short"):
        for p in read_packets(io.BytesIO(data[:-5])):
            got.append(p)
    assert len(got) == len(_frames(data)) - 1


def test_empty_input_has_no_packets():
    assert list(read_packets(io.BytesIO(b""))) == []


def test_non_tcp_and_fragments_are_ignored():
    udp = bytes.fromhex("4500001c000100004011") + b"\0\0" + bytes([10, 0, 0, 1, 10, 0, 0, 2]) + b"\0" * 8
    frag = bytearray(_frames(_session_pcap())[3][1][14:])
    frag[6:8] = b"\x00\x10"  # fragment offset 16
    pkts = [pcap.Packet(0, pcap.LINKTYPE_RAW, udp, 1), pcap.Packet(0, pcap.LINKTYPE_RAW, bytes(frag), 2)]
    assert [pcap.dissect(p) for p in pkts] == [None, None]


# ------------------------------------------------------------------ reassembly


def _stream(pieces, isn=1000, syn=True):
    s = TcpStream()
    out = []
    if syn:
        out += s.push(isn, pcap.TCP_SYN, b"")
    for off, data in pieces:
        out += s.push((isn + 1 + off) & 0xFFFFFFFF, pcap.TCP_ACK, data)
    out += s.flush()
    return out


def test_reassembly_out_of_order_and_duplicates():
    data = bytes(range(256)) * 4
    pieces = [(0, data[:100]), (300, data[300:600]), (100, data[100:300]), (0, data[:50]),
              (250, data[250:400]), (600, data[600:]), (600, data[600:])]
    chunks = _stream(pieces)
    assert b"".join(c.data for c in chunks) == data
    assert all(c.gap == 0 for c in chunks)


def test_reassembly_across_sequence_wraparound():
    data = bytes(range(200))
    chunks = _stream([(100, data[100:]), (0, data[:100])], isn=0xFFFFFFF0)
    assert b"".join(c.data for c in chunks) == data


def test_reassembly_reports_a_hole_that_never_fills():
    chunks = _stream([(0, b"a" * 10), (20, b"c" * 10)])
    assert [(c.data, c.gap) for c in chunks] == [(b"a" * 10, 0), (b"c" * 10, 10)]


def test_hole_makes_the_decoder_resynchronise():
    # Drop the TCP segment that carries the second OPEN's first bytes.
    b = io.BytesIO()
    w = PcapWriter(b, mss=20)
    w.write(1.0, "10.0.0.1", 40000, "10.0.0.2", 179, OPEN_A + KA + KA)
    w.write(2.0, "10.0.0.2", 179, "10.0.0.1", 40000, b"")  # the peer ACKs everything
    frames = _frames(b.getvalue())
    del frames[4]  # handshake is frames 0-2; frame 3 = first 20 bytes of the OPEN
    recs = list(decode_capture(io.BytesIO(_pcap(frames, 1))))
    assert [r.note or type(r.msg).__name__ for r in recs] == [
        "20 bytes missing from the capture", "skipped 23 bytes to the next BGP marker", "Keepalive", "Keepalive"]
    # known lost when the ACK is seen, not only at the end of the capture
    assert recs[0].ts_ns == 2_000_000_000


def test_hole_is_skipped_only_when_the_ack_covers_later_data():
    s = TcpStream()
    s.push(99, pcap.TCP_SYN, b"")
    assert [c.data for c in s.push(100, 0, b"a" * 10)] == [b"a" * 10]
    assert s.push(120, 0, b"c" * 10) == []
    assert s.acked(115) == []  # the hole may still be filled by a retransmission
    assert s.acked(125) == [pcap.Chunk(b"c" * 10, 10)]


def test_capture_started_mid_stream_finds_the_next_message():
    b = io.BytesIO()
    w = PcapWriter(b, handshake=False)
    w.write(1.0, "10.0.0.1", 40000, "10.0.0.2", 179, OPEN_A[7:] + KA)
    recs = list(decode_capture(io.BytesIO(b.getvalue())))
    assert [r.note or type(r.msg).__name__ for r in recs] == [
        f"skipped {len(OPEN_A) - 7} bytes to the next BGP marker", "Keepalive"]


def test_other_ports_need_port_option():
    b = io.BytesIO()
    w = PcapWriter(b)
    w.write(1.0, "127.0.0.1", 40000, "127.0.0.2", 1179, KA)
    assert list(decode_capture(io.BytesIO(b.getvalue()))) == []
    assert len(list(decode_capture(io.BytesIO(b.getvalue()), ports=[1179]))) == 1
    assert len(list(decode_capture(io.BytesIO(b.getvalue()), ports=None))) == 1


# ------------------------------------------------------------------ writer


def test_writer_splits_at_mss_with_consecutive_sequence_numbers():
    b = io.BytesIO()
    w = PcapWriter(b, mss=100)
    w.write(1.0, "10.0.0.1", 40000, "10.0.0.2", 179, bytes(250))
    segs = [s for s in tcp_segments(io.BytesIO(b.getvalue())) if s.payload]
    assert [len(s.payload) for s in segs] == [100, 100, 50]
    assert [s.seq - segs[0].seq for s in segs] == [0, 100, 200]
    syn = next(s for s in tcp_segments(io.BytesIO(b.getvalue())) if s.flags & pcap.TCP_SYN)
    assert segs[0].seq == syn.seq + 1


def test_writer_checksums_are_valid():
    frames = _frames(_session_pcap())
    for _, f in frames:
        ip = f[14:]
        if f[12:14] == b"\x08\x00":
            assert pcap._checksum(ip[:20]) == 0
            tcp = ip[20:]
            assert pcap._checksum(ip[12:20] + struct.pack("!BBH", 0, 6, len(tcp)) + tcp) == 0
        else:
            tcp = ip[40:]
            assert pcap._checksum(ip[8:40] + struct.pack("!IxxxB", len(tcp), 6) + tcp) == 0


@pytest.mark.skipif(not shutil.which("tshark"), reason="tshark not installed")
def test_tshark_reads_the_writer_output(tmp_path):
    path = tmp_path / "w.pcap"
    path.write_bytes(_session_pcap(mss=30))
    out = subprocess.run(["tshark", "-r", str(path), "-Y", "bgp", "-T", "fields", "-e", "bgp.type",
                          "-o", "tcp.check_checksum:TRUE"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    types = [int(t) for line in out.split() for t in line.split(",")]
    assert types == [1, 1, 4, 4, 5, 1, 3]
