"""`speakerd crds`: CRDs generated from speakerd's models, with MetalLB's names and versions.

Checked: the output parses; each CRD is structural (every node typed, no
$ref/anyOf); every field speakerd's models read is in the schema with the
right type; every status field speakerd writes is there; MetalLB's objects in
the form the API server returns them pass the schema.
"""
from __future__ import annotations

import io
import json
import sys
from contextlib import redirect_stdout

import pytest
import yaml

from speakerd.cli import main as cli_main
from speakerd.config import raw
from speakerd.crds import DEFINITIONS, all_crds
from speakerd.publish.status import (
    BGP_SESSION_STATE, SERVICE_BGP_STATUS, SessionInfo, desired_service_statuses, desired_session_states,
)


def _run(*argv: str) -> str:
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert cli_main(["crds", *argv]) == 0
    return buf.getvalue()


@pytest.fixture(scope="module")
def crds() -> dict[str, dict]:
    docs = list(yaml.safe_load_all(_run()))
    return {d["spec"]["names"]["kind"]: d for d in docs}


def test_every_kind_with_metallb_group_and_versions(crds):
    want = {
        "BGPPeer": ("metallb.io", ["v1beta2", "v1beta1"], "v1beta2"),
        "IPAddressPool": ("metallb.io", ["v1beta1"], "v1beta1"),
        "BGPAdvertisement": ("metallb.io", ["v1beta1"], "v1beta1"),
        "BFDProfile": ("metallb.io", ["v1beta1"], "v1beta1"),
        "Community": ("metallb.io", ["v1beta1"], "v1beta1"),
        "ServiceBGPStatus": ("metallb.io", ["v1beta1"], "v1beta1"),
        "BGPSessionState": ("frrk8s.metallb.io", ["v1beta1"], "v1beta1"),
    }
    assert set(crds) == set(want)
    for kind, (group, versions, storage) in want.items():
        c = crds[kind]
        assert c["apiVersion"] == "apiextensions.k8s.io/v1" and c["kind"] == "CustomResourceDefinition"
        assert c["spec"]["group"] == group and c["spec"]["scope"] == "Namespaced"
        assert c["metadata"]["name"] == f"{c['spec']['names']['plural']}.{group}"
        assert [v["name"] for v in c["spec"]["versions"]] == versions
        assert [v["name"] for v in c["spec"]["versions"] if v["storage"]] == [storage]
        assert all(v["served"] and v["subresources"] == {"status": {}} for v in c["spec"]["versions"])
    assert crds["ServiceBGPStatus"]["spec"]["names"]["plural"] == "servicebgpstatuses"
    assert crds["BGPSessionState"]["spec"]["names"]["plural"] == "bgpsessionstates"
    v1beta1 = crds["BGPPeer"]["spec"]["versions"][1]
    assert v1beta1["deprecated"] is True and "v1beta2" in v1beta1["deprecationWarning"]
    assert crds["BGPPeer"]["spec"]["conversion"] == {"strategy": "None"}


def _structural(node: dict, path: str) -> None:
    assert "$ref" not in node and "anyOf" not in node and "oneOf" not in node, path
    assert "type" in node, f"untyped schema node at {path}"
    for name, sub in node.get("properties", {}).items():
        _structural(sub, f"{path}.{name}")
    if "items" in node:
        _structural(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        _structural(node["additionalProperties"], f"{path}{{}}")


def test_schemas_are_structural(crds):
    for kind, c in crds.items():
        for v in c["spec"]["versions"]:
            _structural(v["schema"]["openAPIV3Schema"], kind)


def _spec(crds, kind: str, version: int = 0) -> dict:
    return crds[kind]["spec"]["versions"][version]["schema"]["openAPIV3Schema"]["properties"]["spec"]


def test_every_model_field_is_in_the_schema(crds):
    for d in DEFINITIONS:
        if d.spec is None:
            continue
        for version in range(len(d.versions)):
            props = _spec(crds, d.kind, version)["properties"]
            assert set(props) == set(d.spec.model_fields), d.kind


def test_field_types_speakerd_reads(crds):
    peer = _spec(crds, "BGPPeer")
    # required exactly where speakerd's model requires (peerASN may give way to dynamicASN)
    assert set(peer["required"]) == {n for n, f in raw.BGPPeerSpec.model_fields.items() if f.is_required()}
    assert "myASN" in peer["required"] and {"peerASN", "peerAddress"} <= set(peer["properties"])
    assert peer["properties"]["myASN"]["type"] == "integer"
    assert peer["properties"]["holdTime"]["type"] == "string"  # "90s"
    assert peer["properties"]["ebgpMultiHop"]["type"] == "boolean"
    sel = peer["properties"]["nodeSelectors"]["items"]["properties"]
    assert sel["matchLabels"] == {"type": "object", "additionalProperties": {"type": "string"}}
    assert sel["matchExpressions"]["items"]["properties"]["operator"]["enum"] == ["In", "NotIn", "Exists",
                                                                                  "DoesNotExist"]
    assert peer["properties"]["passwordSecret"]["properties"]["name"]["type"] == "string"
    pool = _spec(crds, "IPAddressPool")
    assert pool["required"] == ["addresses"] and pool["properties"]["addresses"]["items"]["type"] == "string"
    adv = _spec(crds, "BGPAdvertisement")["properties"]
    assert adv["aggregationLength"]["type"] == "integer" and adv["communities"]["type"] == "array"
    assert _spec(crds, "Community")["properties"]["communities"]["items"]["required"] == ["name", "value"]
    # unknown fields survive the API server, so speakerd names them instead of them vanishing
    assert all(_spec(crds, d.kind).get("x-kubernetes-preserve-unknown-fields") for d in DEFINITIONS if d.spec)


def test_status_schemas_hold_what_speakerd_writes(crds):
    svc = next(iter(desired_service_statuses("n1", {"a/b": ["p"]}).values())).body("ns")
    sess = next(iter(desired_session_states("n1", [SessionInfo("p", "10.0.0.1", "Idle")]).values())).body("ns")
    for kind, body in (("ServiceBGPStatus", svc), ("BGPSessionState", sess)):
        status = crds[kind]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
        assert set(status["properties"]) == set(body["status"]), kind
        assert body["apiVersion"] == f"{crds[kind]['spec']['group']}/v1beta1" and body["kind"] == kind
    assert SERVICE_BGP_STATUS.plural == crds["ServiceBGPStatus"]["spec"]["names"]["plural"]
    assert BGP_SESSION_STATE.plural == crds["BGPSessionState"]["spec"]["names"]["plural"]
    pool = crds["IPAddressPool"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
    assert set(pool["properties"]) == {"assignedIPv4", "assignedIPv6", "availableIPv4", "availableIPv6"}


def _validate(schema: dict, value, path="") -> list[str]:
    """A small structural validator: types, enums, required (what the API server checks first)."""
    t = schema["type"]
    ok = {"object": dict, "array": list, "string": str, "boolean": bool, "integer": int, "number": (int, float)}[t]
    if not isinstance(value, ok) or (t in ("integer", "number") and isinstance(value, bool)):
        return [f"{path}: expected {t}, got {value!r}"]
    errs = []
    if "enum" in schema and value not in schema["enum"]:
        errs.append(f"{path}: {value!r} not in {schema['enum']}")
    if t == "object":
        for r in schema.get("required", ()):
            if r not in value:
                errs.append(f"{path}.{r}: required")
        for k, v in value.items():
            if k in schema.get("properties", {}):
                errs += _validate(schema["properties"][k], v, f"{path}.{k}")
            elif isinstance(schema.get("additionalProperties"), dict):
                errs += _validate(schema["additionalProperties"], v, f"{path}.{k}")
    if t == "array":
        for i, v in enumerate(value):
            errs += _validate(schema["items"], v, f"{path}[{i}]")
    return errs


SAMPLES = {
    "BGPPeer": {"myASN": 64500, "peerASN": 64501, "peerAddress": "10.0.0.1", "holdTime": "1m30s",
                "ebgpMultiHop": False, "passwordSecret": {"name": "s", "namespace": "metallb-system"},
                "nodeSelectors": [{"matchExpressions": [{"key": "k", "operator": "In", "values": ["a"]}]}]},
    "IPAddressPool": {"addresses": ["192.0.2.0/24"], "autoAssign": True, "avoidBuggyIPs": False},
    "BGPAdvertisement": {"ipAddressPools": ["p"], "aggregationLength": 32, "localPref": 100,
                         "communities": ["64500:1"], "nodeSelectors": [{"matchLabels": {"a": "b"}}]},
    "BFDProfile": {"receiveInterval": 300, "transmitInterval": 300, "detectMultiplier": 3, "passiveMode": False},
    "Community": {"communities": [{"name": "vpn-only", "value": "1234:1"}]},
}


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_objects_that_speakerd_accepts_pass_the_schema(crds, kind):
    model, issues = raw.parse_spec(kind, SAMPLES[kind])
    assert model is not None and not issues  # speakerd accepts it ...
    assert _validate(_spec(crds, kind), SAMPLES[kind]) == []  # ... and so does the CRD
    bad = dict(SAMPLES[kind])
    first = next(iter(bad))
    bad[first] = "x" if isinstance(bad[first], list) else [bad[first]]  # wrong type: refused by both
    assert _validate(_spec(crds, kind), bad) != []
    assert raw.parse_spec(kind, bad)[0] is None


def test_kind_filter_and_json():
    docs = json.loads(_run("--kind", "BGPPeer", "--json"))
    assert docs["kind"] == "List" and [d["spec"]["names"]["kind"] for d in docs["items"]] == ["BGPPeer"]
    assert len(list(yaml.safe_load_all(_run("--kind", "servicebgpstatuses", "--kind", "bgpsessionstate")))) == 2
    assert cli_main(["crds", "--kind", "BGPPear"]) == 2
    assert len(all_crds()) == len(DEFINITIONS)
