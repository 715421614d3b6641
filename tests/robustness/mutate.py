"""Seeds, mutations and the oracle shared by the fuzz tests and bench/fuzz_long.py.

Seeds are valid messages produced by speakerd's own encoder (OPEN with every
capability it knows, UPDATEs with every attribute, IPv4 and MP IPv6,
withdrawals, End-of-RIB, NOTIFICATION, ROUTE-REFRESH, KEEPALIVE).  A mutation
is a small tuple ``(op, position, value)`` so hypothesis can draw and shrink
it and a plain ``random.Random`` loop can generate it; ``apply`` turns a seed
and a list of mutations into the bytes to feed.

The oracle (:func:`check_decode`, :func:`check_stream`) feeds bytes to the
codec in one negotiated context and fails on anything but a ``BGPError``
whose (code, subcode) pair is one the RFCs define.
"""
from __future__ import annotations

import random
import struct
from dataclasses import replace

from speakerd.wire.capabilities import (IPV4_UNICAST, IPV6_UNICAST, FQDN, AddPath,
                                        EnhancedRouteRefresh, ExtendedMessage, FourOctetAS,
                                        GracefulRestart, Multiprotocol, Negotiated, RouteRefresh as RRCap,
                                        UnknownCapability, DEFAULT_CONTEXT)
from speakerd.wire.constants import (AFI, SAFI, SUBCODES, AsPathSegmentType, ErrorCode, HEADER_LEN)
from speakerd.wire.errors import BGPError
from speakerd.wire.framing import Framer, decode, decode_body, encode
from speakerd.wire.messages import KEEPALIVE, Notification, Open, RouteRefresh
from speakerd.wire.nlri import make_key
from speakerd.wire.update import MpReach, MpUnreach, PathAttributes, Update

# every (code, subcode) pair a NOTIFICATION from speakerd may carry
VALID_ERRORS = {(int(c), int(s)) for c, table in SUBCODES.items() for s in table}
VALID_ERRORS |= {(int(ErrorCode.HOLD_TIMER_EXPIRED), 0), (int(ErrorCode.SEND_HOLD_TIMER_EXPIRED), 0)}

# ----------------------------------------------------------------- contexts

_BOTH = frozenset({IPV4_UNICAST, IPV6_UNICAST})
CONTEXTS: dict[str, Negotiated] = {
    "as4": DEFAULT_CONTEXT,
    "as2": Negotiated(four_octet_as=False, families=_BOTH),
    "extended": Negotiated(four_octet_as=True, families=_BOTH, extended_message=True),
    "addpath": Negotiated(four_octet_as=True, families=_BOTH, add_path_receive=_BOTH, add_path_send=_BOTH),
}


def _v4(a: int, b: int, c: int, d: int, plen: int) -> int:
    return make_key(AFI.IPV4, (a << 24) | (b << 16) | (c << 8) | d, plen)


def _v6(hi: int, plen: int) -> int:
    return make_key(AFI.IPV6, hi << 64, plen)


def seeds(ctx: Negotiated = DEFAULT_CONTEXT) -> list[bytes]:
    """Valid messages of every kind, encoded for ``ctx`` (add-path bodies are
    produced by patching path ids in, since the encoder does not send them)."""
    caps_all = (Multiprotocol(1, 1), Multiprotocol(2, 1), RRCap(), EnhancedRouteRefresh(), ExtendedMessage(),
                GracefulRestart(0x8, 120, ((1, 1, 0x80), (2, 1, 0))), AddPath(((1, 1, 3), (2, 1, 1))),
                FQDN("node-1", "example.net"), UnknownCapability(200, b"\x01\x02"))
    opens = [
        Open.build(64512, 90, 0x0A000001, caps_all),
        Open.build(4200000000, 9, 0x0A000002, (Multiprotocol(1, 1),)),
        Open(65001, 3, 0x0A000003, ()),  # 2-octet speaker, no capabilities
        # > 255 bytes of capabilities: RFC 9072 extended optional parameters
        Open.build(64512, 180, 0x0A000004, tuple(UnknownCapability(201, bytes(60)) for _ in range(5))),
    ]
    path = ((AsPathSegmentType.AS_SEQUENCE, (64512, 4200000000, 65001)), (AsPathSegmentType.AS_SET, (1, 2)))
    full = PathAttributes(origin=0, as_path=path, next_hop=0xC0000201, med=10, local_pref=200,
                          atomic_aggregate=True, aggregator=(64512, 0x0A000001), communities=(0xFFFFFF01, 0xFC000050),
                          extended_communities=(0x0002FC0000000001,), large_communities=((64512, 1, 2),),
                          originator_id=0x0A000009, cluster_list=(0x0A00000A,),
                          unknown=((0xC0, 99, b"xyz"),))
    small = PathAttributes(origin=2, as_path=(), next_hop=0x7F000001)
    v6attrs = replace(small, next_hop=None)
    nh6 = bytes.fromhex("20010db8000000000000000000000001")
    ll6 = bytes.fromhex("fe800000000000000000000000000001")
    updates = [
        Update(attrs=full, nlri=[_v4(198, 51, 100, 0, 24), _v4(203, 0, 113, 7, 32), _v4(10, 0, 0, 0, 8)]),
        Update(withdrawn=[_v4(192, 0, 2, 0, 24), _v4(0, 0, 0, 0, 0)], attrs=small, nlri=[_v4(198, 51, 100, 128, 25)]),
        Update(attrs=v6attrs, mp_reach=MpReach(2, 1, nh6 + ll6, [_v6(0x20010DB800010000, 48), _v6(0x20010DB8000200FF, 64)])),
        Update(mp_unreach=MpUnreach(2, 1, [_v6(0x20010DB800010000, 48)])),
        Update(withdrawn=[_v4(198, 51, 100, 0, 24)]),
        Update(),  # IPv4 End-of-RIB
        Update.eor(2, 1),
    ]
    out = [encode(m, ctx) for m in opens]
    for u in updates:
        raw = encode(u, ctx)
        out.append(_with_path_ids(raw) if ctx.add_path_receive else raw)
    out += [encode(KEEPALIVE), encode(Notification(6, 2, b"\x05hello")), encode(Notification(3, 11)),
            encode(RouteRefresh(1, 1, 0)), encode(RouteRefresh(2, 1, 1)), encode(RouteRefresh(1, 1, 2))]
    return out


def _with_path_ids(raw: bytes) -> bytes:
    """Re-encode an UPDATE's NLRI with add-path ids (RFC 7911) for both families."""
    upd = Update.decode_body(raw[HEADER_LEN:], DEFAULT_CONTEXT)

    def ap(afi: int, keys: list[int]) -> bytes:
        out = bytearray()
        for i, k in enumerate(keys):
            plen = k & 0xFF
            nb = (plen + 7) // 8
            width = 32 if afi == AFI.IPV4 else 128
            addr = (k >> 8) >> (width - nb * 8) if nb else 0
            out += struct.pack("!I", i + 1) + bytes((plen,)) + addr.to_bytes(nb, "big")
        return bytes(out)

    w = ap(1, upd.withdrawn)
    attrs = b""
    from speakerd.wire.update import encode_attrs_cached, mp_reach_attr, mp_unreach_attr
    if upd.mp_reach is not None:
        m = upd.mp_reach
        attrs += mp_reach_attr(struct.pack("!HBB", m.afi, m.safi, len(m.next_hop)) + m.next_hop + b"\0"
                               + ap(m.afi, m.nlri))
    if upd.mp_unreach is not None:
        m = upd.mp_unreach
        attrs += mp_unreach_attr(struct.pack("!HB", m.afi, m.safi) + ap(m.afi, m.withdrawn))
    attrs += encode_attrs_cached(upd.attrs, True)
    body = struct.pack("!H", len(w)) + w + struct.pack("!H", len(attrs)) + attrs + ap(1, upd.nlri)
    return b"\xff" * 16 + struct.pack("!HB", HEADER_LEN + len(body), 2) + body


# ---------------------------------------------------------------- mutations

OPS = ("flip", "set", "truncate", "extend", "insert", "delete", "splice", "hdrlen", "u16", "u8", "dup",
       "fixlen")


def apply(seed: bytes, muts, pool: list[bytes] | None = None) -> bytes:
    """Apply mutations ``(op, pos, value)``; positions wrap around the data."""
    b = bytearray(seed)
    for op, pos, val in muts:
        n = len(b)
        p = pos % (n + 1)
        if op == "flip" and n:
            b[p % n] ^= 1 << (val & 7)
        elif op == "set" and n:
            b[p % n] = val & 0xFF
        elif op == "truncate":
            del b[p:]
        elif op == "extend":
            b += bytes((val + i) & 0xFF for i in range(1 + val % 40))
        elif op == "insert":
            b[p:p] = bytes(((val >> 8) & 0xFF,)) * (1 + val % 4)
        elif op == "delete" and n:
            del b[p:p + 1 + val % 4]
        elif op == "splice" and pool:
            other = pool[val % len(pool)]
            cut = pos % (len(other) + 1)
            b = b[:p] + bytearray(other[cut:])
        elif op == "hdrlen" and n >= 18:
            # the length field of the header: off by a little, or anything
            cur = (b[16] << 8) | b[17]
            new = (cur + (val % 9) - 4) if val & 0x100 else val
            b[16:18] = struct.pack("!H", new & 0xFFFF)
        elif op == "u16" and n >= 2:
            q = p % (n - 1)
            b[q:q + 2] = struct.pack("!H", val & 0xFFFF)
        elif op == "u8" and n:
            b[p % n] = (b[p % n] + (val % 5) - 2) & 0xFF  # lengths off by one or two
        elif op == "dup" and n:
            q = p % n
            seg = b[q:q + 1 + val % 24]
            b[q:q] = seg
        elif op == "fixlen" and n >= 18:
            # make the header agree with the data, so the body decoder is reached
            b[16:18] = struct.pack("!H", n & 0xFFFF)
    return bytes(b)


def random_mutations(rng: random.Random, count: int | None = None) -> list[tuple[str, int, int]]:
    count = count if count is not None else rng.choice((1, 1, 1, 2, 2, 3, 5, 8))
    muts = [(rng.choice(OPS), rng.randrange(1 << 16), rng.randrange(1 << 16)) for _ in range(count)]
    if rng.random() < 0.7:
        muts.append(("fixlen", 0, 0))  # most inputs should get past the header check
    return muts


# ------------------------------------------------------------------ oracle

class OracleFailure(AssertionError):
    pass


def _check_error(err: BGPError, where: str, data: bytes) -> None:
    pair = (err.code, err.subcode)
    if pair not in VALID_ERRORS:
        raise OracleFailure(f"{where}: BGPError with undefined code/subcode {pair} for {data.hex()}")
    if not isinstance(err.data, bytes):
        raise OracleFailure(f"{where}: BGPError data is {type(err.data).__name__}")
    n = err.notification()
    raw = encode(n, CONTEXTS["extended"])
    if len(raw) > 65535:
        raise OracleFailure(f"{where}: NOTIFICATION too large")


def check_decode(data: bytes, ctx: Negotiated) -> object:
    """decode() one message; only a valid BGPError may escape."""
    try:
        msg = decode(data, ctx)
    except BGPError as err:
        _check_error(err, "decode", data)
        return err
    except Exception as exc:  # noqa: BLE001 - this is what the oracle looks for
        raise OracleFailure(f"decode raised {type(exc).__name__}: {exc} for {data.hex()}") from exc
    if isinstance(msg, Update):
        for e in msg.errors:
            _check_error(e, "update.errors", data)
    return msg


def check_stream(data: bytes, ctx: Negotiated, chunk: int = 0) -> None:
    """The Framer (fed in chunks of ``chunk`` bytes, 0 = at once) then decode_body."""
    framer = Framer(ctx.max_message_len)
    try:
        pieces = [data] if chunk <= 0 else [data[i:i + chunk] for i in range(0, len(data), chunk)]
        for piece in pieces:
            for mtype, body in framer.feed(piece):
                msg = decode_body(mtype, body, ctx)
                if isinstance(msg, Update):
                    for e in msg.errors:
                        _check_error(e, "update.errors", data)
    except BGPError as err:
        _check_error(err, "stream", data)
    except Exception as exc:  # noqa: BLE001
        raise OracleFailure(f"stream raised {type(exc).__name__}: {exc} for {data.hex()}") from exc


def check_all(data: bytes) -> None:
    for ctx in CONTEXTS.values():
        check_decode(data, ctx)
        check_stream(data, ctx)


# --------------------------------------------------------- session machine

LOCAL_ID = 0x0A000001
PEER_ID = 0x0A000002


def session_config(kind: int):
    """Four machine set-ups: eBGP 4-octet, iBGP, eBGP with a 2-octet peer, passive."""
    from speakerd.fsm import SessionSettings
    base = dict(router_id=LOCAL_ID, connect_retry=1.0, rand=lambda: 0.5, hold_time=9)
    return [
        SessionSettings(local_asn=64512, peer_asn=4200000000, **base),
        SessionSettings(local_asn=64512, peer_asn=64512, **base),
        SessionSettings(local_asn=64512, peer_asn=65001, extended_message=False, **base),
        SessionSettings(local_asn=64512, peer_asn=65001, passive=True, **base),
    ][kind % 4]


def peer_opens(cfg) -> list[bytes]:
    """OPENs a peer of ``cfg`` could send: plain, with everything, 2-octet, wrong AS."""
    asn = cfg.peer_asn
    caps = (Multiprotocol(1, 1), Multiprotocol(2, 1), RRCap(), EnhancedRouteRefresh(), ExtendedMessage(),
            AddPath(((1, 1, 3), (2, 1, 3))), GracefulRestart(0, 90, ((1, 1, 0x80),)))
    out = [encode(Open.build(asn, 9, PEER_ID, caps)), encode(Open.build(asn, 0, PEER_ID, ()))]
    if asn <= 0xFFFF:
        out.append(encode(Open(asn, 30, PEER_ID, (Multiprotocol(1, 1),))))  # no 4-octet AS capability
    out.append(encode(Open.build(asn + 1, 9, PEER_ID, ())))
    return out


_KEEPALIVE_INDEX = -1  # session_inputs() ends with a KEEPALIVE


def session_inputs(cfg) -> list[bytes]:
    """Valid messages a session may see, for the sequence fuzzer to pick and mutate."""
    return peer_opens(cfg) + seeds(CONTEXTS["as4"]) + seeds(CONTEXTS["as2"]) + [encode(KEEPALIVE)]


def check_notification_bytes(raw: bytes) -> None:
    msg = decode(raw, CONTEXTS["extended"])
    if not isinstance(msg, Notification):
        raise OracleFailure(f"NotificationSent carried {type(msg).__name__}")
    if (msg.code, msg.subcode) not in VALID_ERRORS:
        raise OracleFailure(f"machine sent NOTIFICATION {msg.code}/{msg.subcode}")


def run_session(kind: int, steps, inputs: list[bytes]) -> "object":
    """Drive one Session with ``steps``; fail on any exception or invalid NOTIFICATION.

    A step is ``(event, a, b)``: ``("data", index, mutations...)`` etc.; see
    :data:`SESSION_EVENTS`.  Returns the machine.
    """
    from speakerd.fsm import Session, State
    from speakerd.fsm.actions import NotificationSent, Send
    from speakerd.wire.constants import MessageType
    cfg = session_config(kind)
    s = Session(cfg, trace=bool(kind & 4))
    now = 1000.0
    pending = b""
    try:
        s.start(now)
        for ev, a, b in steps:
            if ev == "data":
                data = apply(inputs[a % len(inputs)], b, inputs) if b else inputs[a % len(inputs)]
                s.data_received(data, now)
            elif ev == "raw":
                s.data_received(b, now)
            elif ev == "split":
                # a valid message cut in two across reads
                data = inputs[a % len(inputs)]
                cut = b % (len(data) + 1)
                s.data_received(data[:cut], now)
                s.data_received(data[cut:], now)
            elif ev == "connected":
                s.connection_made(now, "127.0.0.1", outgoing=bool(a & 1))
            elif ev == "failed":
                s.connection_failed(now, "reset")
            elif ev == "wait":
                now += a / 10.0
                t = s.next_deadline()
                if t is not None and t <= now:
                    s.tick(now)
            elif ev == "timer":
                t = s.next_deadline()
                if t is not None:
                    now = max(now, t)
                    s.tick(now)
            elif ev == "blocked":
                s.send_blocked(now)
            elif ev == "unblocked":
                s.send_unblocked(now)
            elif ev == "stop":
                s.stop(now, "bye")
            elif ev == "start":
                s.start(now)
            elif ev == "reset":
                s.reset(now, "reset")
            elif ev == "refresh":
                s.request_refresh(now)
            elif ev == "routes":
                from speakerd.policy.types import RouteAttrs
                s.set_routes(now, {(1, _v4(198, 51, 100, a & 0xFF, 32)): RouteAttrs(local_pref=100)})
            for act in s.pop_actions():
                if isinstance(act, NotificationSent):
                    n = act.notification
                    if (n.code, n.subcode) not in VALID_ERRORS:
                        raise OracleFailure(f"machine emitted NOTIFICATION {n.code}/{n.subcode}")
                elif isinstance(act, Send) and act.mtype == MessageType.NOTIFICATION:
                    check_notification_bytes(act.data)
            t = s.next_deadline()
            if s.state in (State.OPENSENT, State.OPENCONFIRM, State.ESTABLISHED) and t is None \
                    and s.negotiated is not None and s.negotiated.hold_time:
                raise OracleFailure(f"{s.state.label} with a hold time but no deadline")
    except OracleFailure:
        raise
    except Exception as exc:  # noqa: BLE001
        raise OracleFailure(f"session raised {type(exc).__name__}: {exc} on steps {steps!r}") from exc
    return s


SESSION_EVENTS = ("data", "data", "data", "data", "split", "raw", "connected", "failed", "wait", "timer",
                  "blocked", "unblocked", "stop", "start", "reset", "refresh", "routes")


def random_steps(rng: random.Random, n: int) -> list:
    steps = [("connected", 0, 0)]
    if rng.random() < 0.6:  # most runs should get to Established and exercise UPDATE handling
        steps += [("data", 0, ()), ("data", _KEEPALIVE_INDEX, ())]
    for _ in range(n):
        ev = rng.choice(SESSION_EVENTS)
        if ev == "data":
            steps.append(("data", rng.randrange(64), random_mutations(rng) if rng.random() < 0.5 else ()))
        elif ev == "raw":
            steps.append(("raw", 0, bytes(rng.randrange(256) for _ in range(rng.randrange(48)))))
        else:
            steps.append((ev, rng.randrange(1 << 12), rng.randrange(1 << 12)))
    return steps
