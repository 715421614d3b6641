"""The image with --network host, as the DaemonSet runs it, against FRR in a network namespace.

A host network is the engine's own (the root namespace), so the router cannot
simply be another namespace on the side: a veth pair joins the root namespace
(198.19.254.1/30) to a lab namespace (198.19.254.2/30) where FRR runs.  Only
those two ends carry the addresses (benchmarking range, RFC 2544); the pair
dies with the namespace, and is deleted explicitly as well.
"""
from __future__ import annotations

import secrets

import pytest

from tests.container import engine
from tests.container.conftest import unavailable
from tests.container.test_image import CAPS, assert_runs_as_image_user, ctl
from tests.interop import netlab
from tests.interop.netlab_daemons import Frr, Neighbor

HOST_IP, FRR_IP = "198.19.254.1", "198.19.254.2"
SPEAKERD_AS, FRR_AS = 64500, 64501

CONFIG = f"""\
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {{name: frr, namespace: metallb-system}}
spec:
  myASN: {SPEAKERD_AS}
  peerASN: {FRR_AS}
  peerAddress: {FRR_IP}
  sourceAddress: {HOST_IP}
  routerID: {HOST_IP}
  connectTime: 2s
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {{name: pool, namespace: metallb-system}}
spec:
  addresses: [203.0.113.0/28]
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {{name: adv, namespace: metallb-system}}
spec:
  communities: ["64500:7"]
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: default}}
spec:
  type: LoadBalancer
  ports: [{{port: 80}}]
---
apiVersion: v1
kind: Service
metadata:
  name: dns
  namespace: default
  annotations: {{metallb.universe.tf/loadBalancerIPs: 203.0.113.10}}
spec:
  type: LoadBalancer
  ports: [{{port: 53, protocol: UDP}}]
"""


@pytest.fixture
def frr_behind_veth():
    """FRR in a lab namespace, reachable from the root namespace over a veth pair."""
    missing = netlab.missing_requirements(("frr",))
    if missing:
        unavailable("FRR in a namespace unavailable: " + ", ".join(missing))
    host_dev = f"sdh{secrets.token_hex(3)}"
    with netlab.Lab("container-host-network") as lab:
        ns = lab.ns("frr")
        ns_dev = f"sdn{host_dev[3:]}"
        netlab.sh(["ip", "link", "add", host_dev, "type", "veth", "peer", "name", ns_dev, "netns", ns.name])
        lab.cleanups.append(lambda: netlab.sh(["ip", "link", "del", host_dev], check=False))
        netlab.sh(["ip", "addr", "add", f"{HOST_IP}/30", "dev", host_dev])
        netlab.sh(["ip", "link", "set", host_dev, "up"])
        ns.exec("ip", "addr", "add", f"{FRR_IP}/30", "dev", ns_dev)
        ns.exec("ip", "link", "set", ns_dev, "up")
        frr = Frr(ns, lab.subdir("frr"), FRR_AS, FRR_IP, [Neighbor(HOST_IP, SPEAKERD_AS)])
        try:
            yield frr
        except BaseException:
            print(lab.logs())
            raise


def test_host_network_routes_reach_frr(image, frr_behind_veth, tmp_path):
    frr = frr_behind_veth
    cfg = tmp_path / "config"
    cfg.mkdir(mode=0o755)
    (cfg / "speakerd.yaml").write_text(CONFIG)
    name = engine.new_name("hostnet")
    try:
        # the DaemonSet's shape: host network, three capabilities, read-only root, config read-only
        engine.docker("run", "-d", "--name", name, *engine.owner_labels(), "--network", "host",
                      "--cap-drop", "ALL", *CAPS, "--read-only",
                      "--tmpfs", "/run/speakerd:uid=10001,gid=10001,mode=0750",
                      "-v", f"{cfg}:/etc/speakerd:ro", image,
                      "--node", "host-node", "--socket", "/run/speakerd/speakerd.sock")

        def frr_holds_the_plan():
            if not engine.inspect(name)["State"]["Running"]:
                raise AssertionError(f"speakerd exited:\n{engine.container_logs(name)}")
            planned = {r["prefix"] for r in ctl(name, "show", "bgp", "ipv4")["routes"]}
            routes = frr.routes()
            return planned and set(routes) == planned and routes

        routes = netlab.wait_for(frr_holds_the_plan, 60, "FRR in the namespace holding speakerd's routes")
        assert set(routes) == {"203.0.113.1/32", "203.0.113.10/32"}  # web: as `speakerd plan` assigns it
        for r in routes.values():
            assert r["next_hop"] == HOST_IP and r["as_path"] == [SPEAKERD_AS]
            assert r["communities"] == ["64500:7"]
        assert frr.established(HOST_IP)
        # speakerd bound TCP 179 on the host address: CAP_NET_BIND_SERVICE from the file capabilities
        listening = netlab.sh(["ss", "-Hltn", "src", f"{HOST_IP}:179"])
        assert f"{HOST_IP}:179" in listening, listening
        assert_runs_as_image_user(name)
    except BaseException:
        print(f"---- {name} ----\n{engine.container_logs(name)}")
        raise
    finally:
        engine.remove_container(name)
