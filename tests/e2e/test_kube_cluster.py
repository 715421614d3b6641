"""speakerd's Kubernetes API layer against a real cluster (kind, k3s, ...).

Runs only when ``SPEAKERD_E2E_KUBECONFIG`` names a kubeconfig; everything happens in a namespace
``speakerd-e2e-XXXX`` created and deleted here. Services are created with
``spec.loadBalancerClass: speakerd.io/e2e`` so no load-balancer implementation in the cluster acts
on them.

    SPEAKERD_E2E_KUBECONFIG=~/.kube/config .venv/bin/python -m pytest -q tests/e2e
"""
from __future__ import annotations

import asyncio
import os
import uuid

import pytest

from speakerd.kube import kinds
from speakerd.kube.client import ApiError
from speakerd.kube.config import load_client
from speakerd.kube.leader import ElectionConfig, LeaderElector
from speakerd.kube.reflector import Reflector
from speakerd.kube.writers import EventRecorder, update_status

KUBECONFIG = os.environ.get("SPEAKERD_E2E_KUBECONFIG")
pytestmark = pytest.mark.skipif(not KUBECONFIG, reason="SPEAKERD_E2E_KUBECONFIG is not set (no cluster to test against)")

NAMESPACES = kinds.Kind("", "v1", "namespaces", "Namespace", namespaced=False)


async def until(pred, timeout=60.0, what="condition"):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not pred():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


@pytest.fixture
async def cluster():
    client = await load_client(os.path.expanduser(KUBECONFIG))
    ns = f"speakerd-e2e-{uuid.uuid4().hex[:6]}"
    await client.create(NAMESPACES, None, {"metadata": {"name": ns}})
    try:
        yield client, ns
    finally:
        try:
            await client.delete(NAMESPACES, None, ns)
        finally:
            await client.close()


def service(name, port=80, labels=None):
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "labels": {"speakerd-e2e": "yes", **(labels or {})}},
            "spec": {"type": "LoadBalancer", "loadBalancerClass": "speakerd.io/e2e",
                     "ports": [{"port": port, "protocol": "TCP"}], "selector": {"app": name}}}


async def test_reflector_follows_services(cluster):
    client, ns = cluster
    events = []
    await client.create(kinds.SERVICES, ns, service("a"))
    r = Reflector(client, kinds.SERVICES, namespace=ns, label_selector="speakerd-e2e=yes",
                  on_event=lambda t, o: events.append((t, o["metadata"]["name"])), page_size=1)
    r.start()
    try:
        await asyncio.wait_for(r.synced.wait(), 60)
        assert events == [("ADDED", "a")]
        await until(lambda: r.up, what="watch up")
        await client.create(kinds.SERVICES, ns, service("b"))
        await client.patch(kinds.SERVICES, ns, "a", {"spec": {"ports": [{"port": 81, "protocol": "TCP"}]}})
        await client.patch(kinds.SERVICES, ns, "b", {"metadata": {"labels": {"speakerd-e2e": "no"}}})
        await until(lambda: len(events) == 4, what="watch events")
        assert events[1:] == [("ADDED", "b"), ("MODIFIED", "a"), ("DELETED", "b")]
        svc = await client.get(kinds.SERVICES, ns, "a")
        out = await update_status(client, kinds.SERVICES, ns, "a",
                                  lambda o: {"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]}})
        assert out["status"]["loadBalancer"]["ingress"][0]["ip"] == "192.0.2.10"
        assert out["spec"]["ports"] == svc["spec"]["ports"]
        await until(lambda: r.get(ns, "a").get("status", {}).get("loadBalancer", {}).get("ingress"),
                    what="status seen by the watch")
    finally:
        await r.stop()


async def test_event_recorder_on_a_service(cluster):
    client, ns = cluster
    svc = await client.create(kinds.SERVICES, ns, service("ev"))
    rec = EventRecorder(client, "speakerd-e2e", "node-x")
    rec.start()
    try:
        rec.event(svc, "Normal", "nodeAssigned", "announcing from node \"node-x\"")
        rec.event(svc, "Normal", "nodeAssigned", "announcing from node \"node-x\"")
        await rec.flush()
        lst = await client.list(kinds.CORE_EVENTS, ns, field_selector="involvedObject.name=ev")
        (ev,) = [e for e in lst["items"] if e["reason"] == "nodeAssigned"]
        assert ev["count"] == 2 and ev["source"]["component"] == "speakerd-e2e"
    finally:
        await rec.stop()


async def test_leader_election_two_candidates(cluster):
    client, ns = cluster
    cfg = ElectionConfig(lease_duration=6, renew_deadline=4, retry_period=1)
    log = []
    a = LeaderElector(client, ns, "speakerd-e2e", identity="a", config=cfg,
                      on_started_leading=lambda: log.append("a"))
    b = LeaderElector(client, ns, "speakerd-e2e", identity="b", config=cfg,
                      on_started_leading=lambda: log.append("b"))
    a.start()
    await until(lambda: a.leading, what="a leads")
    b.start()
    await until(lambda: b.leader == "a", what="b sees a")
    assert not b.leading
    await a.stop(release=False)                 # a crashes: b takes over once the lease expires
    await until(lambda: b.leading, timeout=60, what="b takes over")
    assert log == ["a", "b"]
    lease = await client.get(kinds.LEASES, ns, "speakerd-e2e")
    assert lease["spec"]["holderIdentity"] == "b" and lease["spec"]["leaseTransitions"] >= 1
    await b.stop()
    with pytest.raises(ApiError):
        await client.get(kinds.LEASES, ns, "no-such-lease")
