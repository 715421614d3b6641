"""What this node publishes: ServiceBGPStatus, BGPSessionState and Events, and the writer that applies them.

The writer runs against ``FakeApi``: an in-memory API with the server rules
the writer depends on (status ignored on create when /status is a
subresource, 409 on an existing name, 404 on a missing one, selectors on
list) and a switch to make calls fail.
"""
from __future__ import annotations

import asyncio
import copy

import pytest

from speakerd.publish import events as ev
from speakerd.publish.status import (
    BGP_SESSION_STATE, EVENT, SERVICE_BGP_STATUS, Observed, Owner, SessionInfo, desired_service_statuses,
    desired_session_states, node_selector, peer_label, plan_writes, service_status_name,
)
from speakerd.publish.writer import ACCESS, StatusPublisher, TokenBucket

NODE = "worker-1"
NS = "speakerd"


class FakeError(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


class FakeApi:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict] = {}  # (plural, namespace, name) -> object
        self.calls: list[tuple] = []
        self.fail: dict[str, int] = {}  # method -> HTTP status to fail with
        self.changed = asyncio.Event()
        self.access: set[tuple[str, str, str, bool]] = set()  # (group, resource, verb, in our namespace)

    def _use(self, kind, verb: str, namespace: str, subresource: str | None = None) -> None:
        resource = kind.plural + (f"/{subresource}" if subresource else "")
        self.access.add((kind.group, resource, verb, namespace == NS))

    def _check(self, method: str) -> None:
        if method in self.fail:
            raise FakeError(self.fail[method])

    async def list(self, kind, namespace, label_selector):
        self.calls.append(("list", kind.plural, label_selector))
        self._use(kind, "list", namespace)
        self._check("list")
        k, v = label_selector.split("=")
        return [copy.deepcopy(o) for (p, ns, _), o in self.objects.items()
                if p == kind.plural and ns == namespace and o["metadata"].get("labels", {}).get(k) == v]

    async def create(self, kind, namespace, body):
        self.calls.append(("create", kind.plural, body["metadata"]["name"]))
        self._use(kind, "create", namespace)
        self._check("create")
        key = (kind.plural, namespace, body["metadata"]["name"])
        if key in self.objects:
            raise FakeError(409)
        obj = copy.deepcopy(body)
        if kind is not EVENT:
            obj["status"] = {}  # status subresource: not written by create
        self.objects[key] = obj
        self.changed.set()
        return obj

    async def patch(self, kind, namespace, name, patch, subresource=None):
        self.calls.append(("patch", kind.plural, name, subresource))
        self._use(kind, "patch", namespace, subresource)
        self._check("patch")
        key = (kind.plural, namespace, name)
        if key not in self.objects:
            raise FakeError(404)
        obj = self.objects[key]
        if subresource == "status":
            obj["status"] = copy.deepcopy(patch["status"])
        elif kind is EVENT:
            obj.update(patch)
        else:
            assert "status" not in patch
            obj["metadata"].setdefault("labels", {}).update(patch["metadata"].get("labels", {}))
            if "ownerReferences" in patch["metadata"]:
                obj["metadata"]["ownerReferences"] = patch["metadata"]["ownerReferences"]
        self.changed.set()
        return obj

    async def delete(self, kind, namespace, name):
        self.calls.append(("delete", kind.plural, name))
        self._use(kind, "delete", namespace)
        self._check("delete")
        if self.objects.pop((kind.plural, namespace, name), None) is None:
            raise FakeError(404)
        self.changed.set()

    def of(self, plural: str) -> list[dict]:
        return [o for (p, _, _), o in sorted(self.objects.items()) if p == plural]

    def writes(self) -> list[tuple]:
        return [c for c in self.calls if c[0] != "list"]


# --- pure: the objects -----------------------------------------------------------------------

def test_service_bgp_status_shape_as_metallb():
    got = desired_service_statuses(NODE, {"ns3/service3": ["peer2", "peer1", "peer1"], "ns/none": []})
    assert len(got) == 1  # a Service going to no peer has no object (MetalLB deletes it)
    d = next(iter(got.values()))
    body = d.body(NS, Owner("speakerd-abcde", "uid-1"))
    assert body["apiVersion"] == "metallb.io/v1beta1" and body["kind"] == "ServiceBGPStatus"
    assert body["metadata"]["namespace"] == NS
    assert body["metadata"]["labels"]["metallb.io/node"] == NODE
    assert body["metadata"]["labels"]["metallb.io/service-name"] == "service3"
    assert body["metadata"]["labels"]["metallb.io/service-namespace"] == "ns3"
    assert body["metadata"]["ownerReferences"] == [{"apiVersion": "v1", "kind": "Pod", "name": "speakerd-abcde",
                                                     "uid": "uid-1"}]
    assert body["status"] == {"node": NODE, "serviceName": "service3", "serviceNamespace": "ns3",
                              "peers": ["peer1", "peer2"]}


def test_names_are_stable_distinct_and_valid():
    a = service_status_name(NODE, "ns/a")
    assert a == service_status_name(NODE, "ns/a")
    assert a != service_status_name(NODE, "ns/b") != service_status_name("worker-2", "ns/a")
    long = service_status_name("n" * 253, "ns/" + "x" * 63)
    assert len(long) <= 253
    s = desired_session_states("n" * 253, [SessionInfo("p", "10.0.0.1", "Idle")])
    assert all(len(name) <= 253 and not name.startswith("-") for name in s)


def test_bgp_session_state_shape_as_frr_k8s():
    got = desired_session_states(NODE, [
        SessionInfo("p4", "172.19.0.100", "Established"),
        SessionInfo("p6", "fd00::1", "Active", vrf="red", bfd_state="down"),
    ])
    by_peer = {d.body(NS)["status"]["peer"]: d.body(NS) for d in got.values()}
    v4 = by_peer["172.19.0.100"]
    assert v4["apiVersion"] == "frrk8s.metallb.io/v1beta1" and v4["kind"] == "BGPSessionState"
    assert v4["status"] == {"node": NODE, "peer": "172.19.0.100", "vrf": "", "bgpStatus": "Established",
                            "bfdStatus": "N/A"}
    assert v4["metadata"]["labels"]["frrk8s.metallb.io/node"] == NODE
    v6 = by_peer["fd00-0000-0000-0000-0000-0000-0000-0001"]
    assert v6["status"]["vrf"] == "red" and v6["status"]["bfdStatus"] == "down"
    assert v6["metadata"]["labels"]["frrk8s.metallb.io/vrf"] == "red"


def test_peer_label():
    assert peer_label("10.0.0.1") == "10.0.0.1"
    assert peer_label("fe80::1%eth0") == "fe80-0000-0000-0000-0000-0000-0000-0001"
    assert peer_label("eth0") == "eth0"  # unnumbered: the interface


def test_plan_writes_is_the_difference():
    want = desired_service_statuses(NODE, {"a/x": ["p1"], "a/y": ["p1"]})
    nx, ny = service_status_name(NODE, "a/x"), service_status_name(NODE, "a/y")
    seen = {nx: Observed.written(want[nx]), "bgp-stale": Observed("bgp-stale", (), ())}
    ops = plan_writes(SERVICE_BGP_STATUS, seen, want)
    assert [(o.action, o.name) for o in ops] == [("delete", "bgp-stale"), ("create", ny)]
    changed = desired_service_statuses(NODE, {"a/x": ["p1", "p2"]})
    assert [(o.action, o.name) for o in plan_writes(SERVICE_BGP_STATUS, seen, changed)] == [
        ("delete", "bgp-stale"), ("status", nx)]


def test_observed_from_the_server_equals_what_was_written():
    d = next(iter(desired_service_statuses(NODE, {"a/x": ["p2", "p1"]}).values()))
    assert Observed.of(d.body(NS)) == Observed.written(d)


# --- pure: events ----------------------------------------------------------------------------

def test_event_specs():
    spec = ev.announced("default/web", NODE, uid="u1")
    assert spec.reason == "nodeAssigned" and spec.type == "Normal"
    assert spec.message == 'announcing from node "worker-1" with protocol "bgp"'  # MetalLB's words
    assert spec.obj.reference() == {"apiVersion": "v1", "kind": "Service", "name": "web", "namespace": "default",
                                    "uid": "u1"}
    w = ev.withdrawn("default/web", NODE, "noLocalEndpoints: ...")
    assert w.reason == "serviceWithdrawn" and "noLocalEndpoints" in w.message
    bad = ev.invalid(ev.ObjectRef("BGPPeer", "metallb-system", "p1", "metallb.io/v1beta2"), "spec.holdTime: bad")
    assert bad.type == "Warning" and bad.reason == "invalidObject"


def test_invalid_object_events_from_issues():
    from speakerd.config.model import ConfigIssue
    e = ev.invalid_from_issue(ConfigIssue("api", "BGPPeer/p1", "spec.holdTime", "must be 0 or at least 3s"),
                              "metallb-system")
    assert e.obj == ev.ObjectRef("BGPPeer", "metallb-system", "p1", "metallb.io/v1beta2")
    assert e.type == "Warning" and e.message == "spec.holdTime: must be 0 or at least 3s"
    s = ev.invalid_from_issue(ConfigIssue("api", "Service/shop/cart", "", "bad IP"), "metallb-system")
    assert (s.obj.kind, s.obj.namespace, s.obj.name, s.obj.api_version) == ("Service", "shop", "cart", "v1")
    assert ev.invalid_from_issue(ConfigIssue("f.yaml", "", "", "YAML syntax error"), "x") is None
    pool = ev.invalid_from_issue(ConfigIssue("api", "IPAddressPool/pool1", "spec.addresses[0]", "bad"), "m")
    assert pool.obj.api_version == "metallb.io/v1beta1" and pool.obj.namespace == "m"


def test_transitions():
    started, stopped = ev.transitions({"a": True, "b": False, "c": True}, {"a": True, "b": True, "d": True})
    assert sorted(started) == ["b", "d"] and stopped == ["c"]


def test_token_bucket():
    now = [0.0]
    b = TokenBucket(qps=2, burst=3, clock=lambda: now[0])
    assert [b.delay() for _ in range(3)] == [0, 0, 0]
    assert b.delay() == pytest.approx(0.5)
    now[0] = 10.0
    assert [b.delay() for _ in range(3)] == [0, 0, 0]  # refilled, capped at burst
    assert b.delay() > 0


# --- the writer ------------------------------------------------------------------------------

async def _run(pub: StatusPublisher):
    task = asyncio.create_task(pub.run())
    return task


async def _stop(task):
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.fixture
async def api():
    return FakeApi()


async def test_publishes_service_status_sessions_and_events(api):
    pub = StatusPublisher(api, NS, NODE, owner=Owner("speakerd-x", "uid-x"), qps=1000, burst=1000)
    task = await _run(pub)
    pub.set_sessions([SessionInfo("p1", "10.0.0.1", "Established"), SessionInfo("p2", "10.0.0.2", "Active")])
    pub.set_service("default/web", ["p1", "p2"], uid="u-web")
    await pub.flushed()
    [status] = api.of("servicebgpstatuses")
    assert status["status"]["peers"] == ["p1", "p2"]  # written through /status after create
    assert status["metadata"]["ownerReferences"][0]["uid"] == "uid-x"
    assert sorted(s["status"]["peer"] for s in api.of("bgpsessionstates")) == ["10.0.0.1", "10.0.0.2"]
    [event] = api.of("events")
    assert event["reason"] == "nodeAssigned" and event["involvedObject"]["name"] == "web"

    # stop announcing: status object deleted, withdrawn Event
    pub.set_service("default/web", [], uid="u-web", why_not="noLocalEndpoints: none here")
    pub.set_sessions([SessionInfo("p1", "10.0.0.1", "Established")])
    await pub.flushed()
    assert api.of("servicebgpstatuses") == []
    assert [s["status"]["peer"] for s in api.of("bgpsessionstates")] == ["10.0.0.1"]
    reasons = sorted(e["reason"] for e in api.of("events"))
    assert reasons == ["nodeAssigned", "serviceWithdrawn"]
    assert any("noLocalEndpoints" in e["message"] for e in api.of("events"))
    await _stop(task)


async def test_coalesces_changes_before_their_turn(api):
    pub = StatusPublisher(api, NS, NODE, qps=1000, burst=1000)
    for i in range(10):  # flaps while nothing runs
        pub.set_service("default/web", ["p1"] if i % 2 else ["p2"])
    pub.set_service("default/web", ["p1"])
    task = await _run(pub)
    await pub.flushed()
    name = service_status_name(NODE, "default/web")
    assert [c for c in api.writes() if c[1] == "servicebgpstatuses"] == [
        ("create", "servicebgpstatuses", name), ("patch", "servicebgpstatuses", name, "status")]
    # an unchanged state costs no write at all
    before = len(api.writes())
    pub.set_service("default/web", ["p1"])
    pub.set_sessions([])
    await pub.flushed()
    assert len(api.writes()) == before
    await _stop(task)


async def test_adopts_and_cleans_what_a_previous_pod_left(api):
    # a previous Pod's objects: one still wanted (stale status), one not wanted, one of another node
    old = StatusPublisher(api, NS, NODE, qps=1000, burst=1000)
    t = await _run(old)
    old.set_service("default/keep", ["p1"])
    old.set_service("default/gone", ["p1"])
    await old.flushed()
    await _stop(t)
    other = StatusPublisher(api, NS, "worker-2", qps=1000, burst=1000)
    t = await _run(other)
    other.set_service("default/gone", ["p1"])
    await other.flushed()
    await _stop(t)
    api.calls.clear()

    new = StatusPublisher(api, NS, NODE, qps=1000, burst=1000)
    new.set_service("default/keep", ["p1", "p2"])
    t = await _run(new)
    await new.flushed()
    assert ("list", "servicebgpstatuses", node_selector(SERVICE_BGP_STATUS, NODE)) in api.calls
    mine = [o for o in api.of("servicebgpstatuses") if o["status"]["node"] == NODE]
    assert [(o["status"]["serviceName"], o["status"]["peers"]) for o in mine] == [("keep", ["p1", "p2"])]
    assert [o["status"]["node"] for o in api.of("servicebgpstatuses") if o["status"]["node"] != NODE] == [
        "worker-2"]  # another node's object is not touched
    svc_writes = [c[0] for c in api.writes() if c[1] == "servicebgpstatuses"]
    assert sorted(svc_writes) == ["delete", "patch"]  # no create: the kept object is found by name
    await _stop(t)


async def test_new_pod_takes_over_ownership(api):
    """Objects owned by the previous Pod are re-owned, or the garbage collector deletes them with it."""
    old = StatusPublisher(api, NS, NODE, owner=Owner("speakerd-old", "uid-old"), qps=1000, burst=1000)
    t = await _run(old)
    old.set_service("default/web", ["p1"])
    old.set_sessions([SessionInfo("p1", "10.0.0.1", "Established")])
    await old.flushed()
    await _stop(t)
    new = StatusPublisher(api, NS, NODE, owner=Owner("speakerd-new", "uid-new"), qps=1000, burst=1000)
    new.set_service("default/web", ["p1"])
    new.set_sessions([SessionInfo("p1", "10.0.0.1", "Established")])
    t = await _run(new)
    await new.flushed()
    for obj in api.of("servicebgpstatuses") + api.of("bgpsessionstates"):
        assert [r["uid"] for r in obj["metadata"]["ownerReferences"]] == ["uid-new"]
    await _stop(t)


async def test_retries_after_failures_and_recovers_from_404_and_409(api):
    pub = StatusPublisher(api, NS, NODE, qps=1000, burst=1000)
    api.fail["list"] = 404  # CRDs not installed yet
    task = await _run(pub)
    pub.set_service("default/web", ["p1"])
    # wait until the writer has tried (and failed) to list
    while not any(c[0] == "list" for c in api.calls):
        api.changed.clear()
        await asyncio.sleep(0)
    assert api.of("servicebgpstatuses") == []
    del api.fail["list"]
    pub.set_service("default/other", ["p1"])  # news wakes the retry early
    await pub.flushed()
    assert len(api.of("servicebgpstatuses")) == 2

    # someone deleted our object behind our back: the next change re-creates it (404 on patch -> create)
    name = service_status_name(NODE, "default/web")
    del api.objects[("servicebgpstatuses", NS, name)]
    pub.set_service("default/web", ["p1", "p2"])
    await pub.flushed()
    assert api.objects[("servicebgpstatuses", NS, name)]["status"]["peers"] == ["p1", "p2"]

    # a create that finds the name taken (409) patches it instead
    pub2 = StatusPublisher(api, NS, NODE, qps=1000, burst=1000)
    pub2._listed.update({SERVICE_BGP_STATUS, BGP_SESSION_STATE})  # as if the list missed it
    t2 = await _run(pub2)
    pub2.set_service("default/web", ["p3"])
    await pub2.flushed()
    assert api.objects[("servicebgpstatuses", NS, name)]["status"]["peers"] == ["p3"]
    await _stop(t2)
    await _stop(task)


async def test_failed_write_stays_pending(api):
    pub = StatusPublisher(api, NS, NODE, qps=1000, burst=1000)
    api.fail["create"] = 500
    task = await _run(pub)
    pub.set_service("default/web", ["p1"])
    while not any(c[0] == "create" and c[1] == "servicebgpstatuses" for c in api.calls):
        await asyncio.sleep(0)
    assert pub.pending() >= 1
    del api.fail["create"]
    pub.set_sessions([SessionInfo("p1", "10.0.0.1", "Idle")])  # wakes it
    await pub.flushed()
    assert len(api.of("servicebgpstatuses")) == 1 and pub.pending() == 0
    await _stop(task)


async def test_event_body_as_kubectl_shows_it(api):
    pub = StatusPublisher(api, NS, NODE, qps=1000, burst=1000)
    task = await _run(pub)
    pub.set_service("default/web", ["p1"], uid="u1")
    await pub.flushed()
    [body] = api.of("events")
    assert body["reason"] == "nodeAssigned" and body["type"] == "Normal"
    assert body["message"] == 'announcing from node "worker-1" with protocol "bgp"'
    assert body["involvedObject"] == {"apiVersion": "v1", "kind": "Service", "name": "web", "namespace": "default",
                                      "uid": "u1"}
    assert body["metadata"]["namespace"] == "default" and body["metadata"]["name"].startswith("web.")
    assert body["firstTimestamp"] == body["lastTimestamp"] and body["count"] == 1
    assert body["source"] == {"component": "speakerd", "host": NODE}
    assert body["reportingComponent"] == "speakerd" and body["reportingInstance"] == NODE
    await _stop(task)


async def test_repeated_events_patch_the_count(api):
    pub = StatusPublisher(api, NS, NODE, qps=1000, burst=1000)
    task = await _run(pub)
    spec = ev.invalid(ev.ObjectRef("Service", "default", "web"), "metadata.annotations: bad IP")
    pub.record(spec)
    await pub.flushed()
    pub.record(spec)
    await pub.flushed()
    [e] = api.of("events")
    assert e["count"] == 2
    api.objects.pop(("events", "default", e["metadata"]["name"]))  # the Event's TTL ran out
    pub.record(spec)
    await pub.flushed()
    [e2] = api.of("events")
    assert e2["count"] == 1 and e2["metadata"]["name"] != e["metadata"]["name"]
    await _stop(task)


async def test_event_queue_is_bounded(api):
    pub = StatusPublisher(api, NS, NODE, qps=1000, burst=1000, event_queue=3)
    for i in range(5):
        pub.record(ev.invalid(ev.ObjectRef("Service", "default", f"s{i}"), "bad"))
    assert pub.events_dropped == 2
    task = await _run(pub)
    await pub.flushed()
    assert sorted(e["involvedObject"]["name"] for e in api.of("events")) == ["s0", "s1", "s2"]
    await _stop(task)


async def test_a_failed_event_write_is_dropped_and_the_rest_goes_on(api):
    pub = StatusPublisher(api, NS, NODE, qps=1000, burst=1000)
    task = await _run(pub)
    api.fail["create"] = 500
    pub.record(ev.invalid(ev.ObjectRef("Service", "default", "a"), "bad"))
    await pub.events.flush()
    assert pub.events_dropped == 1 and api.of("events") == []
    del api.fail["create"]
    pub.set_service("default/web", ["p1"])
    await pub.flushed()
    assert [e["reason"] for e in api.of("events")] == ["nodeAssigned"] and api.of("servicebgpstatuses")
    await _stop(task)


async def test_forget_service_deletes_without_event(api):
    pub = StatusPublisher(api, NS, NODE, qps=1000, burst=1000)
    task = await _run(pub)
    pub.set_service("default/web", ["p1"])
    await pub.flushed()
    pub.forget_service("default/web")
    await pub.flushed()
    assert api.of("servicebgpstatuses") == []
    assert [e["reason"] for e in api.of("events")] == ["nodeAssigned"]
    await _stop(task)


async def test_declared_access_is_exactly_what_the_calls_use(api):
    """Every kind of write the publisher makes, recorded at the client, equals its ACCESS declaration
    (from which deploy/rbac.yaml is checked)."""
    pub = StatusPublisher(api, NS, NODE, qps=1000, burst=1000)
    task = await _run(pub)
    pub.set_sessions([SessionInfo("p1", "10.0.0.1", "Idle")])
    pub.set_service("other-ns/web", ["p1"])  # create, status, an Event in the Service's namespace
    await pub.flushed()
    pub.set_sessions([SessionInfo("p1", "10.0.0.1", "Established")])  # status patch
    name = service_status_name(NODE, "other-ns/web")
    api.objects[("servicebgpstatuses", NS, name)]["metadata"]["labels"].pop("metallb.io/node")
    pub._seen[SERVICE_BGP_STATUS][name] = Observed.of(api.objects[("servicebgpstatuses", NS, name)])
    pub.set_service("other-ns/web", ["p1", "p2"])  # labels patch + status patch
    await pub.flushed()
    [sname] = [k[2] for k in api.objects if k[0] == "bgpsessionstates"]
    api.objects[("bgpsessionstates", NS, sname)]["metadata"]["labels"].clear()
    pub._seen[BGP_SESSION_STATE][sname] = Observed.of(api.objects[("bgpsessionstates", NS, sname)])
    pub.set_sessions([SessionInfo("p1", "10.0.0.1", "Active")])  # labels patch on a session state
    spec = ev.invalid(ev.ObjectRef("Service", "other-ns", "web"), "bad")
    pub.record(spec)
    pub.record(spec)  # Event count patch
    await pub.flushed()
    pub.set_sessions([])
    pub.set_service("other-ns/web", [])  # deletes
    await pub.flushed()
    await _stop(task)
    used = {(g, r, v, "namespace" if ours else "cluster") for g, r, v, ours in api.access}
    # Events in our own namespace are covered by the cluster-wide grant; fold them in
    used = {(g, r, v, "cluster") if r == "events" else (g, r, v, sc) for g, r, v, sc in used}
    declared = {(a.group, a.resource, v, a.scope) for a in ACCESS for v in a.verbs}
    assert used == declared


# --- from the running speaker ----------------------------------------------------------------

def test_peers_by_service_from_a_real_plan():
    from speakerd.config import load_config
    from speakerd.policy import plan
    from speakerd.publish.speaker_state import peers_by_service
    p = plan(load_config(["config/examples/pools-per-peer"]), "worker-1")
    assert peers_by_service(p.routes) == {"default/app1": {"peer1"}, "default/app2": {"peer2"}}
    shared = {"a": p.routes["peer1"], "b": p.routes["peer1"]}  # one table for two peers
    assert peers_by_service(shared) == {"default/app1": {"a", "b"}}


def test_sessions_of_a_speaker():
    from types import SimpleNamespace as NS_

    from speakerd.fsm.actions import State
    from speakerd.publish.speaker_state import sessions_of

    class Bfd:
        def state(self, addr):
            return 3 if addr == "10.0.0.1" else None

    def rt(name, addr, state, bfd, vrf=None):
        return NS_(config=NS_(name=name, peer_address=addr, vrf=vrf), peer=NS_(state=state), bfd_active=bfd)

    speaker = NS_(bfd=Bfd(), peers={"a": rt("a", "10.0.0.1", State.ESTABLISHED, True),
                                    "b": rt("b", "10.0.0.2", State.ACTIVE, True, "red"),
                                    "c": rt("c", "10.0.0.3", State.IDLE, False)})
    assert sessions_of(speaker) == [SessionInfo("a", "10.0.0.1", "Established", "", "up"),
                                    SessionInfo("b", "10.0.0.2", "Active", "red", "down"),
                                    SessionInfo("c", "10.0.0.3", "Idle", "", None)]


async def test_follow_keeps_the_publisher_in_step(api):
    from types import SimpleNamespace as NS_

    from speakerd.fsm.actions import State
    from speakerd.policy.types import Plan, PlannedRoute, Reason, RouteAttrs
    from speakerd.publish.speaker_state import follow

    def route(svc):
        return {(1, 1): PlannedRoute(1, 1, "192.0.2.1/32", RouteAttrs(), (Reason(svc, "192.0.2.1", "p", "a"),))}

    peer = NS_(config=NS_(name="p1", peer_address="10.0.0.1", vrf=None), peer=NS_(state=State.ACTIVE),
               bfd_active=False)
    speaker = NS_(bfd=None, peers={"p1": peer}, plan=Plan(routes={"p1": route("default/web")}))
    pub = StatusPublisher(api, NS, NODE, qps=1000, burst=1000)
    changed = asyncio.Event()
    writer, follower = asyncio.create_task(pub.run()), asyncio.create_task(follow(speaker, pub, changed))
    while api.of("servicebgpstatuses") == [] or api.of("bgpsessionstates") == []:
        api.changed.clear()
        await api.changed.wait()
    assert api.of("servicebgpstatuses")[0]["status"]["serviceName"] == "web"
    # the session comes up and the plan moves to another Service
    peer.peer.state = State.ESTABLISHED
    speaker.plan = Plan(routes={"p1": route("default/api")})
    changed.set()
    while [o["status"].get("serviceName") for o in api.of("servicebgpstatuses")] != ["api"] or \
            api.of("bgpsessionstates")[0]["status"].get("bgpStatus") != "Established":
        api.changed.clear()
        await api.changed.wait()
    await pub.flushed()
    assert sorted(e["reason"] for e in api.of("events")) == ["nodeAssigned", "nodeAssigned", "serviceWithdrawn"]
    for t in (writer, follower):
        t.cancel()
    await asyncio.gather(writer, follower, return_exceptions=True)


@pytest.mark.parametrize("example", ["pools-per-peer", "node-selectors", "dual-stack", "single-peer", "bfd", "vrf"])
def test_peers_of_one_service_equal_the_full_scan(example):
    """The per-Service answer (no scan of the tables) equals reading every route's reasons."""
    from speakerd.config import load_config
    from speakerd.policy.planner import Planner
    from speakerd.publish.speaker_state import peers_by_service, peers_of_service
    config = load_config([f"config/examples/{example}"])
    for node in ("worker-1", "worker-2", "node1"):
        planner = Planner(node)
        planner.rebuild(config, {})
        full = peers_by_service(planner.plan().routes)
        one = {k: peers_of_service(planner, s) for k, s in config.services.items()}
        assert {k: v for k, v in one.items() if v} == full, (example, node)


async def test_a_change_during_its_own_write_is_written_after_it(api):
    """A session that moves on while its previous state is being written ends written as it is now."""
    pub = StatusPublisher(api, NS, NODE, qps=1000, burst=1000)
    task = await _run(pub)
    pub.set_sessions([])
    await pub.flushed()  # both kinds listed
    gate, entered = asyncio.Event(), asyncio.Event()
    real_patch = api.patch

    async def slow_patch(kind, namespace, name, patch, subresource=None):
        if subresource == "status" and not gate.is_set():
            entered.set()
            await gate.wait()
        return await real_patch(kind, namespace, name, patch, subresource)

    api.patch = slow_patch
    pub.set_sessions([SessionInfo("p1", "10.0.0.1", "OpenConfirm")])
    await entered.wait()  # the OpenConfirm write is on its way
    pub.set_sessions([SessionInfo("p1", "10.0.0.1", "Established")])
    gate.set()
    await pub.flushed()
    [state] = api.of("bgpsessionstates")
    assert state["status"]["bgpStatus"] == "Established"
    await _stop(task)
