"""The object store: events in, validated objects and their changes out; the file source's diffs."""
from __future__ import annotations

import copy

from speakerd.sources.files import FileSource
from speakerd.store import Event, Store

PEER = {"apiVersion": "metallb.io/v1beta2", "kind": "BGPPeer", "metadata": {"name": "p", "namespace": "m"},
        "spec": {"myASN": 64512, "peerASN": 64513, "peerAddress": "127.0.0.2"}}
POOL = {"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool", "metadata": {"name": "a", "namespace": "m"},
        "spec": {"addresses": ["10.0.0.0/24"]}}


def svc(name, ip="10.0.0.1", pool=None, **meta):
    ann = {"metallb.io/address-pool": pool} if pool else {}
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "d", "annotations": ann, "uid": "u-" + name,
                         "resourceVersion": "1", "managedFields": [{"manager": "kubectl"}], **meta},
            "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "protocol": "TCP", "nodePort": 31000}],
                     "selector": {"app": name}, "externalTrafficPolicy": "Local", "clusterIP": "10.96.0.1"},
            "status": {"loadBalancer": {"ingress": [{"ip": ip}]}}}


def test_service_fields_and_changes():
    st = Store()
    st.apply([Event("ADDED", PEER, "m.yaml"), Event("ADDED", POOL, "m.yaml")])
    ch = st.apply([Event("ADDED", svc("s"), "api")])
    (old, new), = ch.services.values()
    assert old is None and new.key == "d/s" and new.ips == ("10.0.0.1",) and new.uid == "u-s"
    assert new.traffic_policy == "Local" and new.ports == (("TCP", 80),) and new.selector == (("app", "s"),)
    assert new.ingress_ips == ("10.0.0.1",) and new.origin == "api"
    # a MODIFIED that validates to the same Service changes nothing (resourceVersion, managedFields...)
    o = svc("s")
    o["metadata"]["resourceVersion"] = "2"
    assert not st.apply([Event("MODIFIED", o, "api")])
    ch = st.apply([Event("MODIFIED", svc("s", ip="10.0.0.2"), "api")])
    assert ch.services["d/s"][1].ips == ("10.0.0.2",)
    ch = st.apply([Event("DELETED", svc("s"), "api")])
    assert ch.services["d/s"][1] is None and "d/s" not in st.services


def test_one_bad_service_does_not_stop_the_others():
    st = Store()
    st.apply([Event("ADDED", PEER, "m.yaml"), Event("ADDED", POOL, "m.yaml")])
    ch = st.apply([Event("ADDED", svc("good"), "f.yaml"), Event("ADDED", svc("bad", ip="10.0.0.300"), "f.yaml"),
                   Event("ADDED", svc("nopool", pool="zz"), "f.yaml")])
    assert set(ch.services) == {"d/good"}
    errs = sorted(str(i) for i in st.errors())
    assert errs == ["f.yaml: Service/d/bad: status.loadBalancer.ingress[0].ip: invalid IP address '10.0.0.300'",
                    "f.yaml: Service/d/nopool: metadata.annotations[metallb.io/address-pool]: IPAddressPool 'zz' not found"]
    # the pool appears: the held Service is planned, its issue goes
    pool = copy.deepcopy(POOL)
    pool["metadata"]["name"] = "zz"
    pool["spec"]["addresses"] = ["10.9.0.0/24"]
    ch = st.apply([Event("ADDED", pool, "m.yaml")])
    assert ch.metallb and set(ch.services) == {"d/nopool"}
    assert len(st.errors()) == 1
    # fixed: the error goes
    st.apply([Event("MODIFIED", svc("bad", ip="10.0.0.3"), "f.yaml")])
    assert st.errors() == [] and len(st.services) == 3


def test_invalid_metallb_object_refuses_the_new_config_and_keeps_the_running_one():
    st = Store()
    st.apply([Event("ADDED", PEER, "m.yaml"), Event("ADDED", POOL, "m.yaml")])
    running = st.metallb
    bad = copy.deepcopy(PEER)
    bad["spec"]["holdTime"] = "1s"
    ch = st.apply([Event("MODIFIED", bad, "m.yaml")])
    assert ch.metallb_rejected and not ch.metallb and st.metallb is running
    assert [i.field for i in st.metallb_errors] == ["spec.holdTime"]
    ch = st.apply([Event("MODIFIED", PEER, "m.yaml")])
    assert not st.metallb_errors


def test_kubectl_defaults_status_and_unknown_kinds():
    st = Store()
    peer = copy.deepcopy(PEER)
    peer["metadata"].update(uid="x", generation=3, resourceVersion="9", managedFields=[{"manager": "kubectl"}])
    peer["status"] = {}
    st.apply([Event("ADDED", peer, "api"), Event("ADDED", {"apiVersion": "apps/v1", "kind": "Deployment",
                                                             "metadata": {"name": "d"}}, "api")])
    assert list(st.metallb.peers) == ["p"] and not st.metallb_errors
    ch = st.apply([Event("ADDED", {"apiVersion": "metallb.io/v1beta1", "kind": "IPAddresPool",
                                   "metadata": {"name": "x"}}, "api")])
    assert "did you mean IPAddressPool?" in ch.unidentified[0].message


def test_endpoint_slices_and_nodes():
    st = Store()
    es = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
          "metadata": {"name": "s-1", "namespace": "d", "labels": {"kubernetes.io/service-name": "s"}},
          "endpoints": [{"nodeName": "n1", "conditions": {"ready": False, "serving": True, "terminating": True}},
                        {"nodeName": "n2"}]}
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "labels": {"a": "b"}},
            "status": {"conditions": [{"type": "NetworkUnavailable", "status": "True"}, {"type": "Ready", "status": "True"}]}}
    ch = st.apply([Event("ADDED", es, "api"), Event("ADDED", node, "api")])
    sl = ch.endpoint_slices["d/s-1"][1]
    assert sl.service == "s" and [(e.node, e.ready, e.serving, e.terminating) for e in sl.endpoints] == \
        [("n1", False, True, True), ("n2", True, True, False)]
    n = ch.nodes["n1"][1]
    assert n.network_unavailable and n.labels == (("a", "b"),)


def test_file_source_sends_only_the_diff(tmp_path):
    f = tmp_path / "s.yaml"

    def write(ips):
        f.write_text("".join(f"---\napiVersion: v1\nkind: Service\nmetadata: {{name: s{i}, namespace: d}}\n"
                             f"spec: {{type: LoadBalancer}}\nstatus: {{loadBalancer: {{ingress: [{{ip: {ip}}}]}}}}\n"
                             for i, ip in enumerate(ips)))
    write(["10.0.0.1", "10.0.0.2", "10.0.0.3"])
    src = FileSource([str(f)])
    st = Store()
    assert len(st.apply(src.read()).services) == 3 and src.units_parsed == 3
    write(["10.0.0.1", "10.0.0.9", "10.0.0.3"])
    events = src.read()
    assert src.units_parsed == 1 and [(e.type, e.obj["metadata"]["name"]) for e in events] == [("ADDED", "s1")]
    ch = st.apply(events)
    assert {k: v[1].ips for k, v in ch.services.items()} == {"d/s1": ("10.0.0.9",)}
    write(["10.0.0.1", "10.0.0.9"])
    events = src.read()
    assert src.units_parsed == 0 and [(e.type, e.obj["metadata"]["name"]) for e in events] == [("DELETED", "s2")]
    assert st.apply(events).services["d/s2"][1] is None
    f.unlink()
    assert {e.type for e in src.read()} == {"DELETED"}


def test_file_source_list_items_and_duplicates(tmp_path):
    f = tmp_path / "l.yaml"
    item = "- apiVersion: v1\n  kind: Service\n  metadata: {{name: {n}, namespace: d}}\n  spec: {{type: LoadBalancer}}\n"
    f.write_text("apiVersion: v1\nkind: List\nitems:\n" + item.format(n="a") + item.format(n="b") + item.format(n="a"))
    src = FileSource([str(f)])
    st = Store()
    st.apply(src.read())
    assert sorted(st.services) == ["d/a", "d/b"]
    (dup,) = [i for i in src.issues() if i.severity == "error"]
    assert dup.obj == "Service/d/a" and "duplicate Service d/a" in dup.message


def test_an_object_moved_to_another_file_stays(tmp_path):
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    doc = "apiVersion: v1\nkind: Service\nmetadata: {name: m, namespace: d}\nspec: {type: LoadBalancer, loadBalancerIP: 10.0.0.7}\n"
    a.write_text(doc)
    b.write_text("")
    src = FileSource([str(tmp_path)])
    st = Store()
    st.apply(src.read())
    assert st.services["d/m"].origin == str(a)
    a.write_text("")
    b.write_text(doc)  # b is read after a: its ADDED may come before or after a's DELETED
    st.apply(src.read())
    assert st.services["d/m"].origin == str(b) and st.errors() == []
    a.write_text(doc)  # now in both: the second is a duplicate, reported
    st.apply(src.read())
    assert st.services["d/m"].origin == str(b)
    b.write_text("")
    ch = st.apply(src.read())
    assert st.services["d/m"].origin == str(a) and st.errors() == []
    assert ch.services == {} or ch.services["d/m"][1].ips == ("10.0.0.7",)


def test_untouched_files_are_not_read_again(tmp_path):
    doc = "apiVersion: v1\nkind: Service\nmetadata: {{name: {n}, namespace: d}}\nspec: {{type: LoadBalancer, loadBalancerIP: 10.0.0.{i}}}\n"
    for i in range(3):
        (tmp_path / f"s{i}.yaml").write_text(doc.format(n=f"s{i}", i=i + 1))
    src = FileSource([str(tmp_path)])
    st = Store()
    st.apply(src.read())
    assert src.units_parsed == 3
    (tmp_path / "s1.yaml").write_text(doc.format(n="s1", i=9))
    events = src.read()
    assert src.units_parsed == 1 and [e.obj["metadata"]["name"] for e in events] == ["s1"]
    assert st.apply(events).services["d/s1"][1].ips == ("10.0.0.9",)


def test_a_read_in_batches_is_taken_or_refused_as_one_metallb_configuration():
    ad = {"apiVersion": "metallb.io/v1beta1", "kind": "BGPAdvertisement", "metadata": {"name": "adv", "namespace": "m"},
          "spec": {"ipAddressPools": ["a"]}}
    overlapping = copy.deepcopy(POOL)
    overlapping["metadata"]["name"] = "dup"
    overlapping["spec"]["addresses"] = ["10.0.0.64/26"]
    st = Store()
    st.apply([Event("ADDED", PEER, "1.yaml"), Event("ADDED", POOL, "2.yaml"), Event("ADDED", ad, "3.yaml")])
    # The next read renames files: the advertisement moves from 3.yaml to 4.yaml and 3.yaml now holds
    # a pool that overlaps 'a' (invalid). The reader delivers 3.yaml's change before 4.yaml's: on
    # their own, the first batch is a valid config without the advertisement.
    first = st.apply([Event("DELETED", ad, "3.yaml")], settle=False)
    second = st.apply([Event("ADDED", overlapping, "3.yaml"), Event("ADDED", ad, "4.yaml")], settle=False)
    assert not first.metallb_rejected and not second.metallb_rejected  # nothing decided yet
    assert "adv" in st.config().advertisements
    done = st.settle()
    assert done.metallb_rejected and "dup" in str(st.metallb_errors[0])
    assert set(st.config().advertisements) == {"adv"} and set(st.config().pools) == {"a"}
    # the same two batches settled one by one take the half-read config: the advertisement is gone
    st2 = Store()
    st2.apply([Event("ADDED", PEER, "1.yaml"), Event("ADDED", POOL, "2.yaml"), Event("ADDED", ad, "3.yaml")])
    st2.apply([Event("DELETED", ad, "3.yaml")])
    assert st2.config().advertisements == {}


def test_an_unreadable_directory_is_an_error_not_a_traceback(tmp_path, monkeypatch):
    import os

    from speakerd.sources.files import expand_paths
    d = tmp_path / "cfg"
    d.mkdir()
    real = os.listdir

    def listdir(path):
        if os.fspath(path) == str(d):
            raise PermissionError(13, "Permission denied")
        return real(path)
    monkeypatch.setattr(os, "listdir", listdir)  # root reads any mode: refuse as the kernel would
    files, issues = expand_paths([str(d)])
    assert files == [] and [(i.file, i.message, i.severity) for i in issues] == [
        (str(d), "cannot read the directory: Permission denied", "error")]


def test_the_selector_is_kept_only_where_it_decides_sharing():
    st = Store()
    cluster = svc("c")
    cluster["spec"]["externalTrafficPolicy"] = "Cluster"
    ch = st.apply([Event("ADDED", svc("l"), "api"), Event("ADDED", cluster, "api")])
    assert ch.services["d/l"][1].selector == (("app", "l"),)  # Local: the allocator's backend key
    assert ch.services["d/c"][1].selector == ()  # Cluster: nothing reads it


def test_file_source_drops_what_no_consumer_reads(tmp_path):
    f = tmp_path / "s.yaml"
    ann = "kubectl.kubernetes.io/last-applied-configuration"
    f.write_text("apiVersion: v1\nkind: Service\nmetadata:\n  name: s\n  namespace: d\n"
                 f"  annotations:\n    {ann}: '{{}}'\n    metallb.io/address-pool: a\n"
                 "  managedFields:\n  - manager: kubectl\nspec: {type: LoadBalancer}\n")
    (ev,) = FileSource([str(f)]).read()
    md = ev.obj["metadata"]
    assert "managedFields" not in md and md["annotations"] == {"metallb.io/address-pool": "a"}


def test_label_strings_are_shared_between_services():
    st = Store()
    a, b = svc("a"), svc("b")
    for o in (a, b):
        # fresh strings for each Service, as a parser makes them
        o["metadata"]["labels"] = {"".join(["ti", "er"]): "".join(["w", "eb"]),
                                   "app.kubernetes.io/instance": o["metadata"]["name"]}
    ch = st.apply([Event("ADDED", a, "api"), Event("ADDED", b, "api")])
    sa, sb = ch.services["d/a"][1], ch.services["d/b"][1]
    assert sa.labels == (("app.kubernetes.io/instance", "a"), ("tier", "web"))
    assert sa.label_items == ("app.kubernetes.io/instance", "a", "tier", "web")
    assert sa.label_items[3] is sb.label_items[3]  # one string for the value both carry
    assert sa.label_items[0] is sb.label_items[0]  # and for the key


def test_a_store_without_uids_keeps_services_equal_but_uid_less():
    obj = svc("a")
    obj["metadata"]["uid"] = "3f1c6a62-5b0e-4c1a-9d7e-0c8f1f2d9a11"
    with_uid = Store().apply([Event("ADDED", obj, "api")]).services["d/a"][1]
    without = Store(uids=False).apply([Event("ADDED", obj, "api")]).services["d/a"][1]
    assert with_uid.uid == "3f1c6a62-5b0e-4c1a-9d7e-0c8f1f2d9a11"
    assert without.uid == ""
    assert (without.ips, without.labels, without.ports) == (with_uid.ips, with_uid.labels, with_uid.ports)
