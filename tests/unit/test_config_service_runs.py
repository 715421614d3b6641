"""Runs of same-shape Service documents (fastyaml.Run -> service_runs) give exactly what
reading the documents one by one gives: the same rows, the same issues, the same errors."""
import pytest
import yaml
from hypothesis import given, settings, strategies as st

from speakerd.config import ConfigError, fastyaml, load, load_config
from speakerd.config.fastyaml import Run, fast_load_all, load_items
from speakerd.config.load import KubeLoader

HEAD = """apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata:
  name: r1
  namespace: metallb-system
spec:
  myASN: 64512
  peerASN: 64513
  peerAddress: 127.0.0.2
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata:
  name: pool1
  namespace: metallb-system
spec:
  addresses:
  - 10.0.0.0/8
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata:
  name: ad
  namespace: metallb-system
"""

# one Service document; {ns}, {pool}, {fam} are whole lines or empty (they change the shape)
SVC = """apiVersion: {api}
kind: {kind}
metadata:
  name: {name}
{ns}  annotations:
    metallb.universe.tf/loadBalancerIPs: {ip}
{pool}spec:
  type: {type}
{fam}  ports:
  - port: 80
    protocol: TCP
status:
  loadBalancer:
    ingress:
    - ip: {ip}
"""

IPS = ["10.0.0.1", "10.0.0.2", "10.1.2.3", "010.0.0.1", "10.0.0.256", "2001:db8::1", "fd00::5", "80", "null",
       "10.0.0.1.5", "abc", "11.0.0.1"]
NAMES = [f"s{i}" for i in range(6)] + ["null", "7", "yes"]


def slow(text):
    return list(yaml.load_all(text, Loader=KubeLoader))


def doc(i, regular, name, ip, ns, pool, kind, api, stype, fam):
    if regular:
        return SVC.format(api="v1", kind="Service", name=f"svc{i}", ns="  namespace: default\n", pool="",
                          type="LoadBalancer", fam="", ip=f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}")
    return SVC.format(api=api, kind=kind, name=name, ns=ns, pool=pool, type=stype, fam=fam, ip=ip)


ODD = st.tuples(
    st.sampled_from(NAMES), st.sampled_from(IPS),
    st.sampled_from(["  namespace: default\n", "", "  namespace: other\n", "  namespace: null\n", "  namespace: 5\n"]),
    st.sampled_from(["", "    metallb.universe.tf/address-pool: pool1\n", "    metallb.universe.tf/address-pool: nope\n"]),
    st.sampled_from(["Service", "Service", "Node", "ConfigMap"]),
    st.sampled_from(["v1", "v1", "v2"]),
    st.sampled_from(["LoadBalancer", "LoadBalancer", "ClusterIP"]),
    st.sampled_from(["", "  ipFamilyPolicy: PreferDualStack\n", "  ipFamilies: [IPv6]\n"]),
)


def outcome(path, run_min, monkeypatch):
    load._parsed.clear()
    monkeypatch.setattr(fastyaml, "RUN_MIN", run_min)
    try:
        cfg = load_config(path)
    except ConfigError as e:
        return ("error", sorted(map(str, e.issues)))
    return ("ok", list(cfg.services.rows.items()), sorted(cfg.warnings), sorted(map(str, cfg.issues)))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.booleans(), ODD, st.integers(1, 40)), min_size=1, max_size=6))
def test_runs_match_document_by_document(tmp_path_factory, blocks):
    """Blocks of regular documents with odd ones in their shape mixed in, or of odd shapes."""
    parts, i = [HEAD], 0
    for regular, odd, count in blocks:
        for j in range(count):
            # an odd value inside a regular block keeps the block's shape only when the lines are the same
            use_odd = not regular or j == count // 2
            parts.append(doc(i, not use_odd, *odd) if use_odd else doc(i, True, *odd))
            i += 1
    path = tmp_path_factory.mktemp("runs") / "c.yaml"
    path.write_text("---\n".join(parts))
    with pytest.MonkeyPatch.context() as m:
        by_document = outcome(str(path), 10 ** 9, m)
    with pytest.MonkeyPatch.context() as m:
        by_run = outcome(str(path), 2, m)
    assert by_run == by_document


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(NAMES), st.sampled_from(IPS)), min_size=1, max_size=60))
def test_run_documents_match_full_loader(values):
    """A run's documents, built on demand, are what PyYAML reads (same shape, any values)."""
    text = "---\n".join(SVC.format(api="v1", kind="Service", name=n, ns="", pool="", type="LoadBalancer", fam="",
                                   ip=ip) for n, ip in values)
    items = load_items(text, slow)
    built = [d for it in items for d in (it.documents() if type(it) is Run else [it])]
    assert built == [d for d in yaml.load_all(text, Loader=KubeLoader) if d is not None]
    assert fast_load_all(text, slow) == built


def _config(tmp_path, n, bad=None):
    docs = [HEAD] + [doc(i, True, *([None] * 8)) for i in range(n)]
    if bad is not None:
        docs[bad + 1] = docs[bad + 1].replace("- ip: 10.", "- ip: 300.")
    path = tmp_path / "c.yaml"
    path.write_text("---\n".join(docs))
    load._parsed.clear()
    return str(path)


def test_regular_run_is_read_by_columns(tmp_path, monkeypatch):
    calls = []
    import speakerd.config.build_services as bs
    real = bs.rows_from_run
    monkeypatch.setattr(bs, "rows_from_run", lambda *a: calls.append(real(*a)) or calls[-1])
    cfg = load_config(_config(tmp_path, 200))
    assert calls == [True]
    assert len(cfg.services) == 200
    svc = cfg.services["default/svc7"]
    assert svc.ips == ("10.0.0.7",) and svc.pool is None and svc.families == (4,)
    assert svc.source.file.endswith("c.yaml") and svc.source.kind == "Service"


def test_error_inside_a_run_names_file_kind_and_field(tmp_path):
    path = _config(tmp_path, 200, bad=150)
    try:
        load_config(path)
    except ConfigError as e:
        [issue] = e.issues
        text = str(issue)
        assert "c.yaml" in text and "Service/default/svc150" in text
        assert "status.loadBalancer.ingress[0].ip" in text and "300.0.0.150" in text
    else:
        raise AssertionError("an invalid IP in a run must be an error")


def test_duplicate_inside_a_run_is_reported(tmp_path):
    path = _config(tmp_path, 100)
    text = open(path).read().replace("name: svc9\n", "name: svc8\n")
    open(path, "w").write(text)
    load._parsed.clear()
    try:
        load_config(path)
    except ConfigError as e:
        assert any("duplicate Service default/svc8" in str(i) for i in e.issues)
    else:
        raise AssertionError("duplicate names in a run must be an error")


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from([
    "a: 1\nb: x\n", "", "# only a comment\n", "---\n", "k: [a, b]\n", "name: s1\nip: 10.0.0.1\n",
    "list:\n- a\n- b: 2\n", "t: |\n  text\n", "q: 'x'\n"]), min_size=1, max_size=40),
    st.booleans(), st.integers(1, 120))
def test_chunked_reading_matches_full_loader(docs, lead, chunk):
    """A stream cut into chunks at '---' lines reads as the whole stream does."""
    text = ("---\n" if lead else "") + "---\n".join(docs)
    try:
        expected = [d for d in yaml.load_all(text, Loader=KubeLoader) if d is not None]
    except yaml.YAMLError:
        return
    with pytest.MonkeyPatch.context() as m:
        m.setattr(fastyaml, "CHUNK_CHARS", chunk)
        assert fast_load_all(text, slow) == expected
        items = load_items(text, slow)
    assert [d for it in items for d in (it.documents() if type(it) is Run else [it])] == expected


def test_many_list_documents_of_one_shape_are_expanded(tmp_path):
    """40 'kind: List' documents alike become one Run; their items are read, not the Lists."""
    doc = ("apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata:\n    name: s{i}\n"
           "    namespace: default\n  spec:\n    type: LoadBalancer\n  status:\n    loadBalancer:\n      ingress:\n"
           "      - ip: 10.0.0.{i}\n")
    f = tmp_path / "lists.yaml"
    f.write_text("---\n".join(doc.format(i=i) for i in range(40)))
    from speakerd.config import load_config
    cfg = load_config(str(f))
    assert sorted(cfg.services) == sorted(f"default/s{i}" for i in range(40))
    assert cfg.services["default/s7"].ips == ("10.0.0.7",)


def test_generated_services_come_as_one_run_not_one_parse_each(monkeypatch):
    """The skeleton of same-shape documents is parsed once (its holes are not taken for bad
    characters): 40 plain Service documents come as a Run, not 40 parses."""
    text = "---\n".join(SVC.format(api="v1", kind="Service", name=f"s{i}", ns="", pool="", type="LoadBalancer",
                                   fam="", ip=f"10.0.0.{i}") for i in range(40))
    calls = []
    real = fastyaml.parse_document
    monkeypatch.setattr(fastyaml, "parse_document", lambda *a: calls.append(a) or real(*a))
    items = load_items(text, slow)
    assert sum(it.count for it in items if type(it) is Run) >= 39  # the last one's skeleton ends differently
    assert len(calls) <= 2


def test_crlf_file_is_read_like_lf(monkeypatch):
    """A file saved with CRLF line breaks reads as PyYAML reads it, through the same fast path."""
    text = "---\n".join(SVC.format(api="v1", kind="Service", name=f"s{i}", ns="", pool="", type="LoadBalancer",
                                   fam="", ip=f"10.0.0.{i}") for i in range(40)).replace("\n", "\r\n")
    items = load_items(text, slow)
    assert sum(it.count for it in items if type(it) is Run) >= 39
    built = [d for it in items for d in (it.documents() if type(it) is Run else [it])]
    assert built == [d for d in yaml.load_all(text, Loader=KubeLoader) if d is not None]


@pytest.mark.parametrize("copies", [1, 40])
def test_services_of_another_load_balancer_class_are_skipped(tmp_path, copies):
    """As MetalLB: a Service with spec.loadBalancerClass is not ours (alone or in a run)."""
    svc = ("apiVersion: v1\nkind: Service\nmetadata:\n  name: s{i}\n  namespace: default\nspec:\n  type: LoadBalancer\n"
           "  loadBalancerClass: example.com/other\nstatus:\n  loadBalancer:\n    ingress:\n    - ip: 10.0.0.{i}\n")
    mine = "apiVersion: v1\nkind: Service\nmetadata:\n  name: mine\n  namespace: default\nspec:\n  type: LoadBalancer\n"
    f = tmp_path / "svcs.yaml"
    f.write_text("---\n".join([mine] + [svc.format(i=i) for i in range(copies)]))
    from speakerd.config import load_config
    cfg = load_config(str(f))
    assert list(cfg.services) == ["default/mine"]
    assert sum("loadBalancerClass 'example.com/other'" in i.message for i in cfg.issues) == copies
