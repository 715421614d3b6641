"""`speakerd decode`: session context from the OPENs, malformed messages, the command line."""
from __future__ import annotations

import io
import json
import struct
import sys
from pathlib import Path

import pytest

from speakerd import cli
from speakerd.commands.decode import decode_capture, decode_hex
from speakerd.pcap import PcapWriter
from speakerd.wire.capabilities import AddPath, ExtendedMessage, Multiprotocol, Negotiated
from speakerd.wire.constants import AS_TRANS
from speakerd.wire.framing import encode, frame
from speakerd.wire.messages import KEEPALIVE, Notification, Open
from speakerd.wire.nlri import str_to_key
from speakerd.wire.update import PathAttributes, Update

DATA = Path(__file__).resolve().parent.parent / "data"
KA = encode(KEEPALIVE)
A, B = ("10.0.0.1", 40000), ("10.0.0.2", 179)


def _key(text: str) -> int:
    return str_to_key(text)[1]


def _session(open_a: Open, open_b: Open, *after_a: bytes) -> bytes:
    """OPEN from A, OPEN from B, then ``after_a`` messages from A, as a pcap."""
    b = io.BytesIO()
    w = PcapWriter(b)
    w.write(1.0, *A, *B, encode(open_a))
    w.write(1.1, *B, *A, encode(open_b))
    for i, m in enumerate(after_a):
        w.write(2.0 + i, *A, *B, m)
    return b.getvalue()


def _decoded(pcap: bytes):
    return [r for r in decode_capture(io.BytesIO(pcap)) if not r.note]


ATTRS = PathAttributes(origin=0, as_path=((2, (65001, 65002)),), next_hop=0x0A000001)


def test_two_octet_as_session_is_decoded_with_two_octet_as_paths():
    body = Update(nlri=[_key("10.1.0.0/16")], attrs=ATTRS).encode_body(Negotiated(four_octet_as=False))
    old_a, old_b = Open(65001, 90, 1, (Multiprotocol(1, 1),)), Open(65002, 90, 2, (Multiprotocol(1, 1),))
    recs = _decoded(_session(old_a, old_b, frame(2, body)))
    upd = recs[2].msg
    assert recs[2].error is None and upd.attrs.as_path == ((2, (65001, 65002)),)
    # the same bytes without the OPENs: the default (4-octet) context misreads them
    alone = decode_hex(frame(2, body).hex())[0]
    assert alone.error is not None or alone.msg.attrs.as_path != ((2, (65001, 65002)),)


def test_add_path_is_used_once_both_opens_agree():
    attrs = Update(attrs=ATTRS).encode_body()[2:]  # withdrawn-length field cut off: attrs len + attrs
    nlri = struct.pack("!IB", 7, 24) + bytes([10, 9, 8])  # path id 7, 10.9.8.0/24
    body = b"\0\0" + attrs + nlri
    caps = (Multiprotocol(1, 1), AddPath(((1, 1, 3),)))
    recs = _decoded(_session(Open.build(65001, 90, 1, caps), Open.build(65002, 90, 2, caps), frame(2, body)))
    assert recs[2].error is None and recs[2].msg.nlri == [_key("10.9.8.0/24")]


def test_extended_message_only_when_negotiated():
    big = Update(nlri=[_key(f"10.{i >> 8}.{i & 255}.0/24") for i in range(1200)], attrs=ATTRS)
    body = big.encode_body()
    assert len(body) > 4096
    plain = (Multiprotocol(1, 1),)
    recs = _decoded(_session(Open.build(65001, 90, 1, plain), Open.build(65002, 90, 2, plain + (ExtendedMessage(),)),
                             frame(2, body), KA))
    assert recs[2].error is not None and recs[2].error.code == 1 and recs[2].error.subcode == 2
    assert recs[3].msg is KEEPALIVE  # decoding goes on
    ext = plain + (ExtendedMessage(),)
    recs = _decoded(_session(Open.build(65001, 90, 1, ext), Open.build(65002, 90, 2, ext), frame(2, body)))
    assert recs[2].error is None and len(recs[2].msg.nlri) == 1200


def test_malformed_message_is_reported_and_decoding_continues():
    bad = frame(2, b"\x00\x10" + b"\x00" * 4)  # withdrawn length overruns the message
    bad_type = b"\xff" * 16 + b"\x00\x13\x09"
    lines = decode_hex((bad + bad_type + KA).hex())
    assert [(r.error.code, r.error.subcode) if r.error else type(r.msg).__name__ for r in lines if not r.note] == [
        (3, 1), (1, 3), "Keepalive"]


def test_hex_accepts_separators_and_reports_a_cut_message():
    text = "0x" + ":".join(f"{b:02x}" for b in KA) + "\n" + KA.hex()[:20]
    recs = decode_hex(text)
    assert recs[0].msg is KEEPALIVE and recs[1].note.startswith("input ends inside a message")
    with pytest.raises(ValueError, match="not hex"):
        decode_hex("zz")


# ------------------------------------------------------------------ command line


def test_cli_json_on_the_real_capture(capsys):
    assert cli.main(["decode", "--json", str(DATA / "frr-gobgp.pcap")]) == 0
    recs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {r["type"] for r in recs} == {"OPEN", "KEEPALIVE", "UPDATE", "NOTIFICATION"}
    for r in recs:
        assert {"ts", "frame", "src", "sport", "dst", "dport", "type", "length"} <= r.keys()
    upd = next(r for r in recs if r["type"] == "UPDATE" and "203.0.113.0/24" in r["nlri"])
    assert set(upd) >= {"withdrawn", "attrs", "nlri", "mp_reach", "mp_unreach", "treat_as_withdraw", "errors",
                        "end_of_rib"}
    assert upd["attrs"]["communities"] == ["65002:300"] and upd["attrs"]["large_communities"] == ["65002:3:4"]


def test_cli_text_on_the_real_capture(capsys):
    assert cli.main(["decode", str(DATA / "frr-gobgp.pcap")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.endswith('NOTIFICATION len 37 Cease/Administrative Shutdown (6/2) "sdc maintenance"')
               for line in lines)
    assert any("10.255.61.2.179 > 10.255.61.1." in line and "UPDATE len 76 origin incomplete as-path [65002] "
               "next-hop 10.255.61.2 med 50 communities 65002:300 large-communities 65002:3:4 nlri 203.0.113.0/24"
               in line for line in lines)
    assert any("mp-reach ipv6/unicast nh fd00:5dc::2 nlri 2001:db8:200::/48" in line for line in lines)
    assert sum(" OPEN len " in line for line in lines) == 4


def test_cli_reads_pcap_from_stdin(capsys, monkeypatch):
    data = (DATA / "frr-gobgp.pcapng").read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    assert cli.main(["decode", "-"]) == 0
    assert sum(" OPEN " in line for line in capsys.readouterr().out.splitlines()) == 4


def test_cli_hex_from_stdin(capsys, monkeypatch):
    msg = encode(Notification.cease(2, "going down"))
    monkeypatch.setattr(sys, "stdin", io.StringIO(msg.hex()))
    assert cli.main(["decode", "--hex", "--json", "-"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec == {"type": "NOTIFICATION", "length": len(msg), "code": 6, "subcode": 2,
                   "name": "Cease/Administrative Shutdown", "data": msg[21:].hex(), "shutdown_message": "going down"}


def test_cli_port_option(capsys, tmp_path):
    b = io.BytesIO()
    w = PcapWriter(b)
    w.write(1.0, "127.0.0.1", 40000, "127.0.0.1", 1790, KA)
    path = tmp_path / "p.pcap"
    path.write_bytes(b.getvalue())
    assert cli.main(["decode", str(path)]) == 0
    assert capsys.readouterr().out == ""
    assert cli.main(["decode", "--port", "1790", str(path)]) == 0
    assert capsys.readouterr().out.split(": ", 1)[1] == "KEEPALIVE len 19\n"


def test_cli_bad_input_exits_2(capsys, tmp_path):
    assert cli.main(["decode", str(tmp_path / "missing.pcap")]) == 2
    assert "speakerd decode:" in capsys.readouterr().err
    junk = tmp_path / "junk"
    junk.write_bytes(b"this is not a capture")
    assert cli.main(["decode", str(junk)]) == 2
    assert "not a pcap" in capsys.readouterr().err


def test_asn_shown_is_the_four_octet_one():
    recs = _decoded(_session(Open.build(4200000001, 90, 1), Open.build(65002, 90, 2)))
    assert recs[0].msg.my_as == AS_TRANS
    from speakerd.render import record_fields, record_line
    assert record_fields(recs[0])["asn"] == 4200000001 and " as 4200000001 " in record_line(recs[0])


def test_cli_says_which_link_type_it_cannot_read(capsys, tmp_path):
    # a capture with one packet of link type 107 (Frame Relay): nothing to print, exit 2
    path = tmp_path / "fr.pcap"
    path.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 107)
                     + struct.pack("<IIII", 0, 0, 4, 4) + b"\x00\x01\x03\x08")
    assert cli.main(["decode", str(path)]) == 2
    err = capsys.readouterr().err
    assert "link type 107 (Frame Relay)" in err and "Cisco HDLC" in err and "PPP" in err


def _mp_update(attr_code: int, value: bytes) -> bytes:
    mp = bytes((0x90, attr_code)) + struct.pack("!H", len(value)) + value
    attrs = bytes((0x40, 1, 1, 0)) + bytes((0x40, 2, 0)) + mp
    body = struct.pack("!H", 0) + struct.pack("!H", len(attrs)) + attrs
    return b"\xff" * 16 + struct.pack("!HB", 19 + len(body), 2) + body


@pytest.mark.parametrize("safi,value", [
    (133, struct.pack("!HBB", 1, 133, 0) + b"\x00" + bytes((5, 1, 24, 10, 0, 0))),  # flowspec: no next hop
    (4, struct.pack("!HBB", 1, 4, 4) + bytes((10, 0, 0, 1)) + b"\x00" + bytes((48, 0, 0x10, 0x01, 10, 0, 1))),
])
def test_non_unicast_families_are_not_decoded_rather_than_malformed(safi, value):
    from speakerd.commands.decode import decode_message
    from speakerd.render import record_fields, record_line
    from speakerd.wire.capabilities import DEFAULT_CONTEXT
    rec = decode_message(_mp_update(14, value), DEFAULT_CONTEXT)
    assert rec.error is None
    line = record_line(rec)
    assert f"not decoded (SAFI {safi}" in line and "MALFORMED" not in line
    assert record_fields(rec)["mp_reach"]["not_decoded"] == f"SAFI {safi}"
    # a withdrawal of such a family is not an End-of-RIB either
    unreach = decode_message(_mp_update(15, struct.pack("!HB", 1, safi) + bytes((5, 1, 24, 10, 0, 0))),
                             DEFAULT_CONTEXT)
    assert unreach.error is None and unreach.msg.end_of_rib is None
    assert f"not decoded (SAFI {safi}" in record_line(unreach)
