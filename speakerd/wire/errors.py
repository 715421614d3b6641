"""The one error type of the codec: a BGP error *is* the NOTIFICATION to send.

Every malformed input raises :class:`BGPError` (or a subclass) carrying the
exact (code, subcode, data) of RFC 4271 §6 / RFC 7606.  The session machine
catches it and sends ``err.notification()`` before closing; nothing else
ever escapes the decoder.

RFC 7606 UPDATE errors that do *not* reset the session are not exceptions:
the decoder records them on the decoded Update (``treat_as_withdraw``,
``discarded``) so the session keeps running.
"""
from __future__ import annotations

from .constants import ErrorCode, HeaderSubcode, OpenSubcode, UpdateSubcode, error_name


class BGPError(Exception):
    """A protocol error, ready to be sent as a NOTIFICATION."""

    code: int = 0
    subcode: int = 0

    def __init__(self, code: int | None = None, subcode: int | None = None,
                 data: bytes = b"", reason: str = "") -> None:
        if code is not None:
            self.code = int(code)
        if subcode is not None:
            self.subcode = int(subcode)
        self.data = bytes(data)
        self.reason = reason
        super().__init__(self.describe())

    def describe(self) -> str:
        text = error_name(self.code, self.subcode)
        if self.reason:
            text += f": {self.reason}"
        return text

    def notification(self):
        from .messages import Notification
        return Notification(self.code, self.subcode, self.data)

    def __eq__(self, other: object) -> bool:  # handy in tests
        if not isinstance(other, BGPError):
            return NotImplemented
        return (self.code, self.subcode, self.data) == (other.code, other.subcode, other.data)

    def __hash__(self) -> int:
        return hash((self.code, self.subcode, self.data))


class HeaderError(BGPError):
    code = ErrorCode.MESSAGE_HEADER


class OpenError(BGPError):
    code = ErrorCode.OPEN_MESSAGE


class UpdateError(BGPError):
    code = ErrorCode.UPDATE_MESSAGE


class RouteRefreshError(BGPError):
    code = ErrorCode.ROUTE_REFRESH


def bad_length(length: int) -> HeaderError:
    """RFC 4271 §6.1: Bad Message Length, data = the erroneous length field."""
    return HeaderError(subcode=HeaderSubcode.BAD_MESSAGE_LENGTH,
                       data=length.to_bytes(2, "big"), reason=f"length {length}")


__all__ = [
    "BGPError", "HeaderError", "OpenError", "UpdateError", "RouteRefreshError",
    "bad_length", "ErrorCode", "HeaderSubcode", "OpenSubcode", "UpdateSubcode",
]
