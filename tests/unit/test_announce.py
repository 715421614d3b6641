"""The announce rules, each case with the answer MetalLB v0.16's speaker gives.

The expected reason strings are MetalLB's (ShouldAnnounce / SetBalancer return
values); "" means MetalLB announces.  Cases marked "metallb test" mirror a case
of speaker/bgp_controller_test.go.
"""
from __future__ import annotations

import random

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from speakerd.config.model import Endpoint, EndpointSlice, Node, Service
from speakerd.policy.announce import (
    EXCLUDE_LABEL, AnnounceOptions, EndpointIndex, Verdict, can_serve, decide, decide_from, node_verdict,
    service_verdict,
)

ME = "iris"
OTHER = "pandora"


def svc(policy: str = "Cluster", **kw) -> Service:
    kw.setdefault("ips", ("10.20.30.1",))
    kw.setdefault("ingress_ips", ("10.20.30.1",))
    return Service(namespace="default", name="test1", traffic_policy=policy, **kw)


def ep(node: str | None, ready: bool = True, serving: bool | None = None, terminating: bool = False) -> Endpoint:
    return Endpoint(node=node, ready=ready, serving=ready if serving is None else serving, terminating=terminating)


def slice_(*eps: Endpoint, name: str = "test1-abc", service: str = "test1", namespace: str = "default"):
    return EndpointSlice(namespace=namespace, name=name, service=service, endpoints=tuple(eps))


def reason(service, slices, node=None, options=AnnounceOptions(), node_name=ME, ips=None) -> str:
    return decide_from(service, slices, node, node_name, options, ips).reason


# --- endpoints and traffic policy -------------------------------------------------------------

ENDPOINT_CASES = [
    # (description, policy, slices, MetalLB's answer)
    ("metallb test: Add service, it's an LB (Cluster, ready endpoint elsewhere)", "Cluster",
     [slice_(ep(OTHER))], ""),
    ("metallb test: Local, endpoint isn't on our node", "Local", [slice_(ep(OTHER))], "noLocalEndpoints"),
    ("metallb test: Local, new endpoint on our node", "Local", [slice_(ep(OTHER)), slice_(ep(ME), name="b")], ""),
    ("metallb test: Local, endpoint on our node has some unready ports", "Local",
     [slice_(ep(ME)), slice_(ep(OTHER, ready=False), name="b"), slice_(ep(ME), name="c"),
      slice_(ep(OTHER), name="d")], ""),
    ("metallb test: endpoint list is empty", "Cluster", [], "noEndpoints"),
    ("endpoint list is empty, Local", "Local", [], "noLocalEndpoints"),
    ("metallb test: only unhealthy endpoints", "Cluster", [slice_(ep(ME, ready=False))], "noEndpoints"),
    ("metallb test: some unhealthy endpoints", "Cluster", [slice_(ep(ME), ep(OTHER, ready=False))], ""),
    ("metallb test: serving but not ready", "Cluster", [slice_(ep(ME, ready=False, serving=True))], ""),
    ("metallb test: ready but not serving", "Cluster", [slice_(ep(ME, ready=True, serving=False))], ""),
    ("terminating and still serving counts (EndpointCanServe ignores terminating)", "Local",
     [slice_(ep(ME, ready=False, serving=True, terminating=True))], ""),
    ("terminating and no longer serving does not", "Local",
     [slice_(ep(ME, ready=False, serving=False, terminating=True))], "noLocalEndpoints"),
    ("Local: unready endpoint here, ready elsewhere", "Local",
     [slice_(ep(ME, ready=False), ep(OTHER))], "noLocalEndpoints"),
    ("Local: endpoint without nodeName is not local", "Local", [slice_(ep(None))], "noLocalEndpoints"),
    ("Cluster: endpoint without nodeName still counts", "Cluster", [slice_(ep(None))], ""),
    ("Cluster: a slice with no endpoints", "Cluster", [slice_()], "noEndpoints"),
    ("a slice of another Service does not count", "Cluster", [slice_(ep(ME), service="other")], "noEndpoints"),
    ("a slice of the same name in another namespace does not count", "Cluster",
     [slice_(ep(ME), namespace="prod")], "noEndpoints"),
]


@pytest.mark.parametrize("desc,policy,slices,want", ENDPOINT_CASES, ids=[c[0] for c in ENDPOINT_CASES])
def test_endpoint_rules(desc, policy, slices, want):
    assert reason(svc(policy), slices) == want


def test_can_serve_is_metallb_endpoint_can_serve():
    # EndpointCanServe: Ready nil/true -> true; else Serving true -> true; else false.
    # The model stores unset ready as True and unset serving as the ready value.
    assert can_serve(True, True) and can_serve(True, False) and can_serve(False, True)
    assert not can_serve(False, False)


# --- node availability -----------------------------------------------------------------------

NODE_CASES = [
    ("no Node object seen: no restriction (IsNetworkUnavailable(nil) is false)", None, False, ""),
    ("NetworkUnavailable=True", Node(ME, network_unavailable=True), False, "nodeNetworkUnavailable"),
    ("exclusion label with empty value", Node(ME, labels=((EXCLUDE_LABEL, ""),)), False,
     "nodeLabeledExcludeBalancers"),
    ("exclusion label with value false still excludes (MetalLB checks presence)",
     Node(ME, labels=((EXCLUDE_LABEL, "false"),)), False, "nodeLabeledExcludeBalancers"),
    ("metallb test: ignore excludelb", Node(ME, labels=((EXCLUDE_LABEL, ""),)), True, ""),
    ("network unavailable is checked before the label", Node(ME, labels=((EXCLUDE_LABEL, ""),),
                                                          network_unavailable=True), False, "nodeNetworkUnavailable"),
    ("ignore excludelb does not ignore NetworkUnavailable", Node(ME, network_unavailable=True), True,
     "nodeNetworkUnavailable"),
    ("other labels", Node(ME, labels=(("kubernetes.io/hostname", ME), ("bgp", "true"))), False, ""),
]


@pytest.mark.parametrize("desc,node,ignore,want", NODE_CASES, ids=[c[0] for c in NODE_CASES])
def test_node_rules(desc, node, ignore, want):
    assert reason(svc("Cluster"), [slice_(ep(ME))], node, AnnounceOptions(ignore_exclude_lb=ignore)) == want


def test_node_rules_come_before_endpoints():
    # MetalLB: the node checks return before the endpoint checks are reached.
    assert reason(svc("Local"), [], Node(ME, network_unavailable=True)) == "nodeNetworkUnavailable"


# --- the Service itself ----------------------------------------------------------------------

def test_not_a_load_balancer():
    assert reason(svc(service_type="ClusterIP"), [slice_(ep(ME))]) == "notLoadBalancer"
    assert reason(svc(service_type="NodePort"), [slice_(ep(ME))]) == "notLoadBalancer"


CLASS_CASES = [
    # (Service's spec.loadBalancerClass, --lb-class, handled by this speaker) — filterByLoadBalancerClass
    (None, None, True),
    (None, "speakerd", False),
    ("speakerd", None, False),
    ("speakerd", "speakerd", True),
    ("other", "speakerd", False),
]


@pytest.mark.parametrize("svc_class,option,handled", CLASS_CASES)
def test_load_balancer_class(svc_class, option, handled):
    got = reason(svc(lb_class=svc_class), [slice_(ep(ME))], options=AnnounceOptions(lb_class=option))
    assert got == ("" if handled else "otherLoadBalancerClass")


def test_class_is_checked_before_everything_else():
    opts = AnnounceOptions(lb_class="x")
    assert reason(svc(lb_class="y"), [], Node(ME, network_unavailable=True), opts) == "otherLoadBalancerClass"


def test_no_ip_allocated():
    assert reason(svc(), [slice_(ep(ME))], ips=()) == "noIPAllocated"
    assert reason(svc(), [slice_(ep(ME))], ips=("10.20.30.1",)) == ""
    # before the node rules, as in SetBalancer
    assert reason(svc(), [], Node(ME, network_unavailable=True), ips=()) == "noIPAllocated"


def test_kubernetes_mode_needs_the_ingress_a_controller_wrote():
    opts = AnnounceOptions(require_ingress=True)
    requested_only = svc(ips=("10.20.30.1",), ingress_ips=(), requested_ips=("10.20.30.1",))
    assert reason(requested_only, [slice_(ep(ME))], options=opts) == "noIPAllocated"
    assert reason(requested_only, [slice_(ep(ME))]) == ""  # file mode: the manifest's address is enough
    assert reason(svc(), [slice_(ep(ME))], options=opts) == ""


def test_deleted_service():
    assert decide(None, Verdict.ANNOUNCE, EndpointIndex(), ME) is Verdict.DELETED


def test_endpoints_not_checked_when_disabled():
    # file mode without any EndpointSlice: the endpoint rules cannot apply
    opts = AnnounceOptions(check_endpoints=False)
    assert reason(svc("Local"), [], options=opts) == ""
    assert reason(svc("Local"), [], Node(ME, labels=((EXCLUDE_LABEL, ""),)), opts) == "nodeLabeledExcludeBalancers"


def test_verdict_text_explains():
    v = decide_from(svc("Local"), [slice_(ep(OTHER))], None, ME)
    assert not v.announce
    assert str(v).startswith("noLocalEndpoints: ")
    assert "Local" in v.text
    assert Verdict.ANNOUNCE.announce and Verdict.ANNOUNCE.reason == ""


def test_service_and_node_verdicts_alone():
    assert service_verdict(svc(), AnnounceOptions()) is Verdict.ANNOUNCE
    assert node_verdict(Node(ME, network_unavailable=True)) is Verdict.NODE_NETWORK_UNAVAILABLE


# --- the index, as the incremental planner uses it -------------------------------------------

def test_index_reports_only_changes_the_rules_see():
    idx = EndpointIndex()
    assert idx.apply(slice_(ep(ME))) == ("default/test1",)
    assert idx.apply(slice_(ep(ME))) == ()  # same conditions, same nodes: nothing to re-decide
    assert idx.apply(slice_(ep(ME, ready=False, serving=True))) == ()  # still can serve on ME
    assert idx.apply(slice_(ep(OTHER))) == ("default/test1",)  # moved to another node
    assert not idx.has_local_endpoint("default/test1", ME) and idx.has_local_endpoint("default/test1", OTHER)
    assert idx.remove("default", "test1-abc") == ("default/test1",)
    assert idx.remove("default", "test1-abc") == ()
    assert not idx.has_endpoint("default/test1") and len(idx) == 0 and list(idx.services()) == []


def test_index_slice_relabelled_to_another_service():
    idx = EndpointIndex()
    idx.apply(slice_(ep(ME), service="a"))
    assert idx.apply(slice_(ep(ME), service="b")) == ("default/a", "default/b")
    assert not idx.has_endpoint("default/a") and idx.has_endpoint("default/b")
    # losing the label: the slice belongs to no Service any more
    assert idx.apply(slice_(ep(ME), service="")) == ("default/b",)
    assert not idx.has_endpoint("default/b")


def test_index_many_slices_of_one_service():
    idx = EndpointIndex()
    idx.apply(slice_(ep(OTHER), name="s1"))
    idx.apply(slice_(ep(ME), name="s2"))
    idx.remove("default", "s1")
    assert idx.has_local_endpoint("default/test1", ME) and idx.has_endpoint("default/test1")
    idx.remove("default", "s2")
    assert not idx.has_endpoint("default/test1")


NODES = [ME, OTHER, None]
endpoint_st = st.builds(ep, st.sampled_from(NODES), st.booleans(), st.booleans(), st.booleans())
slice_st = st.builds(lambda name, svcname, eps: slice_(*eps, name=name, service=svcname),
                     st.sampled_from(["s1", "s2", "s3"]), st.sampled_from(["a", "b", ""]),
                     st.lists(endpoint_st, max_size=4))
event_st = st.one_of(st.tuples(st.just("apply"), slice_st),
                     st.tuples(st.just("remove"), st.sampled_from(["s1", "s2", "s3"])))


def _from_scratch(slices: dict[str, EndpointSlice], service: str, policy: str) -> str:
    """The rule written directly over the current slices, as MetalLB's hasHealthyEndpoint loops them."""
    mine = [s for s in slices.values() if s.service and f"{s.namespace}/{s.service}" == service]
    def healthy(only_me: bool) -> bool:
        return any((ready or serving) for s in mine for (node, ready, serving) in
                   ((e.node, e.ready, e.serving) for e in s.endpoints) if not only_me or node == ME)
    if policy == "Local" and not healthy(True):
        return "noLocalEndpoints"
    if not healthy(False):
        return "noEndpoints"
    return ""


@settings(max_examples=200, deadline=None)
@given(st.lists(event_st, max_size=25), st.sampled_from(["Cluster", "Local"]))
def test_index_after_any_events_equals_from_scratch(events, policy):
    idx = EndpointIndex()
    current: dict[str, EndpointSlice] = {}
    answers: dict[str, str] = {}
    for kind, arg in events:
        changed = idx.apply(arg) if kind == "apply" else idx.remove("default", arg)
        if kind == "apply":
            current[arg.name] = arg
        else:
            current.pop(arg, None)
        for name in ("a", "b"):
            key = f"default/{name}"
            s = Service(namespace="default", name=name, ips=("10.0.0.1",), traffic_policy=policy)
            now = decide(s, Verdict.ANNOUNCE, idx, ME).reason
            assert now == _from_scratch(current, key, policy)
            if key in answers and answers[key] != now:
                assert key in changed  # an answer never changes without the index naming the Service
            answers[key] = now


def test_index_cost_is_per_slice_not_per_endpoint():
    # 1,000 endpoints on 3 nodes reduce to a 3-node set
    rnd = random.Random(7)
    eps = [ep(rnd.choice([ME, OTHER, "n3"])) for _ in range(1000)]
    idx = EndpointIndex()
    idx.apply(slice_(*eps))
    summary = next(iter(idx._by_service["default/test1"].values()))
    assert summary.nodes == frozenset({ME, OTHER, "n3"})


# --- the Announcer: store changes in, what the planner should see out ------------------------

from speakerd.policy.announce import Announcer  # noqa: E402

SVC_KEYS = ["default/a", "default/b", "default/c"]


class World:
    """A store stand-in: current objects, and the (old, new) changes of one update."""

    def __init__(self) -> None:
        self.services: dict[str, Service] = {}
        self.slices: dict[str, EndpointSlice] = {}
        self.node: Node | None = None


def _service(key: str, policy: str) -> Service:
    ns, name = key.split("/")
    return Service(namespace=ns, name=name, ips=("10.0.0.1",), traffic_policy=policy)


op_st = st.one_of(
    st.tuples(st.just("svc"), st.sampled_from(SVC_KEYS), st.sampled_from(["Cluster", "Local", None])),
    st.tuples(st.just("eps"), st.sampled_from(["s1", "s2", "s3"]),
              st.one_of(st.none(), st.tuples(st.sampled_from(["a", "b", "c"]), st.lists(endpoint_st, max_size=3)))),
    st.tuples(st.just("node"), st.sampled_from([None, "unavailable", "excluded", "plain"]), st.just(None)),
)


def _announcer_from_scratch(w: World, options: AnnounceOptions) -> dict[str, str]:
    return {k: decide_from(s, list(w.slices.values()), w.node, ME, options).reason for k, s in w.services.items()}


@settings(max_examples=400, deadline=None)
@given(st.lists(st.lists(op_st, min_size=1, max_size=4), max_size=12), st.sampled_from([True, None, False]))
@example([[("svc", "default/a", "Cluster")], [("eps", "s1", ("b", []))]], None)  # the first slice of any Service
@example([[("svc", "default/a", "Local"), ("eps", "s1", ("a", [ep(ME)]))], [("eps", "s1", None)]], None)
def test_announcer_after_any_changes_equals_from_scratch(batches, check):
    options = AnnounceOptions(check_endpoints=check)
    w = World()
    ann = Announcer(ME, w.services, options)
    seen: dict[str, Service] = {}  # what the planner has, built only from the returned deltas
    for batch in batches:
        svc_ch, eps_ch, node_ch = {}, {}, {}
        for kind, a, b in batch:
            if kind == "svc":
                old = w.services.get(a)
                new = _service(a, b) if b else None
                if new is None:
                    w.services.pop(a, None)
                else:
                    w.services[a] = new
                svc_ch[a] = (svc_ch[a][0] if a in svc_ch else old, new)
            elif kind == "eps":
                old = w.slices.get(a)
                new = slice_(*b[1], name=a, service=b[0]) if b else None
                if new is None:
                    w.slices.pop(a, None)
                else:
                    w.slices[a] = new
                if old is not None or new is not None:
                    eps_ch[a] = (eps_ch[a][0] if a in eps_ch else old, new)
            else:
                old = w.node
                w.node = None if a is None else Node(ME, labels=((EXCLUDE_LABEL, ""),) if a == "excluded" else (),
                                                     network_unavailable=a == "unavailable")
                node_ch[ME] = (node_ch[ME][0] if ME in node_ch else old, w.node)
        # the store reports a slice's net change of one update; intermediate states are gone
        eps_ch = {k: v for k, v in eps_ch.items() if not (v[0] is None and v[1] is None)}
        delta = ann.apply(svc_ch, eps_ch, node_ch)
        for key, (old, new) in delta.items():
            assert seen.get(key) == old, key  # the old value is what the planner had
            if new is None:
                seen.pop(key, None)
            else:
                seen[key] = new
        want = _announcer_from_scratch(w, options)
        assert {k: ann.verdict(k).reason for k in w.services} == want
        assert seen == {k: w.services[k] for k, r in want.items() if r == ""}
        assert set(s.key for s in ann.announced()) == set(seen)


def test_announcer_node_flip_redecides_every_service():
    services = {k: _service(k, "Cluster") for k in SVC_KEYS}
    ann = Announcer(ME, services)
    first = ann.apply({k: (None, s) for k, s in services.items()},
                      {"s": (None, slice_(ep(OTHER), name="s", service="a"))})
    assert set(first) == {"default/a"}  # b and c have no endpoints
    off = ann.apply(nodes={ME: (None, Node(ME, network_unavailable=True))})
    assert off == {"default/a": (services["default/a"], None)}
    assert ann.verdict("default/b") is Verdict.NODE_NETWORK_UNAVAILABLE
    assert ann.apply(nodes={OTHER: (None, Node(OTHER, network_unavailable=True))}) == {}  # another node: nothing
    on = ann.apply(nodes={ME: (None, Node(ME))})
    assert on == {"default/a": (None, services["default/a"])}
    assert ann.verdict("default/b") is Verdict.NO_ENDPOINTS and ann.verdict("default/x") is Verdict.DELETED
