"""Numbers from the BGP RFCs, as enums.

Everything the codec puts on or reads off the wire is named here once; the rest
of the code refers to these names, never to bare numbers.
"""
from __future__ import annotations

from enum import IntEnum

MARKER = b"\xff" * 16
HEADER_LEN = 19
TYPE_OFFSET = 18  # the header's type octet, after the marker and the length
MAX_MESSAGE_LEN = 4096
MAX_EXTENDED_MESSAGE_LEN = 65535
BGP_VERSION = 4
AS_TRANS = 23456
BGP_PORT = 179


class MessageType(IntEnum):
    OPEN = 1
    UPDATE = 2
    NOTIFICATION = 3
    KEEPALIVE = 4
    ROUTE_REFRESH = 5


class AFI(IntEnum):
    IPV4 = 1
    IPV6 = 2


class SAFI(IntEnum):
    UNICAST = 1
    MULTICAST = 2


class ErrorCode(IntEnum):
    MESSAGE_HEADER = 1
    OPEN_MESSAGE = 2
    UPDATE_MESSAGE = 3
    HOLD_TIMER_EXPIRED = 4
    FSM = 5
    CEASE = 6
    ROUTE_REFRESH = 7  # RFC 7313
    SEND_HOLD_TIMER_EXPIRED = 8  # RFC 9687


class HeaderSubcode(IntEnum):
    UNSPECIFIC = 0
    CONNECTION_NOT_SYNCHRONIZED = 1
    BAD_MESSAGE_LENGTH = 2
    BAD_MESSAGE_TYPE = 3


class OpenSubcode(IntEnum):
    UNSPECIFIC = 0
    UNSUPPORTED_VERSION_NUMBER = 1
    BAD_PEER_AS = 2
    BAD_BGP_IDENTIFIER = 3
    UNSUPPORTED_OPTIONAL_PARAMETER = 4
    # 5 deprecated (authentication failure)
    UNACCEPTABLE_HOLD_TIME = 6
    UNSUPPORTED_CAPABILITY = 7  # RFC 5492
    ROLE_MISMATCH = 11  # RFC 9234


class UpdateSubcode(IntEnum):
    UNSPECIFIC = 0
    MALFORMED_ATTRIBUTE_LIST = 1
    UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE = 2
    MISSING_WELL_KNOWN_ATTRIBUTE = 3
    ATTRIBUTE_FLAGS_ERROR = 4
    ATTRIBUTE_LENGTH_ERROR = 5
    INVALID_ORIGIN_ATTRIBUTE = 6
    # 7 deprecated (AS routing loop)
    INVALID_NEXT_HOP_ATTRIBUTE = 8
    OPTIONAL_ATTRIBUTE_ERROR = 9
    INVALID_NETWORK_FIELD = 10
    MALFORMED_AS_PATH = 11


class FsmSubcode(IntEnum):  # RFC 6608
    UNSPECIFIED = 0
    UNEXPECTED_IN_OPENSENT = 1
    UNEXPECTED_IN_OPENCONFIRM = 2
    UNEXPECTED_IN_ESTABLISHED = 3


class CeaseSubcode(IntEnum):  # RFC 4486, RFC 8203/9003
    UNSPECIFIC = 0
    MAX_PREFIXES_REACHED = 1
    ADMINISTRATIVE_SHUTDOWN = 2
    PEER_DECONFIGURED = 3
    ADMINISTRATIVE_RESET = 4
    CONNECTION_REJECTED = 5
    OTHER_CONFIGURATION_CHANGE = 6
    CONNECTION_COLLISION_RESOLUTION = 7
    OUT_OF_RESOURCES = 8
    HARD_RESET = 9  # RFC 8538
    BFD_DOWN = 10  # RFC 9384


class RouteRefreshSubcode(IntEnum):  # RFC 7313 (code 7)
    RESERVED = 0
    INVALID_MESSAGE_LENGTH = 1


class RouteRefreshSubtype(IntEnum):  # RFC 7313
    NORMAL = 0
    BORR = 1  # beginning of route refresh
    EORR = 2  # end of route refresh


SUBCODES: dict[int, type[IntEnum]] = {
    ErrorCode.MESSAGE_HEADER: HeaderSubcode,
    ErrorCode.OPEN_MESSAGE: OpenSubcode,
    ErrorCode.UPDATE_MESSAGE: UpdateSubcode,
    ErrorCode.FSM: FsmSubcode,
    ErrorCode.CEASE: CeaseSubcode,
    ErrorCode.ROUTE_REFRESH: RouteRefreshSubcode,
}


# words that the RFCs write in capitals (or mixed case)
_RFC_WORDS = {"As": "AS", "Bgp": "BGP", "Fsm": "FSM", "Nlri": "NLRI", "Open": "OPEN", "Update": "UPDATE",
              "Opensent": "OpenSent", "Openconfirm": "OpenConfirm", "Bfd": "BFD", "Borr": "BoRR",
              "Eorr": "EoRR"}


def _words(enum_name: str) -> str:
    return " ".join(_RFC_WORDS.get(w, w) for w in enum_name.replace("_", " ").title().split())


def error_name(code: int, subcode: int) -> str:
    """'Cease/Administrative Shutdown', 'OPEN Message/Bad Peer AS': the RFC's names."""
    try:
        cname = _words(ErrorCode(code).name)
    except ValueError:
        return f"Unknown error {code}/{subcode}"
    table = SUBCODES.get(code)
    if table is None:
        return cname if subcode == 0 else f"{cname}/{subcode}"
    try:
        sname = _words(table(subcode).name)
    except ValueError:
        sname = f"subcode {subcode}"
    return f"{cname}/{sname}"


class CapabilityCode(IntEnum):
    MULTIPROTOCOL = 1
    ROUTE_REFRESH = 2
    EXTENDED_NEXT_HOP = 5
    EXTENDED_MESSAGE = 6  # RFC 8654
    ROLE = 9
    GRACEFUL_RESTART = 64  # RFC 4724
    FOUR_OCTET_AS = 65  # RFC 6793
    ADD_PATH = 69  # RFC 7911
    ENHANCED_ROUTE_REFRESH = 70  # RFC 7313
    LLGR = 71
    FQDN = 73  # draft-walton-bgp-hostname-capability
    ROUTE_REFRESH_CISCO = 128


class OptParamType(IntEnum):
    CAPABILITIES = 2
    EXTENDED_LENGTH = 255  # RFC 9072 marker


class AttrType(IntEnum):
    ORIGIN = 1
    AS_PATH = 2
    NEXT_HOP = 3
    MULTI_EXIT_DISC = 4
    LOCAL_PREF = 5
    ATOMIC_AGGREGATE = 6
    AGGREGATOR = 7
    COMMUNITIES = 8
    ORIGINATOR_ID = 9
    CLUSTER_LIST = 10
    MP_REACH_NLRI = 14
    MP_UNREACH_NLRI = 15
    EXTENDED_COMMUNITIES = 16
    AS4_PATH = 17
    AS4_AGGREGATOR = 18
    LARGE_COMMUNITIES = 32


class AttrFlag(IntEnum):
    OPTIONAL = 0x80
    TRANSITIVE = 0x40
    PARTIAL = 0x20
    EXTENDED_LENGTH = 0x10


class Origin(IntEnum):
    IGP = 0
    EGP = 1
    INCOMPLETE = 2


class AsPathSegmentType(IntEnum):
    AS_SET = 1
    AS_SEQUENCE = 2
    AS_CONFED_SEQUENCE = 3
    AS_CONFED_SET = 4


# Well-known communities (RFC 1997, RFC 7999, RFC 8326)
WELL_KNOWN_COMMUNITIES: dict[str, int] = {
    "graceful-shutdown": 0xFFFF0000,
    "accept-own": 0xFFFF0001,
    "blackhole": 0xFFFF029A,
    "no-export": 0xFFFFFF01,
    "no-advertise": 0xFFFFFF02,
    "no-export-subconfed": 0xFFFFFF03,
    "no-peer": 0xFFFFFF04,
}
