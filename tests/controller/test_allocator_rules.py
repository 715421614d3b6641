"""MetalLB v0.16's allocation rules, one test per rule, with the answer MetalLB's controller gives
(its convergeBalancer/allocator messages).  docs/allocation-rules.md points at these tests."""
from __future__ import annotations

import pytest

from speakerd.controller.allocator import Allocator
from speakerd.controller.objects import namespace_labels, pools_from_objects, service_from_object

from .objs import namespace, pool, svc


def allocator(*pool_objs, namespaces=(), lb_class=None, spread=False) -> Allocator:
    pools, problems = pools_from_objects(list(pool_objs))
    assert problems == []
    return Allocator(pools, dict(namespace_labels(n) for n in namespaces), lb_class=lb_class, spread=spread)


def conv(a: Allocator, obj: dict):
    return a.converge(service_from_object(obj))


def failed(d) -> str:
    (msg,) = [e.message for e in d.events if e.reason == "AllocationFailed"]
    return msg


# ---- requested addresses

@pytest.mark.parametrize("old", [False, True])
def test_load_balancer_ips_annotation(old):
    a = allocator(pool("p", "192.0.2.0/28"))
    d = conv(a, svc("a", ips="192.0.2.7", old_annotations=old))
    assert d.ips == ("192.0.2.7",) and d.pool == "p" and d.ok
    assert [(e.type, e.reason, e.message) for e in d.events] == [("Normal", "IPAllocated", 'Assigned IP ["192.0.2.7"]')]


def test_load_balancer_ips_annotation_dual_stack():
    a = allocator(pool("p", "192.0.2.0/28", "2001:db8::/124"))
    d = conv(a, svc("a", ips="192.0.2.3, 2001:db8::3", families=("IPv4", "IPv6"), policy="RequireDualStack"))
    assert d.ips == ("192.0.2.3", "2001:db8::3")


def test_spec_load_balancer_ip():
    a = allocator(pool("p", "192.0.2.0/28"))
    assert conv(a, svc("a", lbip="192.0.2.9")).ips == ("192.0.2.9",)


def test_annotation_and_load_balancer_ip_is_an_error():
    a = allocator(pool("p", "192.0.2.0/28"))
    d = conv(a, svc("a", ips="192.0.2.7", lbip="192.0.2.7"))
    assert d.ips == () and not d.ok
    assert failed(d) == 'Failed to allocate IP for "default/a": service can not have both metallb.io/loadBalancerIPs and svc.Spec.LoadBalancerIP'


def test_requested_ip_in_no_pool():
    a = allocator(pool("p", "192.0.2.0/28"))
    d = conv(a, svc("a", ips="10.9.9.9"))
    assert failed(d) == 'Failed to allocate IP for "default/a": ["10.9.9.9"] is not allowed in config'


def test_requested_ip_already_taken():
    a = allocator(pool("p", "192.0.2.0/28"))
    assert conv(a, svc("a", ips="192.0.2.1")).ips == ("192.0.2.1",)
    d = conv(a, svc("b", ips="192.0.2.1"))
    assert d.ips == ()
    assert failed(d) == 'Failed to allocate IP for "default/b": can\'t change sharing key for "default/b", address also in use by default/a'


def test_requested_ip_of_the_wrong_family():
    a = allocator(pool("p", "192.0.2.0/28", "2001:db8::/124"))
    d = conv(a, svc("a", ips="2001:db8::1"))
    assert failed(d) == ('Failed to allocate IP for "default/a": requested loadBalancer IP(s) ["2001:db8::1"] '
                         'does not match the ipFamily of the service')


def test_requested_ip_outside_the_annotated_pool():
    a = allocator(pool("p", "192.0.2.0/28"), pool("q", "198.51.100.0/28"))
    d = conv(a, svc("a", ips="192.0.2.1", pool="q"))
    assert failed(d) == ('Failed to allocate IP for "default/a": requested loadBalancer IP(s) ["192.0.2.1"] '
                         'is not compatible with requested address pool q')
    assert a.pool_of("default/a") is None  # nothing kept


# ---- address-pool

@pytest.mark.parametrize("old", [False, True])
def test_address_pool_annotation(old):
    a = allocator(pool("p", "192.0.2.0/28"), pool("q", "198.51.100.0/28", auto=False))
    d = conv(a, svc("a", pool="q", old_annotations=old))
    assert d.ips == ("198.51.100.0",) and d.pool == "q"


def test_address_pool_unknown_and_exhausted():
    a = allocator(pool("p", "192.0.2.0/31"))
    assert failed(conv(a, svc("a", pool="nope"))) == 'Failed to allocate IP for "default/a": unknown pool "nope"'
    assert conv(a, svc("b", pool="p")).ips == ("192.0.2.0",)
    assert conv(a, svc("c", pool="p")).ips == ("192.0.2.1",)
    assert failed(conv(a, svc("d", pool="p"))) == 'Failed to allocate IP for "default/d": no available IPs in pool p'


def test_pools_exhausted():
    a = allocator(pool("p", "192.0.2.0/32"))
    assert conv(a, svc("a")).ips == ("192.0.2.0",)
    assert failed(conv(a, svc("b"))) == 'Failed to allocate IP for "default/b": no available IPs'


# ---- allow-shared-ip

def test_shared_ip_same_key_other_ports():
    a = allocator(pool("p", "192.0.2.0/28"))
    assert conv(a, svc("a", share="k", ports=(("TCP", 80),))).ips == ("192.0.2.0",)
    assert conv(a, svc("b", share="k", ports=(("TCP", 443),))).ips == ("192.0.2.0",)  # shares
    assert conv(a, svc("c", share="k", ports=(("UDP", 80),))).ips == ("192.0.2.0",)  # other protocol
    assert conv(a, svc("d", share="other", ports=(("TCP", 8080),))).ips == ("192.0.2.1",)  # other key
    assert conv(a, svc("e", ports=(("TCP", 9090),))).ips == ("192.0.2.2",)  # no key


def test_shared_ip_port_clash():
    a = allocator(pool("p", "192.0.2.0/28"))
    conv(a, svc("a", share="k", ports=(("TCP", 80),)))
    assert conv(a, svc("b", share="k", ports=(("TCP", 80),))).ips == ("192.0.2.1",)  # next address instead
    d = conv(a, svc("c", share="k", ips="192.0.2.0", ports=(("TCP", 80),)))
    assert failed(d) == 'Failed to allocate IP for "default/c": port TCP/80 is already in use on "192.0.2.0"'


def test_shared_ip_different_keys():
    a = allocator(pool("p", "192.0.2.0/28"))
    conv(a, svc("a", share="k1", ips="192.0.2.5"))
    d = conv(a, svc("b", share="k2", ips="192.0.2.5", ports=(("TCP", 443),)))
    assert failed(d) == 'Failed to allocate IP for "default/b": can\'t change sharing key for "default/b", address also in use by default/a'


def test_shared_ip_local_traffic_needs_the_same_selector():
    a = allocator(pool("p", "192.0.2.0/28"))
    conv(a, svc("a", share="k", local=True, selector={"app": "x"}, ips="192.0.2.5"))
    same = conv(a, svc("b", share="k", local=True, selector={"app": "x"}, ips="192.0.2.5", ports=(("TCP", 443),)))
    assert same.ips == ("192.0.2.5",)
    other = conv(a, svc("c", share="k", local=True, selector={"app": "y"}, ips="192.0.2.5", ports=(("TCP", 8443),)))
    assert failed(other).startswith('Failed to allocate IP for "default/c": can\'t change sharing key for "default/c", '
                                    'address also in use by default/a,default/b')
    # Cluster traffic shares regardless of selectors
    cl = conv(a, svc("d", share="k2", selector={"app": "z"}, ips="192.0.2.6"))
    assert conv(a, svc("e", share="k2", selector={"app": "w"}, ips="192.0.2.6", ports=(("TCP", 1),))).ips == cl.ips


# ---- serviceAllocation, autoAssign, avoidBuggyIPs

def test_service_allocation_priority():
    a = allocator(pool("auto", "198.51.100.0/28"),
                  pool("low", "192.0.2.16/32", alloc={"priority": 20, "namespaces": ["team"]}),
                  pool("high", "192.0.2.0/32", alloc={"priority": 10, "namespaces": ["team"]}),
                  pool("unset", "192.0.2.32/32", alloc={"namespaces": ["team"]}))
    assert conv(a, svc("a", "team")).pool == "high"
    assert conv(a, svc("b", "team")).pool == "low"
    assert conv(a, svc("c", "team")).pool == "unset"  # no priority: after every set one
    assert conv(a, svc("d", "team")).pool == "auto"  # then the autoAssign pools without serviceAllocation
    assert conv(a, svc("e", "other")).pool == "auto"  # not pinned to other namespaces, never a fallback


def test_service_allocation_namespaces_limit_the_pool():
    a = allocator(pool("team", "192.0.2.0/28", alloc={"namespaces": ["team"]}))
    assert conv(a, svc("a", "team")).pool == "team"
    assert failed(conv(a, svc("b", "other"))) == 'Failed to allocate IP for "other/b": no available IPs'
    d = conv(a, svc("c", "other", ips="192.0.2.9"))
    assert failed(d) == 'Failed to allocate IP for "other/c": pool team not compatible for ip assignment'
    d = conv(a, svc("e", "other", pool="team"))  # the annotation does not override it
    assert failed(d) == 'Failed to allocate IP for "other/e": pool team not compatible for ip assignment'


def test_service_allocation_namespace_selectors():
    a = allocator(pool("prod", "192.0.2.0/28", alloc={"namespaceSelectors": [{"matchLabels": {"env": "prod"}}]}),
                  pool("any", "198.51.100.0/28"),
                  namespaces=[namespace("shop", env="prod"), namespace("lab", env="dev")])
    assert conv(a, svc("a", "shop")).pool == "prod"
    assert conv(a, svc("b", "lab")).pool == "any"
    a.set_pools(a.pools, dict(namespace_labels(n) for n in [namespace("shop", env="prod"), namespace("lab", env="prod")]))
    assert conv(a, svc("c", "lab")).pool == "prod"  # relabelled namespace


def test_service_allocation_service_selectors():
    a = allocator(pool("web", "192.0.2.0/28", alloc={"serviceSelectors": [
        {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web"]}]}]}),
        pool("any", "198.51.100.0/28"))
    assert conv(a, svc("a", labels={"tier": "web"})).pool == "web"
    assert conv(a, svc("b", labels={"tier": "db"})).pool == "any"


def test_service_allocation_priority_only_selects_every_service():
    a = allocator(pool("any", "198.51.100.0/28"), pool("first", "192.0.2.0/28", alloc={"priority": 1}))
    assert conv(a, svc("a", "whatever")).pool == "first"


def test_auto_assign_false():
    a = allocator(pool("manual", "192.0.2.0/28", auto=False))
    assert failed(conv(a, svc("a"))) == 'Failed to allocate IP for "default/a": no available IPs'
    assert conv(a, svc("b", pool="manual")).ips == ("192.0.2.0",)
    assert conv(a, svc("c", ips="192.0.2.9")).ips == ("192.0.2.9",)


def test_avoid_buggy_ips():
    a = allocator(pool("p", "192.0.2.255-192.0.3.1", buggy=True))
    assert conv(a, svc("a")).ips == ("192.0.3.1",)  # .255 and .0 skipped
    d = conv(a, svc("b", ips="192.0.3.0"))
    assert failed(d) == 'Failed to allocate IP for "default/b": ["192.0.3.0"] is not allowed in config'
    assert a.counters("p").status() == {"assignedIPv4": 1, "assignedIPv6": 0, "availableIPv4": 0, "availableIPv6": 0}


# ---- families

def test_require_dual_stack_both_from_one_pool():
    a = allocator(pool("v4", "192.0.2.0/28"), pool("both", "198.51.100.0/28", "2001:db8::/124"))
    d = conv(a, svc("a", families=("IPv4", "IPv6"), policy="RequireDualStack"))
    assert d.ips == ("198.51.100.0", "2001:db8::") and d.pool == "both"


def test_require_dual_stack_without_both_is_a_failure_not_half():
    a = allocator(pool("v4", "192.0.2.0/28"), pool("v6", "2001:db8::/124"))
    d = conv(a, svc("a", families=("IPv4", "IPv6"), policy="RequireDualStack"))
    assert d.ips == () and failed(d) == 'Failed to allocate IP for "default/a": no available IPs'
    assert a.counters("v4").assigned_ipv4 == 0 and a.counters("v6").assigned_ipv6 == 0


def test_require_dual_stack_with_one_cluster_family():
    a = allocator(pool("both", "192.0.2.0/28", "2001:db8::/124"))
    d = conv(a, svc("a", families=("IPv4",), policy="RequireDualStack"))
    assert d.ips == () and not d.ok
    assert [(e.type, e.reason) for e in d.events] == [("Warning", "not enough clusterips")]


def test_prefer_dual_stack():
    a = allocator(pool("v4", "192.0.2.0/28"))
    d = conv(a, svc("a", families=("IPv4", "IPv6"), policy="PreferDualStack"))
    assert d.ips == ("192.0.2.0",)  # only IPv4 exists: one address
    pools, _ = pools_from_objects([pool("v4", "192.0.2.0/28", "2001:db8::/124")])
    a.set_pools(pools, {})
    d = conv(a, svc("a", families=("IPv4", "IPv6"), policy="PreferDualStack", status=d.ips))
    assert d.ips == ("192.0.2.0", "2001:db8::")  # the other family added, the first one kept
    assert [e.message for e in d.events] == ['Assigned additional IP "2001:db8::"']


def test_prefer_dual_stack_ipv6_first_takes_the_ipv6_pool():
    a = allocator(pool("v4", "192.0.2.0/28"), pool("v6", "2001:db8::/124"))
    d = conv(a, svc("a", families=("IPv6", "IPv4"), policy="PreferDualStack"))
    assert d.ips == ("2001:db8::",)


def test_single_stack_ipv6():
    a = allocator(pool("both", "192.0.2.0/28", "2001:db8::/124"))
    assert conv(a, svc("a", families=("IPv6",))).ips == ("2001:db8::",)


# ---- loadBalancerClass, deletion, release

def test_load_balancer_class():
    plain = allocator(pool("p", "192.0.2.0/28"))
    d = conv(plain, svc("a", lb_class="example.com/other"))
    assert d.ips == () and not d.manage and d.events == ()
    assert conv(plain, svc("b")).ips == ("192.0.2.0",)
    mine = allocator(pool("p", "192.0.2.0/28"), lb_class="speakerd")
    assert not conv(mine, svc("a")).manage  # without a class: not ours under --lb-class
    assert conv(mine, svc("b", lb_class="speakerd")).ips == ("192.0.2.0",)


def test_class_and_type_change_release():
    a = allocator(pool("p", "192.0.2.0/31"))
    conv(a, svc("a"))
    d = conv(a, svc("a", lb_class="example.com/other"))
    assert d.freed and not d.manage and a.ips_of("default/a") == ()
    conv(a, svc("b"))
    d = conv(a, svc("b", svc_type="ClusterIP"))
    assert d.freed and d.manage and d.ips == () and d.pool is None  # status and annotation cleared
    assert conv(a, svc("c")).ips == ("192.0.2.0",)


def test_deleting_service_keeps_its_address_and_gets_none():
    a = allocator(pool("p", "192.0.2.0/28"))
    assert conv(a, svc("a", status=("192.0.2.5",), deleting=True)).ips == ("192.0.2.5",)
    assert conv(a, svc("b", ips="192.0.2.5")).ips == ()  # still taken until the object is gone
    d = conv(a, svc("c", deleting=True))
    assert d.ips == () and d.events == ()
    assert a.delete("default/a")
    assert conv(a, svc("b", ips="192.0.2.5")).ips == ("192.0.2.5",)


def test_delete_frees_for_the_next():
    a = allocator(pool("p", "192.0.2.0/32"))
    conv(a, svc("a"))
    assert not conv(a, svc("b")).ok
    assert a.delete("default/a") and not a.delete("default/a")
    assert conv(a, svc("b")).ips == ("192.0.2.0",)


# ---- status: rebuild without renumbering; changes of request

def test_status_is_kept_never_renumbered():
    a = allocator(pool("p", "192.0.2.0/28"))
    d = conv(a, svc("a", status=("192.0.2.9",)))
    assert d.ips == ("192.0.2.9",) and d.events == ()  # nothing to say, nothing renumbered
    assert conv(a, svc("b")).ips == ("192.0.2.0",)


def test_status_outside_the_pools_is_cleared_and_reallocated():
    a = allocator(pool("p", "192.0.2.0/28"))
    d = conv(a, svc("a", status=("10.1.1.1",)))
    assert d.ips == ("192.0.2.0",)
    assert [e.reason for e in d.events] == ["ClearAssignment", "IPAllocated"]
    assert d.events[0].message == ('current IP for "default/a" not allowed by config, will attempt for new IP '
                                   'assignment: ["10.1.1.1"] is not allowed in config')


def test_two_services_with_one_status_address_keep_the_first():
    a = allocator(pool("p", "192.0.2.0/28"))
    assert conv(a, svc("a", status=("192.0.2.3",))).ips == ("192.0.2.3",)
    assert conv(a, svc("b", status=("192.0.2.3",))).ips == ("192.0.2.0",)


def test_pool_annotation_change_moves_the_service():
    a = allocator(pool("p", "192.0.2.0/28"), pool("q", "198.51.100.0/28"))
    d = conv(a, svc("a", status=("192.0.2.3",), pool="q"))
    assert d.ips == ("198.51.100.0",) and d.pool == "q" and d.freed


def test_requested_ip_change_moves_the_service():
    a = allocator(pool("p", "192.0.2.0/28"))
    d = conv(a, svc("a", status=("192.0.2.3",), ips="192.0.2.4"))
    assert d.ips == ("192.0.2.4",)


def test_invalid_request_with_an_address_keeps_it():
    a = allocator(pool("p", "192.0.2.0/28"))
    d = conv(a, svc("a", status=("192.0.2.3",), ips="192.0.2.4", lbip="192.0.2.4"))
    assert d.ips == ("192.0.2.3",) and not d.ok
    assert [(e.reason, e.message) for e in d.events] == [
        ("LoadBalancerFailed", "invalid requested loadbalancer IPs: service can not have both "
         "metallb.io/loadBalancerIPs and svc.Spec.LoadBalancerIP")]


def test_pool_removed_drops_its_allocations():
    a = allocator(pool("p", "192.0.2.0/28"), pool("q", "198.51.100.0/28"))
    conv(a, svc("a", pool="q"))
    pools, _ = pools_from_objects([pool("p", "192.0.2.0/28")])
    a.set_pools(pools, {})
    assert a.ips_of("default/a") == ()
    d = conv(a, svc("a", pool="q", status=("198.51.100.0",)))
    assert d.ips == () and failed(d) == 'Failed to allocate IP for "default/a": unknown pool "q"'


def test_no_pools():
    a = allocator()
    d = conv(a, svc("a", status=("192.0.2.3",)))
    assert d.ips == () and not d.ok and d.events == ()


def test_pool_status_counters():
    a = allocator(pool("p", "192.0.2.0/30", "2001:db8::/126"), pool("big", "2001:db8:1::/64"))
    conv(a, svc("a", families=("IPv4", "IPv6"), policy="RequireDualStack", pool="p"))
    conv(a, svc("b", share="k", pool="p"))
    conv(a, svc("c", share="k", pool="p", ports=(("TCP", 443),)))  # shares b's address
    assert a.counters("p").status() == {"assignedIPv4": 2, "assignedIPv6": 1, "availableIPv4": 2, "availableIPv6": 3}
    assert a.counters("big").available_ipv6 == (1 << 63) - 1  # MetalLB's figure for a /64


def test_a_service_seen_again_before_its_status_arrives_keeps_its_address():
    """The object read back before the status write shows (or with the status cleared by hand) gets
    the same addresses, not a second allocation and no second IPAllocated Event."""
    a = allocator(pool("p", "192.0.2.0/28"))
    first = conv(a, svc("a"))
    again = conv(a, svc("a"))
    assert again.ips == first.ips == ("192.0.2.0",) and again.events == ()
    assert conv(a, svc("a", pool="p")).ips == first.ips  # the pool it names is the one it has
    moved = conv(a, svc("a", ips="192.0.2.7"))  # a different request: honoured
    assert moved.ips == ("192.0.2.7",)
