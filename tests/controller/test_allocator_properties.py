"""Properties of the allocator over random Services and operation sequences (hypothesis)."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from speakerd.config.model import Config, Service
from speakerd.controller.allocator import Allocator, backend_key
from speakerd.controller.objects import pools_from_objects
from speakerd.policy.allocate import allocate

from .objs import pool

POOLS, _ = pools_from_objects([pool("a", "192.0.2.0/29", "2001:db8::/125"), pool("b", "198.51.100.0/30", buggy=True),
                               pool("c", "203.0.113.0/30", auto=False)])
FAMILIES = {"v4": ((4,), "SingleStack"), "v6": ((6,), "SingleStack"), "prefer": ((4, 6), "PreferDualStack"),
            "require": ((4, 6), "RequireDualStack"), "prefer6": ((6, 4), "PreferDualStack")}

service = st.builds(
    lambda ns, n, fam, share, ports, local, sel, pool_, req: Service(
        namespace=ns, name=f"s{n}", ips=(), pool=pool_, families=FAMILIES[fam][0], ip_family_policy=FAMILIES[fam][1],
        dual_stack=len(FAMILIES[fam][0]) == 2, sharing_key=share, ports=tuple(sorted(ports)),
        traffic_policy="Local" if local else "Cluster", selector=(("app", sel),), requested_ips=req,
        ingress_ips=()),
    st.sampled_from(["default", "team"]), st.integers(0, 30), st.sampled_from(sorted(FAMILIES)),
    st.sampled_from([None, None, "k1", "k2"]), st.frozensets(st.tuples(st.sampled_from(["TCP", "UDP"]), st.sampled_from([80, 443])),
                                                           min_size=1),
    st.booleans(), st.sampled_from(["x", "y"]), st.sampled_from([None, None, None, "a", "b", "c"]),
    st.sampled_from([(), (), (), ("192.0.2.1",), ("198.51.100.1",), ("203.0.113.2",), ("192.0.2.3", "2001:db8::3")]),
)

ops = st.lists(st.one_of(st.tuples(st.just("converge"), service), st.tuples(st.just("delete"), st.integers(0, 30))),
               max_size=60)


def check_invariants(alloc: Allocator, services: dict[str, Service]) -> None:
    users: dict[str, list[str]] = {}
    for key, ips in alloc.allocations().items():
        svc = services[key]
        pool_name = alloc.pool_of(key)
        assert pool_name in POOLS
        assert len(ips) in (1, 2) and len({":" in ip for ip in ips}) == len(ips)  # one per family
        if svc.ip_family_policy == "RequireDualStack":
            assert len(ips) == 2  # never half
        for ip in ips:
            assert not (POOLS[pool_name].avoid_buggy_ips and ip.rsplit(".", 1)[-1] in ("0", "255"))
            users.setdefault(ip, []).append(key)
    for ip, keys in users.items():
        if len(keys) > 1:  # legally shared: one non-empty key, one backend, no port twice
            svcs = [services[k] for k in keys]
            assert all(s.sharing_key for s in svcs) and len({s.sharing_key for s in svcs}) == 1, (ip, keys)
            assert len({backend_key(s) for s in svcs}) == 1, (ip, keys)
            ports = [p for s in svcs for p in s.ports]
            assert len(ports) == len(set(ports)), (ip, keys)


@settings(max_examples=150, deadline=None)
@given(ops, st.booleans())
def test_no_address_twice_unless_legally_shared(operations, spread):
    alloc = Allocator(POOLS, {}, spread=spread)
    services: dict[str, Service] = {}
    for op, arg in operations:
        if op == "converge":
            prev = services.get(arg.key)
            # as the loop does: the object comes back with the status the last decision wrote
            current = alloc.ips_of(arg.key) if prev is not None else ()
            svc = Service(**{**{f: getattr(arg, f) for f in arg.__slots__ if f != "__weakref__"}, "ingress_ips": current})
            services[svc.key] = svc
            d = alloc.converge(svc)
            assert d.ips == alloc.ips_of(svc.key)
        else:
            for ns in ("default", "team"):
                alloc.delete(f"{ns}/s{arg}")
        check_invariants(alloc, services)


@settings(max_examples=80, deadline=None)
@given(st.lists(service, max_size=25, unique_by=lambda s: s.key), st.randoms(use_true_random=False))
def test_file_mode_independent_of_the_order_seen(svcs, rnd):
    svcs = [s for s in svcs if not s.requested_ips]  # file mode: requested addresses are the Service's own
    def config(order):
        return Config(peers={}, pools=POOLS, advertisements={}, bfd_profiles={}, services={s.key: s for s in order},
                      nodes={})
    first = allocate(config(svcs))
    shuffled = svcs[:]
    rnd.shuffle(shuffled)
    assert allocate(config(shuffled), {s.key: ("192.0.2.5",) for s in svcs}) == first
    check_invariants_file(first[0], {s.key: s for s in svcs})


def check_invariants_file(assignment: dict[str, tuple[str, ...]], services: dict[str, Service]) -> None:
    users: dict[str, list[Service]] = {}
    for key, ips in assignment.items():
        for ip in ips:
            users.setdefault(ip, []).append(services[key])
    for ip, svcs in users.items():
        if len(svcs) > 1:
            assert all(s.sharing_key for s in svcs) and len({s.sharing_key for s in svcs}) == 1
            assert len({backend_key(s) for s in svcs}) == 1
            ports = [p for s in svcs for p in s.ports]
            assert len(ports) == len(set(ports))
