"""Kubernetes mode between store and planner: the planner sees only what this node announces."""
from __future__ import annotations

from speakerd.policy.announce import AnnouncingStore
from speakerd.policy.announce import AnnounceOptions, Verdict
from speakerd.policy.planner import plan
from speakerd.store import ADDED, MODIFIED, Event, Store

NS = "metallb-system"
ME = "n1"


def metallb() -> list[Event]:
    return [Event(ADDED, o) for o in (
        {"apiVersion": "metallb.io/v1beta2", "kind": "BGPPeer", "metadata": {"name": "tor", "namespace": NS},
         "spec": {"myASN": 64500, "peerASN": 64501, "peerAddress": "10.0.0.1"}},
        {"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool", "metadata": {"name": "pool", "namespace": NS},
         "spec": {"addresses": ["203.0.113.0/24"]}},
        {"apiVersion": "metallb.io/v1beta1", "kind": "BGPAdvertisement", "metadata": {"name": "adv", "namespace": NS},
         "spec": {"ipAddressPools": ["pool"]}})]


def service(name: str, ingress: str | None, requested: str | None = None) -> dict:
    meta = {"name": name, "namespace": "default"}
    if requested:
        meta["annotations"] = {"metallb.io/loadBalancerIPs": requested}
    obj = {"apiVersion": "v1", "kind": "Service", "metadata": meta,
           "spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local", "ports": [{"port": 80}]}}
    if ingress:
        obj["status"] = {"loadBalancer": {"ingress": [{"ip": ingress}]}}
    return obj


def eps(svc: str, node: str) -> dict:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": f"{svc}-ep", "namespace": "default", "labels": {"kubernetes.io/service-name": svc}},
            "addressType": "IPv4", "endpoints": [{"addresses": ["10.1.0.1"], "nodeName": node}]}


def node(name: str, **labels) -> dict:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels}}


def kube_store() -> AnnouncingStore:
    return AnnouncingStore(Store(), ME, AnnounceOptions(require_ingress=True))


def prefixes(st: AnnouncingStore) -> set[str]:
    p = plan(st.config(), ME)
    return {r.prefix for table in p.routes.values() for r in table.values()}


def test_only_announced_services_reach_the_planner():
    st = kube_store()
    ch = st.apply(metallb() + [Event(ADDED, node(ME)), Event(ADDED, service("web", "203.0.113.10")),
                               Event(ADDED, eps("web", "n2"))])
    assert ch.services == {} and prefixes(st) == set()  # Local, the endpoint is elsewhere
    assert st.announcer.verdict("default/web") is Verdict.NO_LOCAL_ENDPOINTS
    assert "default/web" in st.store.services and len(st.config().services) == 0

    ch = st.apply([Event(MODIFIED, eps("web", ME))])
    assert list(ch.services) == ["default/web"] and ch.services["default/web"][0] is None
    assert prefixes(st) == {"203.0.113.10/32"}

    ch = st.apply([Event(MODIFIED, node(ME, **{"node.kubernetes.io/exclude-from-external-load-balancers": ""}))])
    assert ch.services["default/web"][1] is None and prefixes(st) == set()
    assert ch.metallb  # this node's labels changed: peers and advertisements are selected again


def test_kubernetes_mode_announces_only_the_ingress_a_controller_wrote():
    st = kube_store()
    st.apply(metallb() + [Event(ADDED, service("web", None, requested="203.0.113.20")),
                          Event(ADDED, eps("web", ME))])
    assert prefixes(st) == set()  # requested, not yet assigned: MetalLB's noIPAllocated
    assert st.announcer.verdict("default/web") is Verdict.NO_IP
    st.apply([Event(MODIFIED, service("web", "203.0.113.20", requested="203.0.113.20"))])
    assert prefixes(st) == {"203.0.113.20/32"}


def test_node_change_without_label_change_does_not_replan_peers():
    st = kube_store()
    st.apply(metallb() + [Event(ADDED, node(ME, a="1"))])
    n = node(ME, a="1")
    n["status"] = {"conditions": [{"type": "Ready", "status": "True"}]}
    assert not st.apply([Event(MODIFIED, n)]).metallb


async def test_invalid_objects_become_warning_events_once():
    from speakerd.kubespeaker import KubeSpeaker

    class Recorder:
        def __init__(self):
            self.specs = []

        def record(self, spec):
            self.specs.append(spec)

    sp = KubeSpeaker(ME, namespace=NS)
    sp.publisher = Recorder()
    bad_peer = {"apiVersion": "metallb.io/v1beta2", "kind": "BGPPeer", "metadata": {"name": "p", "namespace": NS},
                "spec": {"myASN": 64500, "peerASN": 64501, "peerAddress": "10.0.0.1", "holdTime": "2s"}}
    bad_svc = service("web", "not-an-ip")
    sp.feed([Event(ADDED, bad_peer), Event(ADDED, bad_svc)])
    await sp.start()  # an invalid MetalLB configuration at start: waited out, no exception
    got = {(s.obj.kind, s.obj.namespace, s.obj.name, s.type, s.reason) for s in sp.publisher.specs}
    assert ("BGPPeer", NS, "p", "Warning", "invalidObject") in got
    assert ("Service", "default", "web", "Warning", "invalidObject") in got
    assert any("holdTime" in s.message for s in sp.publisher.specs if s.obj.kind == "BGPPeer")
    n = len(sp.publisher.specs)
    await sp.apply_batch([Event(MODIFIED, {**bad_svc, "metadata": {**bad_svc["metadata"], "labels": {"x": "1"}}})])
    assert len(sp.publisher.specs) == n  # the same problems are not recorded again
    assert sp.peers == {}
    await sp.stop()


# --- the event loop is handed back between batches --------------------------------------------

def cluster_service(i: int) -> dict:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": f"s{i}", "namespace": "default", "uid": f"u{i}", "resourceVersion": str(i)},
            "spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Cluster", "ports": [{"port": 80}]},
            "status": {"loadBalancer": {"ingress": [{"ip": f"198.18.{i >> 8}.{i & 255}"}]}}}


def pool_only() -> list[Event]:  # no BGPPeer: no session, no listener
    return [Event(ADDED, o) for o in (
        {"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool", "metadata": {"name": "pool", "namespace": NS},
         "spec": {"addresses": ["198.18.0.0/16"]}},
        {"apiVersion": "metallb.io/v1beta1", "kind": "BGPAdvertisement", "metadata": {"name": "adv", "namespace": NS},
         "spec": {"ipAddressPools": ["pool"]}})]


class Ticker:
    """Counts event-loop iterations: one tick each time the loop runs other tasks."""

    def __init__(self) -> None:
        import asyncio
        self.ticks = 0
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        import asyncio
        while True:
            self.ticks += 1
            await asyncio.sleep(0)

    async def close(self) -> None:
        import asyncio
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def test_a_large_batch_of_events_is_applied_one_store_batch_per_loop_iteration():
    from speakerd.kubespeaker import KubeSpeaker
    sp = KubeSpeaker(ME, namespace=NS)
    sp.feed(pool_only() + [Event(ADDED, node(ME))])
    await sp.start()
    ticker = Ticker()
    seen: list[tuple[int, int]] = []  # (tick, events) per store batch
    inner = sp.store.apply

    def apply(events, settle=True):
        events = list(events)
        seen.append((ticker.ticks, len(events)))
        return inner(events, settle)

    sp.store.apply = apply
    n = 1200
    events = [Event(ADDED, cluster_service(i)) for i in range(n)] + [Event(ADDED, eps(f"s{i}", ME)) for i in range(n)]
    await sp.apply_batch(events)
    await ticker.close()
    assert sum(k for _, k in seen) == 2 * n and len(sp.store.config().services) == n
    assert max(k for _, k in seen) <= sp.INGEST_BATCH
    assert len(seen) >= 2 * n // sp.INGEST_BATCH
    ticks = [t for t, _ in seen]
    assert all(b > a for a, b in zip(ticks, ticks[1:]))  # other tasks ran between any two batches
    await sp.stop()


async def test_publishing_every_service_hands_the_loop_back_between_batches(monkeypatch):
    import asyncio

    import speakerd.kubespeaker as ks
    sp = ks.KubeSpeaker(ME, namespace=NS)
    n = 1300
    sp.feed(pool_only() + [Event(ADDED, node(ME))] + [Event(ADDED, cluster_service(i)) for i in range(n)]
            + [Event(ADDED, eps(f"s{i}", ME)) for i in range(n)])
    await sp.start()
    assert len(sp.config.services) == n
    monkeypatch.setattr(ks, "peers_of_service", lambda planner, svc: {"tor"})  # no session needed
    monkeypatch.setattr(ks, "sessions_of", lambda speaker: [])
    ticker = Ticker()
    done = asyncio.Event()

    class Recorder:
        def __init__(self):
            self.ticks: list[int] = []

        def set_sessions(self, sessions):
            pass

        def set_service(self, key, peers, uid="", why=""):
            self.ticks.append(ticker.ticks)
            if len(self.ticks) == n:
                done.set()

        def forget_service(self, key):
            pass

    rec = Recorder()
    sp.all_dirty = True
    sp.status_changed.set()
    task = asyncio.get_running_loop().create_task(ks.publish_loop(sp, rec))
    await done.wait()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await ticker.close()
    import collections
    per_tick = collections.Counter(rec.ticks)
    assert max(per_tick.values()) <= sp.INGEST_BATCH  # never more than one batch without a yield
    assert len(per_tick) >= n // sp.INGEST_BATCH
    await sp.stop()
