"""speakerd.render: the text line and the JSON fields of every message kind."""
from __future__ import annotations

import json

from speakerd.render import Record, message_fields, message_text, record_fields, record_line
from speakerd.wire import capabilities as caps
from speakerd.wire.errors import UpdateError
from speakerd.wire.messages import KEEPALIVE, Notification, Open, RouteRefresh
from speakerd.wire.nlri import str_to_key
from speakerd.wire.update import MpReach, MpUnreach, PathAttributes, Update


def _k(text: str) -> int:
    return str_to_key(text)[1]


ATTRS = PathAttributes(
    origin=0, as_path=((2, (65001, 65002)), (1, (65010, 65011))), next_hop=0x0A000001, med=5, local_pref=100,
    atomic_aggregate=True, aggregator=(65001, 0x01010101), communities=(0xFDE80064, 0xFFFFFF01),
    extended_communities=(0x0002FDE800000064, 0x010301020304000A, 0x0202FBF0F0800007, 0x8006000000000000),
    large_communities=((4200000000, 1, 2),), originator_id=0x02020202, cluster_list=(0x03030303,),
    unknown=((0xC0, 99, b"\x01\x02"),))


def test_update_json_fields():
    u = Update(withdrawn=[_k("192.0.2.0/25")], attrs=ATTRS, nlri=[_k("10.1.0.0/16")])
    f = message_fields(u)
    assert f == {
        "type": "UPDATE", "withdrawn": ["192.0.2.0/25"], "nlri": ["10.1.0.0/16"],
        "attrs": {
            "origin": "igp",
            "as_path": [{"type": "sequence", "asns": [65001, 65002]}, {"type": "set", "asns": [65010, 65011]}],
            "next_hop": "10.0.0.1", "med": 5, "local_pref": 100, "atomic_aggregate": True,
            "aggregator": {"asn": 65001, "id": "1.1.1.1"},
            "communities": ["65000:100", "65535:65281"],
            "extended_communities": [
                {"hex": "0002fde800000064", "type": "rt", "value": "65000:100"},
                {"hex": "010301020304000a", "type": "soo", "value": "1.2.3.4:10"},
                {"hex": "0202fbf0f0800007", "type": "rt", "value": "4226871424:7"},
                {"hex": "8006000000000000"},
            ],
            "large_communities": ["4200000000:1:2"], "originator_id": "2.2.2.2", "cluster_list": ["3.3.3.3"],
            "unknown": [{"flags": 0xC0, "type": 99, "value": "0102"}],
        },
        "mp_reach": None, "mp_unreach": None, "treat_as_withdraw": False, "errors": [], "end_of_rib": None,
    }
    json.dumps(f)  # plain JSON types only


def test_update_text():
    u = Update(withdrawn=[_k("192.0.2.0/25")], attrs=ATTRS, nlri=[_k("10.1.0.0/16")])
    assert message_text(u) == (
        "UPDATE withdrawn 192.0.2.0/25 origin igp as-path [65001 65002 {65010,65011}] next-hop 10.0.0.1 med 5 "
        "local-pref 100 atomic-aggregate aggregator 65001/1.1.1.1 communities 65000:100 65535:65281 "
        "ext-communities rt:65000:100 soo:1.2.3.4:10 rt:4226871424:7 8006000000000000 "
        "large-communities 4200000000:1:2 originator-id 2.2.2.2 cluster-list 3.3.3.3 "
        "unknown attr99(flags 0xc0):0102 nlri 10.1.0.0/16")


def test_mp_update_and_end_of_rib():
    nh = bytes.fromhex("20010db8000000000000000000000001fe800000000000000000000000000001")
    u = Update(attrs=PathAttributes(origin=0, as_path=()), mp_reach=MpReach(2, 1, nh, [_k("2001:db8:1::/48")]),
               mp_unreach=MpUnreach(2, 1, [_k("2001:db8:2::/48")]))
    f = message_fields(u)
    assert f["mp_reach"] == {"afi": "ipv6", "safi": "unicast", "next_hop": ["2001:db8::1", "fe80::1"],
                             "nlri": ["2001:db8:1::/48"]}
    assert f["mp_unreach"] == {"afi": "ipv6", "safi": "unicast", "withdrawn": ["2001:db8:2::/48"]}
    assert message_text(u) == ("UPDATE mp-withdrawn ipv6/unicast 2001:db8:2::/48 origin igp as-path [(empty)] "
                               "mp-reach ipv6/unicast nh 2001:db8::1,fe80::1 nlri 2001:db8:1::/48")
    assert message_fields(Update.eor())["end_of_rib"] == "ipv4/unicast"
    assert message_text(Update.eor(2, 1)) == "UPDATE End-of-RIB ipv6/unicast"


def test_long_prefix_lists_are_cut_in_text_only():
    u = Update(attrs=PathAttributes(origin=0, as_path=(), next_hop=1), nlri=[_k(f"10.0.{i}.0/24") for i in range(25)])
    assert message_text(u).endswith("10.0.19.0/24 ... (+5 more)")
    assert len(message_fields(u)["nlri"]) == 25


def test_update_with_rfc7606_outcome():
    err = UpdateError(subcode=6, data=b"\x40\x01\x01\x05", reason="ORIGIN value 5")
    u = Update(attrs=PathAttributes(), nlri=[_k("10.0.0.0/8")], treat_as_withdraw=True, errors=(err,))
    f = message_fields(u)
    assert f["treat_as_withdraw"] and f["errors"] == [
        {"code": 3, "subcode": 6, "name": "UPDATE Message/Invalid Origin Attribute", "reason": "ORIGIN value 5",
         "data": "40010105"}]
    assert "TREAT-AS-WITHDRAW error [UPDATE Message/Invalid Origin Attribute: ORIGIN value 5]" in message_text(u)


def test_open_notification_keepalive_route_refresh():
    o = Open.build(65001, 90, 0x0A000001, [caps.Multiprotocol(2, 1), caps.RouteRefresh(),
                                           caps.GracefulRestart(0x8, 120, ((1, 1, 0x80),)),
                                           caps.AddPath(((1, 1, 1),)), caps.UnknownCapability(200, b"\x01")])
    assert message_text(o) == ("OPEN as 65001 hold 90 id 10.0.0.1 caps mp:ipv6/unicast route-refresh "
                               "graceful-restart:120s:R add-path:ipv4/unicast/receive cap200:01 as4:65001")
    f = message_fields(o)
    assert f["capabilities"][2] == {"code": 64, "name": "graceful-restart", "restart_flags": 8, "restart_time": 120,
                                    "families": [{"afi": "ipv4", "safi": "unicast", "flags": 128}]}
    assert f["capabilities"][4] == {"code": 200, "name": "capability-200", "value": "01"}
    n = Notification(2, 2, b"\xfd\xe8")
    assert message_text(n) == "NOTIFICATION OPEN Message/Bad Peer AS (2/2) data fde8"
    assert message_fields(n)["shutdown_message"] is None
    assert message_text(Notification.cease(4, "reboot")) == 'NOTIFICATION Cease/Administrative Reset (6/4) "reboot"'
    assert message_text(KEEPALIVE) == "KEEPALIVE" and message_fields(KEEPALIVE) == {"type": "KEEPALIVE"}
    assert message_text(RouteRefresh(1, 1, 1)) == "ROUTE-REFRESH ipv4/unicast borr"


def test_record_line_and_fields():
    rec = Record(ts_ns=1_700_000_000_123_456_789, src="2001:db8::1", sport=179, dst="2001:db8::2", dport=40000,
                 mtype=4, length=19, msg=KEEPALIVE, frame=12)
    assert record_line(rec) == "2023-11-14 22:13:20.123456 2001:db8::1.179 > 2001:db8::2.40000: KEEPALIVE len 19"
    assert record_fields(rec) == {"ts": 1700000000.123457, "frame": 12, "src": "2001:db8::1", "sport": 179,
                                  "dst": "2001:db8::2", "dport": 40000, "type": "KEEPALIVE", "length": 19}
    bad = Record(mtype=2, length=23, error=UpdateError(subcode=1, reason="withdrawn routes length 16 overruns"),
                 raw=b"\xff" * 16 + b"\x00\x17\x02" + b"\x00\x10\x00\x00")
    assert record_line(bad) == ("UPDATE len 23 MALFORMED UPDATE Message/Malformed Attribute List: "
                                "withdrawn routes length 16 overruns")
    f = record_fields(bad)
    assert f["type"] == "UPDATE" and f["error"]["subcode"] == 1 and f["raw"].endswith("00100000")
    assert record_fields(Record(note="gap")) == {"type": "NOTE", "note": "gap"}
