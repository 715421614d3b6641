"""The shape cache of the fast YAML reader gives exactly what the full loader gives."""
import yaml
from hypothesis import given, settings, strategies as st

from speakerd.config.fastyaml import fast_load_all
from speakerd.config.load import KubeLoader


def slow(text):
    return list(yaml.load_all(text, Loader=KubeLoader))


def full(text):
    return [d for d in yaml.load_all(text, Loader=KubeLoader) if d is not None]


VALUES = ["10.0.0.1", "2001:db8::1", "80", "0x1f", "017", "1.5", "yes", "off", "null", "~", "'quoted'",
          '"dq"', "[a, b]", "[]", "{}", "2020-01-01", "64500:100", "plain", "-5", "+3", "1_000", ".inf",
          "a: b", "x:", "'it''s'"]

DOC = """apiVersion: v1
kind: Service
metadata:
  name: {name}
  annotations:
    metallb.universe.tf/loadBalancerIPs: {v1}
spec:
  ports:
  - port: {v2}
    protocol: TCP
  items:
  - {v3}
status:
  loadBalancer:
    ingress:
    - ip: {v1}
"""


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(VALUES), st.sampled_from(VALUES), st.sampled_from(["a", "b", "10.0.0.0/8"])),
                min_size=17, max_size=40),
       st.booleans())
def test_shapes_match_full_loader(rows, comment):
    docs = []
    for i, (v1, v2, v3) in enumerate(rows):
        d = DOC.format(name=f"s{i}", v1=v1, v2=v2, v3=v3)
        if comment and i % 5 == 0:
            d = "# note: " + v1 + "\n" + d
        docs.append(d)
    text = "---\n".join(docs)
    try:
        expected = full(text)
    except yaml.YAMLError:
        return
    assert fast_load_all(text, slow) == expected


def test_documents_do_not_share_mutable_values():
    text = "---\n".join(f"a:\n  b: {i}\n  c: []\n  d: {{}}\n" for i in range(20))
    docs = fast_load_all(text, slow)
    assert docs == full(text)
    docs[0]["a"]["c"].append(1)
    docs[0]["a"]["d"]["x"] = 1
    assert docs[1]["a"]["c"] == [] and docs[1]["a"]["d"] == {}


def test_inline_comment_and_tab_use_the_plain_path():
    text = "---\n".join(f"a: {i} # c{i}\nb: x\n" for i in range(20)) + "---\nc:\t1\n"
    assert fast_load_all(text, slow) == full(text)


def test_empty_and_comment_only_documents_are_skipped():
    text = "---\n".join(["# only: comment\n", "", f"a: {i}\n"][i % 3] for i in range(30))
    assert fast_load_all(text, slow) == full(text)
