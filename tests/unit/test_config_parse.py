"""Manifest parsing: Kubernetes' YAML rules, units (documents, List items), JSON Lists and streams."""
from __future__ import annotations

import json
import random

import pytest
import yaml
from hypothesis import given, settings, strategies as st

from speakerd.config.parse import parse_bytes, split_units


def objs(text: str, name: str = "f.yaml"):
    out, issues = parse_bytes(text.encode(), name)
    assert not issues, issues
    return out


@pytest.mark.parametrize("text,value", [
    ("a: true", True), ("a: False", False), ("a: TRUE", True),
    ("a: yes", True), ("a: no", False), ("a: on", True), ("a: Off", False), ("a: y", True), ("a: N", False),
    ("a: 'yes'", "yes"), ('a: "on"', "on"), ("a: 'y'", "y"),
    ("a: 0755", 493), ("a: 0o17", 15), ("a: 0x1f", 31), ("a: 1_000", 1000), ("a: '0755'", "0755"), ("a: 0", 0),
    ("a: 64500:100", "64500:100"), ("a: 1:2:3", "1:2:3"),
    ("a: 2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z"), ("a: 2026-01-01", "2026-01-01"),
    ("a: ~", None), ("a: null", None), ("a:", None), ("a: 1.5", 1.5), ("a: .inf", float("inf")),
])
def test_scalars_as_kubernetes_reads_them(text, value):
    assert objs(text + "\n") == [{"a": value}]
    assert objs("- x: 1\n  " + text + "\n") == [[{"x": 1, "a": value}]]  # in a sequence item too


def test_flow_collections_with_yaml11_words():
    assert objs("a: [yes, no, 'on']\nb: {c: off}\n") == [{"a": [True, False, "on"], "b": {"c": False}}]


def test_duplicate_keys_are_errors_in_both_loaders():
    for text in ("a: 1\na: 2\n", "a: yes\na: 2\n"):
        out, issues = parse_bytes(text.encode(), "f.yaml")
        assert out == [] and len(issues) == 1 and "duplicate" in issues[0].message


def test_anchors_and_aliases():
    assert objs("x: &a {p: 1}\ny: *a\n") == [{"x": {"p": 1}, "y": {"p": 1}}]


def test_multi_document_empty_and_comment_documents():
    text = "# head\n---\na: 1\n---\n# only a comment\n---\n---\nb: 2\n...\n--- {c: 3}\n"
    assert objs(text) == [{"a": 1}, {"b": 2}, {"c": 3}]


def test_a_syntax_error_loses_its_document_only():
    out, issues = parse_bytes(b"a: 1\n---\nb: [2\n---\nc: 3\n", "f.yaml")
    assert out == [{"a": 1}, {"c": 3}]
    assert len(issues) == 1 and issues[0].file == "f.yaml" and "YAML syntax error" in issues[0].message


@pytest.mark.parametrize("indent", ["", "  "])
def test_lists_of_any_kind_are_cut_into_items(indent):
    text = (f"apiVersion: v1\nkind: ServiceList\nmetadata: {{resourceVersion: '7'}}\nitems:\n"
            f"{indent}- metadata: {{name: a}}\n{indent}  spec: {{type: LoadBalancer}}\n"
            f"{indent}# a comment\n{indent}- kind: Service\n{indent}  metadata:\n{indent}    name: b\n")
    units = split_units(text.encode(), False)
    assert len(units) == 2
    assert objs(text) == [{"kind": "Service", "apiVersion": "v1", "metadata": {"name": "a"}, "spec": {"type": "LoadBalancer"}},
                          {"kind": "Service", "apiVersion": "v1", "metadata": {"name": "b"}}]
    kind_list = text.replace("ServiceList", "List")
    assert objs(kind_list)[0] == {"metadata": {"name": "a"}, "spec": {"type": "LoadBalancer"}}


def test_flow_style_list_is_expanded_whole():
    assert objs("{kind: List, apiVersion: v1, items: [{kind: Node, metadata: {name: nd}}]}\n") == \
        [{"kind": "Node", "metadata": {"name": "nd"}}]


def test_json_list_and_stream():
    lst = {"kind": "BGPPeerList", "apiVersion": "metallb.io/v1beta2", "items": [{"metadata": {"name": "p"}}]}
    text = json.dumps(lst, indent=4) + "\n" + json.dumps({"kind": "Node", "metadata": {"name": "n"}}) + "\n"
    assert objs(text, "f.json") == [{"kind": "BGPPeer", "apiVersion": "metallb.io/v1beta2", "metadata": {"name": "p"}},
                                    {"kind": "Node", "metadata": {"name": "n"}}]
    out, issues = parse_bytes(b'{"a": 1', "f.json")
    assert out == [] and "JSON syntax error" in issues[0].message


def test_byte_order_mark_and_crlf():
    assert objs("\ufeffa: 1\r\n---\r\nb: yes\r\n") == [{"a": 1}, {"b": True}]


_keys = st.sampled_from(["name", "kind", "items", "a", "on", "spec", "- x", "k: v", "#c"])
_scalars = st.one_of(st.integers(-10**6, 10**6), st.booleans(), st.none(), st.sampled_from(
    ["yes", "0755", "64500:100", "---", "- a", "a: b", "", " x ", "#", "on", "2026-01-01", "'q'"]),  # (not "1e3": PyYAML writes it bare, go-yaml and yaml-rs read a float)
    st.text(alphabet="abc :-#'\"\n", max_size=8))
_docs = st.recursive(_scalars, lambda c: st.one_of(st.lists(c, max_size=3), st.dictionaries(_keys, c, max_size=3)),
                     max_leaves=12)


@settings(max_examples=200, deadline=None)
@given(st.lists(_docs, min_size=1, max_size=4), st.booleans())
def test_dumped_documents_read_back_as_written(docs, as_list):
    """PyYAML writes (quoting what YAML 1.1 would read otherwise); both shapes read back exactly."""
    if as_list:
        text = yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": docs}, default_flow_style=False)
        want = [d for d in docs if d is not None]  # a null item is no object
    else:
        text = yaml.safe_dump_all(docs, default_flow_style=False, explicit_start=True)
        want = [d for d in docs if d is not None]
    assert objs(text) == want


def test_kubectl_shaped_services_read_as_a_whole_parse(tmp_path):
    import sys
    sys.path.insert(0, "bench")
    import kubegen
    svcs = kubegen.services(30, seed=3)
    for fmt in ("yaml", "json"):
        for shape in ("list", "docs"):
            text = kubegen.render(svcs, fmt, shape)
            assert objs(text, "f." + fmt) == svcs, (fmt, shape)
