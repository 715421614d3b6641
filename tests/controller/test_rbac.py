"""deploy/controller.yaml grants exactly the access the controller's calls use: every call it makes
in a run that assigns, fails, publishes pool status, takes and gives up the Lease is allowed, and every
rule is used by some call."""
from __future__ import annotations

import asyncio
import contextlib
import os
import re

import yaml

from speakerd.controller.kubeapi import Api, Credentials
from speakerd.controller.loop import Controller

from .objs import svc
from .test_controller_emu import FAST, NS, Watcher, cluster, create, events_for, ingress, pool

DEPLOY = os.path.join(os.path.dirname(__file__), "..", "..", "deploy", "controller.yaml")
PATH = re.compile(r"^/(?:api/(?P<cv>v1)|apis/(?P<g>[^/]+)/(?P<v>[^/]+))(?:/namespaces/(?P<ns>[^/]+))?/(?P<res>[^/]+)"
                  r"(?:/(?P<name>[^/]+))?(?:/(?P<sub>[^/]+))?$")


class RecordingApi(Api):
    def __init__(self, creds):
        super().__init__(creds)
        self.calls: set[tuple[str, str, str, str | None]] = set()  # (group, resource, verb, namespace)

    def _record(self, method: str, path: str, watch: bool = False) -> None:
        m = PATH.match(path)
        assert m, path
        res = m["res"] + (f"/{m['sub']}" if m["sub"] else "")
        ns = m["ns"]
        named = m["name"] is not None
        verb = {"GET": ("watch" if watch else ("get" if named else "list")), "POST": "create", "PUT": "update",
                "PATCH": "patch", "DELETE": "delete"}[method]
        self.calls.add((m["g"] or "", res, verb, ns))

    async def request(self, method, path, body=None, content_type="application/json", params=None):
        self._record(method, path)
        return await super().request(method, path, body, content_type, params)

    async def watch(self, path, rv, timeout=300):
        self._record("GET", path, watch=True)
        async for ev in super().watch(path, rv, timeout):
            yield ev


def granted() -> tuple[set, set]:
    cluster_rules, ns_rules = set(), set()
    for doc in yaml.safe_load_all(open(DEPLOY)):
        if doc["kind"] in ("ClusterRole", "Role"):
            target = cluster_rules if doc["kind"] == "ClusterRole" else ns_rules
            for rule in doc["rules"]:
                for g in rule["apiGroups"]:
                    for r in rule["resources"]:
                        for v in rule["verbs"]:
                            target.add((g, r, v))
    return cluster_rules, ns_rules


async def test_rbac_is_exactly_what_the_controller_calls():
    async with cluster(pool("p", "192.0.2.0/31")) as (emu, api, services, events):
        rec = RecordingApi(Credentials(emu.url))
        c = Controller(rec, namespace=NS, **FAST)
        task = asyncio.create_task(c.run())
        await create(api, svc("a"))
        await create(api, svc("b", ips="10.0.0.1"))  # a failure Event
        await create(api, svc("c", svc_type="LoadBalancer"))
        await services.until(lambda s: ingress(s.get("default/a", {})) and ingress(s.get("default/c", {})), "a, c")
        await events.until(lambda e: events_for(e, "b"), "b's failure")
        pools = Watcher(api, f"/apis/metallb.io/v1beta1/namespaces/{NS}/ipaddresspools")
        await pools.until(lambda s: (s.get(f"{NS}/p", {}).get("status") or {}).get("assignedIPv4") == 2, "pool status")
        await pools.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await c.stop()  # gives the Lease up (update)
        await rec.close()
    cluster_rules, ns_rules = granted()
    used_cluster, used_ns = set(), set()
    for g, res, verb, ns in rec.calls:
        if ns is None:
            assert (g, res, verb) in cluster_rules, (g, res, verb)
            used_cluster.add((g, res, verb))
        elif ns == NS and (g, res, verb) in ns_rules:
            used_ns.add((g, res, verb))
        else:  # a call into a Service's namespace: needs the ClusterRole
            assert (g, res, verb) in cluster_rules, (g, res, verb, ns)
            used_cluster.add((g, res, verb))
    assert used_cluster == cluster_rules
    assert used_ns == ns_rules  # leases: get, create (the first replica), update (renew, release)
