"""File mode follows the EndpointSlices in its files: a running daemon withdraws an
``externalTrafficPolicy: Local`` Service's route when its EndpointSlice file moves the
endpoint to another node, and announces it again when the endpoint comes back — the
other routes and the session untouched.  A real sender/receiver pair on loopback
(test_daemon_harness.DaemonPair), read through speakerctl.
"""
from __future__ import annotations

import yaml

from test_daemon_harness import PLANNED_V4, DaemonPair

LOCAL_IP = "198.51.100.61"
LOCAL_SERVICE = f"""
---
apiVersion: v1
kind: Service
metadata:
  name: local-web
  namespace: demo
  annotations:
    metallb.universe.tf/loadBalancerIPs: {LOCAL_IP}
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  selector: {{app: local-web}}
  ports:
  - port: 443
    targetPort: 8443
    nodePort: 31443
"""


def _slice(node: str) -> str:
    return yaml.safe_dump({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "local-web-7x2k9", "namespace": "demo",
                     "labels": {"kubernetes.io/service-name": "local-web",
                                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.244.1.7"], "nodeName": node,
                       "conditions": {"ready": True, "serving": True, "terminating": False},
                       "targetRef": {"kind": "Pod", "namespace": "demo", "name": "local-web-5d9f8-abcde"}}],
        "ports": [{"name": "https", "port": 8443, "protocol": "TCP"}]})


def _prefixes(p: DaemonPair) -> set[str]:
    return {r["prefix"] for r in p.receiver.ctl_json("show", "bgp", "ipv4", "received-routes", "sender")["routes"]}


def test_local_service_route_follows_its_endpoint_slice_file(tmp_path):
    p = DaemonPair(tmp_path, sender_extra=LOCAL_SERVICE)
    slice_file = p.sender_dir / "endpoints.yaml"
    slice_file.write_text(_slice("demo-node"))  # the sender's node
    try:
        p.start()
        want = PLANNED_V4 | {f"{LOCAL_IP}/32"}
        p.receiver.wait_for("the Local Service's route at the receiver", lambda: _prefixes(p) == want)
        opens = p.sender.neighbor("receiver")["messages"]["sent"]["open"]

        slice_file.write_text(_slice("another-node"))
        r = p.sender.ctl_json("reload")
        assert r["ok"] is True and r["reset"] == [] and r["route_changes"] == 1
        p.receiver.wait_for("the route withdrawn", lambda: _prefixes(p) == PLANNED_V4)
        text = p.sender.ctl_text("explain", "demo/local-web")
        assert f"Service demo/local-web: {LOCAL_IP}: not announced from node demo-node: noLocalEndpoints" in text, text

        slice_file.write_text(_slice("demo-node"))
        assert p.sender.ctl_json("reload")["route_changes"] == 1
        p.receiver.wait_for("the route back", lambda: _prefixes(p) == want)
        n = p.sender.neighbor("receiver")
        assert n["state"] == "Established" and n["messages"]["sent"]["open"] == opens
    finally:
        p.stop()
