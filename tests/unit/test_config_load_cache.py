"""Unchanged files are not parsed again on reload; changed ones are."""
from speakerd.config import load
from speakerd.config.load import load_documents


def test_unchanged_file_reuses_parse_and_changed_file_is_reparsed(tmp_path, monkeypatch):
    f = tmp_path / "a.yaml"
    f.write_text("kind: Node\napiVersion: v1\nmetadata:\n  name: n1\n")
    calls = []
    real = load._docs_of
    monkeypatch.setattr(load, "_docs_of", lambda text, file: calls.append(file) or real(text, file))
    d1, _, _ = load_documents([str(f)])
    d2, _, _ = load_documents([str(f)])
    assert [d.data for d in d1] == [d.data for d in d2] == [{"kind": "Node", "apiVersion": "v1",
                                                             "metadata": {"name": "n1"}}]
    assert len(calls) == 1
    f.write_text("kind: Node\napiVersion: v1\nmetadata:\n  name: n2\n")
    d3, _, _ = load_documents([str(f)])
    assert d3[0].data["metadata"]["name"] == "n2" and len(calls) == 2


def test_large_files_are_not_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(load, "CACHE_MAX_CHARS", 10)
    f = tmp_path / "big.yaml"
    f.write_text("kind: Node\napiVersion: v1\nmetadata:\n  name: n1\n")
    load_documents([str(f)])
    assert str(f) not in load._parsed


def test_files_no_longer_read_are_dropped(tmp_path):
    """A directory whose files come and go (generated names) must not grow the cache forever."""
    for i in range(3):
        (tmp_path / f"gen-{i}.yaml").write_text(f"kind: Node\napiVersion: v1\nmetadata:\n  name: n{i}\n")
        load_documents([str(tmp_path)])
        if i:
            (tmp_path / f"gen-{i - 1}.yaml").unlink()
            load_documents([str(tmp_path)])
    assert [k for k in load._parsed if k.startswith(str(tmp_path))] == [str(tmp_path / "gen-2.yaml")]


def test_byte_order_mark_is_dropped_from_json_and_yaml(tmp_path):
    (tmp_path / "a.json").write_bytes(b"\xef\xbb\xbf" + b'{"kind": "Node", "apiVersion": "v1", "metadata": {"name": "n1"}}')
    (tmp_path / "b.yaml").write_bytes(b"\xef\xbb\xbfkind: Node\napiVersion: v1\nmetadata:\n  name: n2\n")
    docs, _, issues = load_documents([str(tmp_path)])
    assert issues == []
    assert [d.data["metadata"]["name"] for d in docs] == ["n1", "n2"]


def test_typed_lists_from_the_api_server_are_expanded(tmp_path):
    """A ServiceList (API server output) holds items without kind/apiVersion: they are the list's."""
    (tmp_path / "svcs.json").write_text(
        '{"kind": "ServiceList", "apiVersion": "v1", "metadata": {}, "items": ['
        '{"metadata": {"name": "a", "namespace": "default"}, "spec": {"type": "LoadBalancer"}},'
        '{"kind": "Service", "apiVersion": "v1", "metadata": {"name": "b", "namespace": "default"}}]}')
    docs, _, issues = load_documents([str(tmp_path)])
    assert issues == []
    assert [(d.data["kind"], d.data["apiVersion"], d.data["metadata"]["name"]) for d in docs] == [
        ("Service", "v1", "a"), ("Service", "v1", "b")]
