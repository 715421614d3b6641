"""The controller against the API emulator (real HTTP, resourceVersions, /status, Leases with 409)."""
from __future__ import annotations

import asyncio
import contextlib

import pytest

from speakerd.kube.kinds import IPADDRESSPOOLS, LEASES, SERVICES

from .emu import FAST, NS, Watcher, cluster, controller, create, events_for, ingress, stats
from .objs import pool, svc


async def test_assigns_publishes_status_annotation_event_and_pool_status():
    async with cluster(pool("p", "192.0.2.0/30", "2001:db8::/126")) as (emu, api, services, events), \
            controller(emu.url) as (c, _):
        await create(api, svc("web"))
        await services.until(lambda s: ingress(s.get("default/web", {})) == ("192.0.2.0",), "web assigned")
        obj = services.cache["default/web"]
        assert obj["metadata"]["annotations"]["metallb.io/ip-allocated-from-pool"] == "p"
        await events.until(lambda e: events_for(e, "web"), "the IPAllocated event")
        assert events_for(events.cache, "web") == [("Normal", "IPAllocated", 'Assigned IP ["192.0.2.0"]')]
        pools = Watcher(api, IPADDRESSPOOLS, NS)
        await pools.until(lambda s: (s.get(f"{NS}/p", {}).get("status") or {}).get("assignedIPv4") == 1, "pool status")
        assert pools.cache[f"{NS}/p"]["status"] == {"assignedIPv4": 1, "assignedIPv6": 0, "availableIPv4": 3,
                                                    "availableIPv6": 4}
        await pools.close()
        # deleted -> released: the next Service gets the address
        await api.delete(SERVICES, "default", "web")
        await create(api, svc("api"))
        await services.until(lambda s: ingress(s.get("default/api", {})) == ("192.0.2.0",), "api gets the freed address")


# (pools, [(service, expected ingress, expected Warning message or None)]) -- MetalLB's answers
RULES = {
    "loadBalancerIPs": ([pool("p", "192.0.2.0/28")], [(svc("a", ips="192.0.2.7"), ("192.0.2.7",), None)]),
    "loadBalancerIP": ([pool("p", "192.0.2.0/28")], [(svc("a", lbip="192.0.2.9"), ("192.0.2.9",), None)]),
    "both set": ([pool("p", "192.0.2.0/28")], [(svc("a", ips="192.0.2.7", lbip="192.0.2.7"), (),
        'Failed to allocate IP for "default/a": service can not have both metallb.io/loadBalancerIPs and svc.Spec.LoadBalancerIP')]),
    "in no pool": ([pool("p", "192.0.2.0/28")], [(svc("a", ips="10.0.0.9"), (),
        'Failed to allocate IP for "default/a": ["10.0.0.9"] is not allowed in config')]),
    "taken": ([pool("p", "192.0.2.0/28")], [(svc("a", ips="192.0.2.1"), ("192.0.2.1",), None), (svc("b", ips="192.0.2.1"), (),
        'Failed to allocate IP for "default/b": can\'t change sharing key for "default/b", address also in use by default/a')]),
    "shared": ([pool("p", "192.0.2.0/28")], [(svc("a", share="k"), ("192.0.2.0",), None),
                                              (svc("b", share="k", ports=(("TCP", 443),)), ("192.0.2.0",), None)]),
    "share port clash": ([pool("p", "192.0.2.0/28")], [(svc("a", share="k", ips="192.0.2.4"), ("192.0.2.4",), None),
        (svc("b", share="k", ips="192.0.2.4"), (), 'Failed to allocate IP for "default/b": port TCP/80 is already in use on "192.0.2.4"')]),
    "exhausted": ([pool("p", "192.0.2.0/32")], [(svc("a"), ("192.0.2.0",), None),
                                                 (svc("b"), (), 'Failed to allocate IP for "default/b": no available IPs')]),
    "address-pool": ([pool("p", "192.0.2.0/28"), pool("q", "198.51.100.0/28", auto=False)],
                     [(svc("a", pool="q"), ("198.51.100.0",), None)]),
    "require dual": ([pool("v4", "192.0.2.0/28"), pool("v6", "2001:db8::/124")],
                     [(svc("a", families=("IPv4", "IPv6"), policy="RequireDualStack"), (),
                       'Failed to allocate IP for "default/a": no available IPs')]),
    "prefer dual": ([pool("d", "192.0.2.0/28", "2001:db8::/124")],
                    [(svc("a", families=("IPv4", "IPv6"), policy="PreferDualStack"), ("192.0.2.0", "2001:db8::"), None)]),
    "priority": ([pool("any", "198.51.100.0/28"), pool("team", "192.0.2.0/28", alloc={"priority": 1, "namespaces": ["default"]})],
                 [(svc("a"), ("192.0.2.0",), None)]),
    "buggy": ([pool("p", "192.0.2.255-192.0.3.1", buggy=True)], [(svc("a"), ("192.0.3.1",), None)]),
}


@pytest.mark.parametrize("rule", sorted(RULES))
async def test_rule_against_the_api(rule):
    pools_, cases = RULES[rule]
    async with cluster(*pools_) as (emu, api, services, events), controller(emu.url) as (c, _):
        for obj, want, warning in cases:  # one after the other: the order decides who comes first
            name = obj["metadata"]["name"]
            await create(api, obj)
            if want:
                await services.until(lambda s: ingress(s.get(f"default/{name}", {})) == want, f"{name} gets {want}")
            else:
                await events.until(lambda e: any(m == warning for _, _, m in events_for(e, name)), f"{name}: {warning}")
                assert ingress(services.cache[f"default/{name}"]) == ()


async def test_lb_class_services_of_another_class_are_left_alone():
    async with cluster(pool("p", "192.0.2.0/28")) as (emu, api, services, events), \
            controller(emu.url, lb_class="speakerd") as (c, _):
        await create(api, svc("theirs"))  # no class: not ours under --lb-class
        await create(api, svc("ours", lb_class="speakerd"))
        await services.until(lambda s: ingress(s.get("default/ours", {})) == ("192.0.2.0",), "ours assigned")
        assert ingress(services.cache["default/theirs"]) == ()
        assert events_for(events.cache, "theirs") == []


async def test_restart_rebuilds_from_status_and_never_renumbers():
    async with cluster(pool("p", "192.0.2.0/28")) as (emu, api, services, events):
        await create(api, svc("b"), status=("192.0.2.9",))  # assigned by an earlier controller
        await create(api, svc("c"), status=("192.0.2.0",))
        await create(api, svc("a"))
        async with controller(emu.url) as (c, _):
            await services.until(lambda s: ingress(s.get("default/a", {})) == ("192.0.2.1",), "a gets the lowest free")
            await events.until(lambda e: events_for(e, "a"), "a's event")
        cache = services.cache
        assert ingress(cache["default/b"]) == ("192.0.2.9",) and ingress(cache["default/c"]) == ("192.0.2.0",)
        # b and c get only the annotation (their status is already right), a gets annotation + status;
        # one Event, for a: nothing to say about b and c
        assert (c.written["annotation"], c.written["status"]) == (3, 1)
        assert events_for(events.cache, "b") == events_for(events.cache, "c") == []
        assert len(events_for(events.cache, "a")) == 1


async def test_two_controllers_one_leader_the_other_writes_nothing_then_takes_over():
    async with cluster(pool("p", "192.0.2.0/24")) as (emu, api, services, events), \
            controller(emu.url, identity="one", election=FAST) as (one, t1), \
            controller(emu.url, identity="two", election=FAST) as (two, t2):
        leases = Watcher(api, LEASES, NS)
        await leases.until(lambda s: (s.get(f"{NS}/speakerd-controller", {}).get("spec") or {}).get("holderIdentity"),
                           "a lease holder")
        for i in range(20):
            await create(api, svc(f"s{i}"))
        await services.until(lambda s: all(ingress(s.get(f"default/s{i}", {})) for i in range(20)), "20 assigned")
        leader, other = (one, two) if one.is_leader else (two, one)
        leader_task = t1 if leader is one else t2
        assert not other.is_leader and other.writes == 0
        before = {k: ingress(v) for k, v in services.cache.items()}
        # the leader dies without giving the Lease up (kill -9): the other waits for it to expire
        leader.release_on_exit = False
        leader_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await leader_task
        await leases.until(lambda s: s[f"{NS}/speakerd-controller"]["spec"]["holderIdentity"] == other.identity,
                           "the other takes the lease")
        await create(api, svc("late"))
        await services.until(lambda s: ingress(s.get("default/late", {})), "late assigned by the new leader")
        after = {k: ingress(v) for k, v in services.cache.items() if k != "default/late"}
        assert after == before  # no address changed
        got = [ip for v in services.cache.values() for ip in ingress(v)]
        assert len(got) == len(set(got)) == 21
        assert other.writes > 0
        await leases.close()


async def test_deleted_and_recreated_while_the_leader_changes():
    async with cluster(pool("p", "192.0.2.0/29")) as (emu, api, services, events), \
            controller(emu.url, identity="one", election=FAST) as (one, t1):
        for n in ("a", "b"):
            await create(api, svc(n))
        await services.until(lambda s: ingress(s.get("default/a", {})) and ingress(s.get("default/b", {})), "a, b")
        b_ip = ingress(services.cache["default/b"])
        one.release_on_exit = False  # killed
        t1.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await t1
        # no leader: a is deleted and created again (new uid, empty status); c arrives
        await api.delete(SERVICES, "default", "a")
        await create(api, svc("a", share="new"))
        await create(api, svc("c"))
        async with controller(emu.url, identity="two", election=FAST) as (two, _):
            await services.until(lambda s: all(ingress(s.get(f"default/{n}", {})) for n in "abc"), "a, b, c assigned")
        cache = services.cache
        assert ingress(cache["default/b"]) == b_ip
        got = [ip for n in "abc" for ip in ingress(cache[f"default/{n}"])]
        assert len(set(got)) == 3


async def test_a_thousand_services_at_once():
    async with cluster(pool("p", "198.18.0.0/20")) as (emu, api, services, events):
        async with controller(emu.url) as (c, _):
            await c.leading.wait()
            before = await stats(emu)
            await asyncio.gather(*(create(api, svc(f"s{i}", ns=f"ns{i % 10}")) for i in range(1000)))
            await services.until(lambda s: sum(1 for v in s.values() if ingress(v)) == 1000, "1000 assigned")
            got = [ip for v in services.cache.values() for ip in ingress(v)]
            assert len(got) == len(set(got)) == 1000
            await events.until(lambda e: len(e) == 1000, "1000 events")
            after = await stats(emu)
        writes = {k: after["requests"].get(k, 0) - before["requests"].get(k, 0) for k in ("patch", "update", "create")}
        # the controller's writes: per Service the annotation and the status (patches, made before its Event)
        # and one Event (create), plus IPAddressPool status patches; the test's own 1000 creates are the rest
        assert writes["create"] == 2000  # (updates are the Lease renewals)
        assert c.written["annotation"] == c.written["status"] == 1000
        assert 2000 <= writes["patch"] <= 2000 + c.written["pool-status"] + 1
