"""RFC 4271 §6.8 connection collision resolution, as one pure rule.

Design: the session machine (:mod:`.machine`) handles exactly one TCP
connection.  When a second connection to the same peer appears (we
connected out and the peer connected in at the same time), the transport
(:class:`speakerd.net.peer.Peer`) runs a second machine for the incoming
connection for a moment.  As soon as the remote BGP identifier is known (an
OPEN arrived on either connection) it asks :func:`resolve_collision` which
connection survives, and tells the other machine ``collision_dump(now)``
(Cease / Connection Collision Resolution, 6/7).  A connection that arrives
while the session is Established is refused with the same Cease (RFC 4271
§6.8: the established connection wins).
"""
from __future__ import annotations

from enum import Enum


class Keep(Enum):
    OUTGOING = "outgoing"  # the connection we initiated
    INCOMING = "incoming"  # the connection the peer initiated


def resolve_collision(local_id: int, remote_id: int, local_asn: int = 0, remote_asn: int = 0) -> Keep:
    """The connection initiated by the speaker with the higher BGP Identifier survives.

    Identifiers compare as unsigned 32-bit integers.  Equal identifiers (only
    legal between different ASes, RFC 6286 §2.3) fall back to the AS numbers:
    the speaker with the larger AS keeps the connection it initiated.
    """
    if local_id != remote_id:
        return Keep.OUTGOING if local_id > remote_id else Keep.INCOMING
    return Keep.OUTGOING if local_asn > remote_asn else Keep.INCOMING
