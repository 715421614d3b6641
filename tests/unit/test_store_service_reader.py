"""One reader of Service fields for the speaker's store and the controller's allocator.

``speakerd.store.validate.read_service`` reads every field either one uses; the store's
``service`` accepts LoadBalancer Services of its class whose fields are all valid, the
controller takes every Service as read (``controller.objects.service_from_object``) and answers
a bad address request with MetalLB's AllocationFailed text. Where both take a Service they
must see the same one.
"""
from __future__ import annotations

import copy
import dataclasses
import random
import sys
from pathlib import Path

from speakerd.config.common import Issues
from speakerd.config.model import Config
from speakerd.controller.objects import pool_from_object, service_from_object
from speakerd.policy.allocate import allocate
from speakerd.store import validate

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import kubegen  # noqa: E402  (Services as kubectl prints them)


def store_service(obj, lb_class=None):
    issues = Issues()
    return validate.service(obj, "api", lb_class, issues), issues


def test_store_and_controller_read_kubectl_shaped_services_alike():
    rng = random.Random(5)
    objs = [kubegen.service(i, rng, kubegen.service_ip(i) if i % 3 else None, pool="p" if i % 2 else None,
                            traffic_policy="Local" if i % 4 == 0 else "Cluster") for i in range(40)]
    dual = copy.deepcopy(objs[1])
    dual["spec"].update(ipFamilyPolicy="PreferDualStack", ipFamilies=["IPv4", "IPv6"])
    objs.append(dual)
    for obj in objs:
        s, issues = store_service(obj)
        assert s is not None and not issues.errors
        c = service_from_object(obj)
        assert c == s  # every compared field: ips, pool, families, policy, ports, selector, labels, uid ...
        assert c.service_type == "LoadBalancer" and c.request_error == ""


def test_the_stable_annotation_wins_for_both():
    obj = kubegen.service(0, random.Random(1))
    ann = obj["metadata"]["annotations"]
    ann.update({"metallb.universe.tf/address-pool": "old", "metallb.io/address-pool": "new",
                "metallb.universe.tf/loadBalancerIPs": "192.0.2.1", "metallb.io/loadBalancerIPs": "192.0.2.2",
                "metallb.universe.tf/allow-shared-ip": "k1", "metallb.io/allow-shared-ip": "k2"})
    obj["status"] = {"loadBalancer": {}}
    s, _ = store_service(obj)
    c = service_from_object(obj)
    assert (s.pool, s.requested_ips, s.sharing_key) == ("new", ("192.0.2.2",), "k2")
    assert (c.pool, c.requested_ips, c.sharing_key) == ("new", ("192.0.2.2",), "k2")


def test_a_bad_request_is_refused_by_the_speaker_and_an_allocation_error_for_the_controller():
    obj = kubegen.service(0, random.Random(1))
    obj["status"] = {"loadBalancer": {}}
    obj["metadata"]["annotations"]["metallb.io/loadBalancerIPs"] = "192.0.2.1"
    obj["spec"]["loadBalancerIP"] = "192.0.2.2"
    s, issues = store_service(obj)
    assert s is None and [i.field for i in issues.errors] == ["spec.loadBalancerIP"]
    c = service_from_object(obj)
    assert c.request_error == "service can not have both metallb.io/loadBalancerIPs and svc.Spec.LoadBalancerIP"
    assert c.requested_ips == ()
    del obj["spec"]["loadBalancerIP"]
    obj["metadata"]["annotations"]["metallb.io/loadBalancerIPs"] = "192.0.2.1,nonsense"
    assert store_service(obj)[0] is None
    c = service_from_object(obj)
    assert c.request_error == 'invalid metallb.io/loadBalancerIPs: "192.0.2.1,nonsense"' and c.requested_ips == ()


def test_the_controller_sees_every_type_and_class_the_speaker_skips():
    obj = kubegen.service(0, random.Random(1), "192.0.2.9")
    obj["spec"]["type"] = "ClusterIP"
    assert store_service(obj)[0] is None
    assert service_from_object(obj).service_type == "ClusterIP"
    obj["spec"].update(type="LoadBalancer", loadBalancerClass="other")
    s, issues = store_service(obj)
    assert s is None and [i.severity for i in issues.items] == ["info"]
    assert service_from_object(obj).lb_class == "other"
    assert store_service(obj, lb_class="other")[0] == service_from_object(obj)


def test_families_are_what_the_object_says_and_file_mode_allocates_both_for_a_dual_policy():
    obj = kubegen.service(0, random.Random(1))
    obj["status"] = {"loadBalancer": {}}
    obj["spec"].update(ipFamilyPolicy="RequireDualStack", ipFamilies=["IPv4"])
    s, _ = store_service(obj)
    assert s.families == (4,) and s.dual_stack  # as written; MetalLB's controller refuses it (one family)
    del obj["spec"]["ipFamilies"]
    obj["spec"]["clusterIPs"] = ["fd00::1"]
    assert store_service(obj)[0].families == (6,)  # no ipFamilies: the cluster IPs' family
    s = store_service(kubegen.service(0, random.Random(1)))[0]
    s = dataclasses.replace(s, ips=(), ingress_ips=(), ip_family_policy="RequireDualStack", dual_stack=True)
    pool = pool_from_object({"metadata": {"name": "p"}, "spec": {"addresses": ["192.0.2.0/30", "2001:db8::/126"]}})
    out, notes = allocate(Config(peers={}, pools={"p": pool}, advertisements={}, bfd_profiles={},
                                 services={s.key: s}, nodes={}))
    assert not notes and sorted(":" in ip for ip in out[s.key]) == [False, True]  # file mode: one of each
