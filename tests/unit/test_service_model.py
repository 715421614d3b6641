"""config.model.Service: the compact storage (extras, uid) reads back what was given."""
from __future__ import annotations

import dataclasses
import uuid

from hypothesis import given, strategies as st

from speakerd.config.model import EXTRA_FIELDS, NO_EXTRAS, Service, compact_uid


@given(st.text(max_size=40) | st.uuids().map(str) | st.uuids().map(lambda u: str(u).upper()))
def test_uid_reads_back_as_given(text):
    svc = Service("ns", "web", (), uid=text)
    assert svc.uid == text
    assert dataclasses.replace(svc, traffic_policy="Local").uid == text


def test_kubernetes_uid_is_kept_as_an_int():
    text = str(uuid.uuid4())
    assert compact_uid(text) == uuid.UUID(text).int
    assert compact_uid(text.upper()) == text.upper()  # not canonical: kept as text
    assert Service("ns", "a", (), uid=text) == Service("ns", "a", (), uid=text)
    assert Service("ns", "a", (), uid=text) != Service("ns", "a", (), uid=str(uuid.uuid4()))


def test_defaults_share_one_extras_object():
    a = Service("ns", "a", ("192.0.2.1",), origin="f1")
    b = Service("ns", "b", (), traffic_policy="Cluster", pool=None)  # given, but the defaults
    assert a.extras is NO_EXTRAS and b.extras is NO_EXTRAS


values = {"pool": "p", "dual_stack": True, "service_type": "ClusterIP", "lb_class": "c",
          "requested_ips": ("192.0.2.9",), "ip_family_policy": "RequireDualStack", "sharing_key": "k",
          "traffic_policy": "Local", "selector": (("app", "x"),), "deleting": True, "request_error": "bad"}


def test_every_extra_field_reads_through_and_counts_for_equality():
    assert set(values) == set(EXTRA_FIELDS) - {"source"}
    base = Service("ns", "a", ("192.0.2.1",))
    for name, value in values.items():
        svc = Service("ns", "a", ("192.0.2.1",), **{name: value})
        assert getattr(svc, name) == value
        assert svc != base
        assert dataclasses.replace(svc, origin="elsewhere") == svc  # origin is not compared
        back = dataclasses.replace(svc, **{name: getattr(NO_EXTRAS, name)})
        assert back == base and back.extras == NO_EXTRAS
    many = Service("ns", "a", ("192.0.2.1",), **values)
    assert {n: getattr(many, n) for n in values} == values
    assert dataclasses.replace(many, pool="q").sharing_key == "k"


def test_replace_of_uid_and_labels_takes_the_new_value():
    svc = Service("ns", "a", (), uid=str(uuid.uuid4()), labels=(("app", "a"),))
    other = str(uuid.uuid4())
    assert dataclasses.replace(svc, uid=other).uid == other
    assert dataclasses.replace(svc, uid="x").uid == "x"
    assert dataclasses.replace(svc, labels=(("app", "b"), ("tier", "web"))).labels == (("app", "b"), ("tier", "web"))
    assert dataclasses.replace(svc, labels=()).labels == ()
    assert dataclasses.replace(svc, pool="p").labels == (("app", "a"),)
    assert dataclasses.replace(svc, pool="p").uid == svc.uid
