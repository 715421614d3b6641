"""The columnar paths: Services as rows, the fast route table, bulk address parsing.

The fast table must be indistinguishable from the general one (same routes,
attributes and reasons); the general one is forced by calling it directly."""
from __future__ import annotations

import random

import pytest

from speakerd.config import load_config
from speakerd.config.addr import parse_ip, parse_ips
from speakerd.config.model import Service
from speakerd.config.services import ServiceTable
from speakerd.policy import plan
from speakerd.policy.planner import _entries, _routes_for
from speakerd.policy.allocate import PoolIndex, allocate
from speakerd.policy.types import RouteTable, route_attrs

HEAD = """apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {{name: p, namespace: m}}
spec: {{myASN: 64512, peerASN: 64513, peerAddress: 127.0.0.2}}
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {{name: a, namespace: m}}
spec: {{addresses: [10.0.0.0/24, "2001:db8::/120"]}}
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {{name: b, namespace: m}}
spec: {{addresses: [10.1.0.0/24]}}
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {{name: ad, namespace: m}}
spec: {{communities: ["64512:1"]{agg}}}
"""


def svc(name, ip=None, pool=None, ns="default"):
    ann = []
    if ip:
        ann.append(f"    metallb.universe.tf/loadBalancerIPs: {ip}")
    if pool:
        ann.append(f"    metallb.universe.tf/address-pool: {pool}")
    annotations = ("  annotations:\n" + "\n".join(ann) + "\n") if ann else ""
    return (f"---\napiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: {ns}\n{annotations}"
            "spec:\n  type: LoadBalancer\n")


def write(tmp_path, services, agg=""):
    f = tmp_path / "c.yaml"
    f.write_text(HEAD.format(agg=agg) + "".join(services))
    return load_config(str(f))


def general(config, node="n"):
    p = plan(config, node)
    index = PoolIndex(config.pools)
    notes: list[str] = []
    entries, pool_ips = _entries(config, p.allocations, index, notes)
    ads = sorted(config.advertisements.values(), key=lambda a: a.name)
    return p, _routes_for(ads, pool_ips, entries)


def flat(table):
    return {k: (r.prefix, r.attrs, r.reasons) for k, r in table.items()}


@pytest.mark.parametrize("seed", range(5))
def test_fast_table_equals_general_table(tmp_path, seed):
    rng = random.Random(seed)
    services = []
    for i in range(60):
        choice = rng.randrange(4)
        if choice == 0:
            services.append(svc(f"s{i}", ip=f"10.0.0.{i + 1}"))
        elif choice == 1:
            services.append(svc(f"s{i}", ip=f"10.1.0.{i + 1}"))
        elif choice == 2:
            services.append(svc(f"s{i}", pool=rng.choice("ab")))
        else:
            services.append(svc(f"s{i}", ip=f"2001:db8::{i + 1:x}"))
    config = write(tmp_path, services)
    p, slow = general(config)
    fast = p.routes["p"]
    assert isinstance(fast, RouteTable)
    assert flat(fast) == flat(slow)
    assert route_attrs(fast) == {k: r.attrs for k, r in slow.items()}
    assert len(fast) == len(slow) == 60


def test_shared_prefix_takes_the_general_table(tmp_path):
    config = write(tmp_path, [svc("x", ip="10.0.0.1"), svc("y", ip="10.0.0.2")], agg=", aggregationLength: 24")
    table = plan(config, "n").routes["p"]
    assert not isinstance(table, RouteTable)
    (route,) = table.values()
    assert route.prefix == "10.0.0.0/24"
    assert [r.service for r in route.reasons] == ["default/x", "default/y"]


def test_services_are_rows_and_service_objects_on_lookup(tmp_path):
    config = write(tmp_path, [svc("x", ip="10.0.0.1"), svc("y", pool="b", ns="other")])
    assert isinstance(config.services, ServiceTable)
    x = config.services["default/x"]
    assert isinstance(x, Service) and x.ips == ("10.0.0.1",) and x.key == "default/x"
    assert x.source.file.endswith("c.yaml") and x.source.name == "default/x"
    assert config.services.get("other/y").pool == "b"
    assert config.services.get("nope") is None
    assert sorted(config.services) == ["default/x", "other/y"]
    assert allocate(config)[0] == {"other/y": ("10.1.0.82",)}


def test_invalid_service_ip_names_file_object_and_field(tmp_path):
    from speakerd.config import ConfigError
    with pytest.raises(ConfigError) as e:
        write(tmp_path, [svc("x", ip="10.0.0.300")])
    (issue,) = e.value.issues
    assert issue.obj == "Service/default/x"
    assert issue.field == "metadata.annotations[metallb.universe.tf/loadBalancerIPs]"
    assert issue.file.endswith("c.yaml")


@pytest.mark.parametrize("texts", [["10.0.0.1", "192.0.2.255"], ["10.0.0.1", "2001:db8::1"], [], ["::"]])
def test_parse_ips_matches_parse_ip(texts):
    afis, values = parse_ips(texts)
    assert list(zip(afis, values)) == [parse_ip(t) for t in texts]


@pytest.mark.parametrize("bad", ["010.0.0.1", "10.0.0", "x", "10.0.0.1 "])
def test_parse_ips_rejects(bad):
    with pytest.raises(ValueError):
        parse_ips(["10.0.0.1", bad])
