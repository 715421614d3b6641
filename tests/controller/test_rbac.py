"""deploy/controller.yaml grants exactly the access the controller declares (``loop.ACCESS``), and the
declaration is exactly the calls it makes in a run that assigns, fails, publishes pool status, creates,
renews and gives up the Lease: a verb the code starts or stops using fails here."""
from __future__ import annotations

import asyncio
import contextlib
import os
import re

import yaml

from speakerd import rbac
from speakerd.controller.loop import ACCESS, Controller
from speakerd.kube.client import KubeClient
from speakerd.kube.kinds import IPADDRESSPOOLS, SERVICES

from .emu import NS, Watcher, client_for, cluster, create, events_for, ingress
from .objs import pool, svc

DEPLOY = os.path.join(os.path.dirname(__file__), "..", "..", "deploy", "controller.yaml")
PATH = re.compile(r"^/(?:api/(?P<cv>v1)|apis/(?P<g>[^/]+)/(?P<v>[^/]+))(?:/namespaces/(?P<ns>[^/]+))?/(?P<res>[^/]+)"
                  r"(?:/(?P<name>[^/]+))?(?:/(?P<sub>[^/]+))?$")


class RecordingClient(KubeClient):
    """Records (group, resource, verb, namespace) of every call at the one place calls go through."""

    calls: set

    async def _call(self, method, path, query=None, body=None, content_type="application/json", timeout=30.0):
        m = PATH.match(path)
        assert m, path
        res = m["res"] + (f"/{m['sub']}" if m["sub"] else "")
        watch = any(k == "watch" for k, _ in query or ())
        verb = {"GET": ("watch" if watch else ("get" if m["name"] else "list")), "POST": "create", "PUT": "update",
                "PATCH": "patch", "DELETE": "delete"}[method]
        self.calls.add((m["g"] or "", res, verb, m["ns"]))
        return await super()._call(method, path, query, body, content_type, timeout)


def norm(rules) -> set:
    return {(g, r, v) for rule in rules for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}


def test_deploy_grants_exactly_the_declared_access():
    docs = {d["kind"]: d for d in yaml.safe_load_all(open(DEPLOY))}
    assert norm(docs["ClusterRole"]["rules"]) == norm(rbac.rules(list(ACCESS), "cluster"))
    assert norm(docs["Role"]["rules"]) == norm(rbac.rules(list(ACCESS), "namespace"))
    sa = docs["ServiceAccount"]["metadata"]
    for binding, role in (("ClusterRoleBinding", "ClusterRole"), ("RoleBinding", "Role")):
        assert docs[binding]["roleRef"]["name"] == docs[role]["metadata"]["name"]
        assert docs[binding]["subjects"] == [{"kind": "ServiceAccount", "name": sa["name"], "namespace": sa["namespace"]}]
    dep = docs["Deployment"]
    assert dep["spec"]["replicas"] == 2 and dep["metadata"]["namespace"] == sa["namespace"] == docs["Role"]["metadata"]["namespace"]
    pod = dep["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == sa["name"]
    [c] = pod["containers"]
    assert c["args"][0] == "controller" and c["securityContext"]["capabilities"]["drop"] == ["ALL"]


async def test_rbac_is_exactly_what_the_controller_calls():
    async with cluster(pool("p", "192.0.2.0/31")) as (emu, api, services, events):
        rec = await client_for(emu.url, RecordingClient)
        rec.calls = set()
        c = Controller(rec, namespace=NS)  # client-go timings: one term, one recorder
        task = asyncio.create_task(c.run())
        await create(api, svc("a"))
        await create(api, svc("b", ips="10.0.0.1"))  # a failure Event
        await create(api, svc("c", svc_type="LoadBalancer"))
        await services.until(lambda s: ingress(s.get("default/a", {})) and ingress(s.get("default/c", {})), "a, c")
        await events.until(lambda e: events_for(e, "b"), "b's failure")
        pools = Watcher(api, IPADDRESSPOOLS, NS)
        await pools.until(lambda s: (s.get(f"{NS}/p", {}).get("status") or {}).get("assignedIPv4") == 2, "pool status")
        await pools.close()
        await api.delete(SERVICES, "default", "a")  # a release: b is tried again and fails the same way
        await events.until(lambda e: any(v["involvedObject"]["name"] == "b" and v.get("count") == 2 for v in e.values()),
                           "b's failure counted twice (one Event, patched)")
        task.cancel()  # stops, and gives the Lease up (update)
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await rec.close()
    declared = {(a.group, a.resource, v, a.scope) for a in ACCESS for v in a.verbs}
    made = set()
    for g, res, verb, ns in rec.calls:
        # own namespace and declared namespace-scoped: the Role; anything else needs the ClusterRole
        scope = "namespace" if ns == NS and (g, res, verb, "namespace") in declared else "cluster"
        made.add((g, res, verb, scope))
    assert made == declared
