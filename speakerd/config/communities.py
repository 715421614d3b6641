"""BGP community text: ``A:B`` (RFC 1997), ``large:A:B:C`` (RFC 8092), well-known names."""
from __future__ import annotations

# RFC 1997 / RFC 3765 / RFC 7999 / RFC 8326 well-known communities
WELL_KNOWN: dict[str, int] = {
    "no-export": 0xFFFFFF01,
    "no-advertise": 0xFFFFFF02,
    "no-export-subconfed": 0xFFFFFF03,
    "local-as": 0xFFFFFF03,
    "no-peer": 0xFFFFFF04,
    "blackhole": 0xFFFF029A,
    "graceful-shutdown": 0xFFFF0000,
}

Standard = int
Large = tuple[int, int, int]


def _num(text: str, bits: int, what: str) -> int:
    if not text.isdigit():
        raise ValueError(f"{what} {text!r} is not a number")
    value = int(text)
    if value >= 1 << bits:
        raise ValueError(f"{what} {value} does not fit in {bits} bits (max {(1 << bits) - 1})")
    return value


def parse_community(text: str) -> Standard | Large:
    """'64500:100' -> int; 'large:64500:1:2' -> (64500, 1, 2); 'no-export' -> int."""
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not a community (use A:B or large:A:B:C)")
    t = text.strip()
    low = t.lower()
    if low in WELL_KNOWN:
        return WELL_KNOWN[low]
    parts = t.split(":")
    if parts[0].lower() == "large":
        if len(parts) != 4:
            raise ValueError(f"invalid large community {text!r}: expected large:A:B:C")
        return tuple(_num(p, 32, "large community part") for p in parts[1:])  # type: ignore[return-value]
    if len(parts) != 2:
        raise ValueError(f"invalid community {text!r}: expected A:B (16 bits each), large:A:B:C (32 bits each) "
                         "or the name of a Community alias")
    return _num(parts[0], 16, "community part") << 16 | _num(parts[1], 16, "community part")


def format_community(value: Standard | Large) -> str:
    if isinstance(value, tuple):
        return "large:" + ":".join(str(v) for v in value)
    return f"{value >> 16}:{value & 0xFFFF}"
