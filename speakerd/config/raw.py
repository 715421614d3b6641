"""Pydantic models of the MetalLB objects' ``spec`` as Kubernetes writes them.

Field names are MetalLB's camelCase.  Unknown fields are errors (with a
"did you mean" hint); fields MetalLB has but speakerd does not implement are
rejected by name with the reason, never silently ignored.  Cross-object rules
(references, overlaps, ASN consistency) live in ``build.py``.

Services, Nodes, Secrets and Communities are read on a light path in
``build.py`` (plain dict access): there can be a million Services.
"""
from __future__ import annotations

import difflib
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

# --- durations ---------------------------------------------------------------

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DUR_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(value: Any) -> float:
    """Kubernetes/Go duration text ('10s', '1m30s', '500ms') -> seconds."""
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError(f"expected a duration string like \"90s\" or \"1m30s\", got {value!r}")
    text = value.strip()
    if text == "0":
        return 0.0
    pos, total = 0, 0.0
    for m in _DUR_PART.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise ValueError(f"invalid duration {value!r} (use e.g. \"90s\", \"1m30s\", \"500ms\")")
    return total


Duration = Annotated[float, BeforeValidator(parse_duration)]


def _strict_int(v: Any) -> Any:
    if isinstance(v, bool) or (isinstance(v, float) and not v.is_integer()):
        raise ValueError(f"expected an integer, got {v!r}")
    if isinstance(v, str):
        raise ValueError(f"expected an integer, got the string {v!r}")
    return v


Int = Annotated[int, BeforeValidator(_strict_int)]


def _strict_bool(v: Any) -> Any:
    if not isinstance(v, bool):
        raise ValueError(f"expected true or false, got {v!r}")
    return v


Bool = Annotated[bool, BeforeValidator(_strict_bool)]


def _strict_str(v: Any) -> Any:
    if not isinstance(v, str):
        raise ValueError(f"expected a string, got {v!r}")
    return v


Str = Annotated[str, BeforeValidator(_strict_str)]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=False, frozen=True)


# --- shared ------------------------------------------------------------------


class MatchExpression(_Spec):
    key: Str
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[Str] = Field(default_factory=list)


class Selector(_Spec):
    matchLabels: dict[str, Str] = Field(default_factory=dict)
    matchExpressions: list[MatchExpression] = Field(default_factory=list)


class SecretRef(_Spec):
    # both optional: the API server writes ``passwordSecret: {}`` into every BGPPeer
    # (a Go struct under omitempty is never omitted); no name means no secret
    name: Str | None = None
    namespace: Str | None = None


# --- the MetalLB kinds -------------------------------------------------------


class BGPPeerSpec(_Spec):
    myASN: Int
    peerASN: Int | None = None  # exactly one of peerASN and dynamicASN (0 = unset, as in MetalLB)
    localASN: Int | None = None  # the AS the peer sees instead of myASN (0 = unset, omitempty)
    dynamicASN: Literal["internal", "external"] | None = None
    peerAddress: Str | None = None  # exactly one of peerAddress and interface
    interface: Str | None = None  # BGP unnumbered: the router's link-local address on it
    sourceAddress: Str | None = None
    peerPort: Int | None = None
    holdTime: Duration | None = None
    keepaliveTime: Duration | None = None
    connectTime: Duration | None = None
    routerID: Str | None = None
    password: Str | None = None
    passwordSecret: SecretRef | None = None
    bfdProfile: Str | None = None
    nodeSelectors: list[Selector] = Field(default_factory=list)
    ebgpMultiHop: Bool = False
    vrf: Str | None = None
    enableGracefulRestart: Bool = False
    disableMP: Bool = False  # CRD default false (deprecated upstream for dualStackAddressFamily)
    dualStackAddressFamily: Bool = False  # CRD default false


class ServiceAllocationSpec(_Spec):
    priority: Int = 0
    namespaces: list[Str] = Field(default_factory=list)
    namespaceSelectors: list[Selector] = Field(default_factory=list)
    serviceSelectors: list[Selector] = Field(default_factory=list)


class IPAddressPoolSpec(_Spec):
    addresses: list[Str]
    autoAssign: Bool = True
    avoidBuggyIPs: Bool = False
    serviceAllocation: ServiceAllocationSpec | None = None


class BGPAdvertisementSpec(_Spec):
    ipAddressPools: list[Str] = Field(default_factory=list)
    ipAddressPoolSelectors: list[Selector] = Field(default_factory=list)
    peers: list[Str] = Field(default_factory=list)
    communities: list[Str] = Field(default_factory=list)
    aggregationLength: Int | None = None
    aggregationLengthV6: Int | None = None
    localPref: Int | None = None
    nodeSelectors: list[Selector] = Field(default_factory=list)
    serviceSelectors: list[Selector] = Field(default_factory=list)


class BFDProfileSpec(_Spec):
    receiveInterval: Int | None = None  # milliseconds, as in MetalLB
    transmitInterval: Int | None = None
    detectMultiplier: Int | None = None
    echoInterval: Int | None = None
    echoMode: Bool = False
    passiveMode: Bool = False
    minimumTtl: Int | None = None


SPECS: dict[str, type[_Spec]] = {
    "BGPPeer": BGPPeerSpec,
    "IPAddressPool": IPAddressPoolSpec,
    "BGPAdvertisement": BGPAdvertisementSpec,
    "BFDProfile": BFDProfileSpec,
}

# Fields MetalLB defines that speakerd does not implement: rejected by name.
UNSUPPORTED: dict[str, dict[str, str]] = {
    "BGPPeer": {
        "bfdProfileRef": "not implemented; use bfdProfile",
    },
    "IPAddressPool": {},
    "BGPAdvertisement": {},
    "BFDProfile": {},
}


# (field, alternative): one of the two is required (MetalLB v0.16's BGPPeer)
ONE_OF: dict[str, tuple[tuple[str, str], ...]] = {
    "BGPPeer": (("peerAddress", "interface"), ("peerASN", "dynamicASN")),
}


# Fields whose value must never appear in a message (messages go to logs and `check --json`).
SECRET_FIELDS: dict[str, tuple[str, ...]] = {"BGPPeer": ("password",)}


def _known_fields(model: type[BaseModel], path: tuple) -> list[str]:
    """Field names valid at `path` inside `model` (best effort, for suggestions)."""
    for part in path:
        if isinstance(part, int):
            continue
        info = model.model_fields.get(part)
        if info is None:
            return []
        ann = info.annotation
        inner = _model_in(ann)
        if inner is None:
            return []
        model = inner
    return list(model.model_fields)


def _model_in(ann: Any) -> type[BaseModel] | None:
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for arg in getattr(ann, "__args__", ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _field_path(loc: tuple) -> str:
    out = "spec"
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _message(err: dict) -> str:
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    if err["type"] == "missing":
        return "required field is missing"
    if err["type"] == "literal_error":
        return f"{msg}, got {err.get('input')!r}"
    if err["type"] in ("int_type", "int_parsing", "int_from_float"):
        return f"expected an integer, got {err.get('input')!r}"
    if err["type"] in ("list_type", "dict_type", "model_type"):
        kind = {"list_type": "a list", "dict_type": "a mapping", "model_type": "a mapping"}[err["type"]]
        return f"expected {kind}, got {err.get('input')!r}"
    return msg


def parse_spec(kind: str, spec: Any) -> tuple[_Spec | None, list[tuple[str, str]]]:
    """Validate one object's spec. Returns (model or None, [(field path, reason)])."""
    model = SPECS[kind]
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        return None, [("spec", f"expected a mapping, got {type(spec).__name__}")]
    issues: list[tuple[str, str]] = []
    for fld, alternative in ONE_OF.get(kind, ()):
        if spec.get(fld) is None and spec.get(alternative) is None:
            issues.append((f"spec.{fld}", "required field is missing"))  # reported with the others
    unsupported = UNSUPPORTED.get(kind, {})
    if unsupported and any(k in unsupported for k in spec):
        spec = dict(spec)
        for k in [k for k in spec if k in unsupported]:
            issues.append((f"spec.{k}", f"not supported by speakerd: {unsupported[k]}"))
            del spec[k]
    try:
        obj = model.model_validate(spec)
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(err["loc"])
            if err["type"] == "extra_forbidden":
                name = str(loc[-1])
                hint = difflib.get_close_matches(name, _known_fields(model, loc[:-1]), n=1, cutoff=0.6)
                msg = f"unknown field {_field_path(loc)}"
                if hint:
                    msg += f"; did you mean {hint[0]}?"
                issues.append((_field_path(loc), msg))
            else:
                # drop pydantic's internal union/validator tags from the path
                clean = tuple(p for p in loc if isinstance(p, int) or not str(p).startswith(("function-", "nullable", "list[", "dict[", "str", "int")))
                msg = _message(err)
                if loc and loc[0] in SECRET_FIELDS.get(kind, ()):
                    msg = "expected a string (the value is not shown: it is a secret)"
                issues.append((_field_path(clean), msg))
        return None, issues
    return (obj if not issues else None), issues


class CommunityAlias(_Spec):
    name: Str
    value: Str


class CommunitySpec(_Spec):
    communities: list[CommunityAlias] = Field(default_factory=list)


SPECS["Community"] = CommunitySpec
UNSUPPORTED["Community"] = {}
