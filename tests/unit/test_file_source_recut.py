"""File source: a changed file is cut again only where it changed — and the result is
always that of reading the new file from scratch (records, events, store)."""
from __future__ import annotations

import json
import os
import re

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from speakerd.config.parse import cut, normalise
from speakerd.sources import files as files_mod
from speakerd.sources.files import FileSource
from speakerd.store import Store

SHAPES = ("yaml-docs", "yaml-list", "yaml-list-indented", "json-list", "json-stream")


def service(i: int, ip: str, ns: str = "d") -> dict:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": f"s{i}", "namespace": ns, "labels": {"app": f"a{i % 3}"},
                         "annotations": {"note": f"n{i}"}},
            "spec": {"type": "LoadBalancer", "ports": [{"port": 80 + i, "protocol": "TCP"}]},
            "status": {"loadBalancer": {"ingress": [{"ip": ip}]}}}


def config_map(i: int) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"c{i}", "namespace": "d"},
            "data": {"k": "v"}}


def render(objs: list[dict], shape: str) -> str:
    if shape == "yaml-docs":
        return "".join("---\n" + yaml.safe_dump(o, sort_keys=True) for o in objs)
    if shape.startswith("yaml-list"):
        body = yaml.safe_dump({"apiVersion": "v1", "items": objs, "kind": "List", "metadata": {"resourceVersion": ""}},
                              sort_keys=True)
        if shape == "yaml-list-indented":  # items indented under "items:", as some tools write them
            out, inside = [], False
            for line in body.splitlines(keepends=True):
                if line.startswith("items:"):
                    inside = True
                elif inside and line[:1] not in (" ", "-"):
                    inside = False
                out.append("  " + line if inside and not line.startswith("items:") else line)
            body = "".join(out)
        return body
    if shape == "json-list":
        return json.dumps({"apiVersion": "v1", "items": objs, "kind": "List", "metadata": {"resourceVersion": ""}},
                          indent=4) + "\n"
    return "".join(json.dumps(o, indent=2) + "\n" for o in objs)


SNIPPETS = ["\n", " ", "-", "- ", "---\n", ":", "#c\n", "x", "{", "}", ",", '"', "]", "[", "\n- a: 1\n", "items:\n",
            "kind: List\n", "%YAML 1.2\n", "1", "\t", "\n---\n", ', {"kind": "Node"}', "\n  "]


def edits(shape: str):
    ip = st.tuples(st.integers(0, 255), st.integers(1, 254)).map(lambda t: f"10.9.{t[0]}.{t[1]}")
    other = service(99, "10.0.0.99")
    obj_text = json.dumps(other, indent=4) if shape.startswith("json") else yaml.safe_dump(other)
    return st.one_of(
        st.tuples(st.just("ip"), st.integers(0, 1000), ip),
        st.tuples(st.just("insert"), st.integers(0, 10 ** 6), st.sampled_from(SNIPPETS)),
        st.tuples(st.just("delete"), st.integers(0, 10 ** 6), st.integers(1, 60)),
        st.tuples(st.just("copy"), st.integers(0, 10 ** 6), st.integers(1, 400), st.integers(0, 10 ** 6)),
        st.tuples(st.just("insert"), st.integers(0, 10 ** 6), st.just(obj_text)),
        st.tuples(st.just("boundary"), st.integers(0, 1000), st.just(obj_text)),
    )


def apply_edit(text: str, edit, shape: str) -> str:
    kind = edit[0]
    if kind == "ip":
        found = list(re.finditer(r"10\.\d+\.\d+\.\d+", text))
        if not found:
            return text
        m = found[edit[1] % len(found)]
        return text[:m.start()] + edit[2] + text[m.end():]
    if kind == "insert":
        pos = edit[1] % (len(text) + 1)
        return text[:pos] + edit[2] + text[pos:]
    if kind == "delete":
        pos = edit[1] % (len(text) + 1)
        return text[:pos] + text[pos + edit[2]:]
    if kind == "copy":  # a stretch copied elsewhere: an object moved, duplicated or cut in half
        a = edit[1] % (len(text) + 1)
        piece = text[a:a + edit[2]]
        pos = edit[3] % (len(text) + 1)
        return text[:pos] + piece + text[pos:]
    # an object inserted where a unit starts (the usual edit of a manifest)
    marks = [m.start() + 1 for m in re.finditer(r"\n(?:---|- |  - |    \{|  \{)", text)] or [len(text)]
    pos = marks[edit[1] % len(marks)]
    body = edit[2]
    if shape == "yaml-docs":
        body = "---\n" + body
    elif shape == "yaml-list":
        body = "- " + body.replace("\n", "\n  ").rstrip(" ")
    elif shape == "yaml-list-indented":
        body = "  - " + body.replace("\n", "\n    ").rstrip(" ")
    elif shape == "json-list":
        body = body + ",\n"
    else:
        body = body + "\n"
    return text[:pos] + body + text[pos:]


def records(src: FileSource, path: str) -> list[tuple]:
    f = src._files[path]
    return [(f.start(i), f.lens[i], f.digests[i], files_mod._stubs(src._info(f, i)), f.seqs[i] is None)
            for i in range(len(f.infos))]


def issues(src: FileSource) -> list[tuple]:
    return sorted((i.severity, i.obj, i.field, re.sub(r"line \d+", "line N", i.message)) for i in src.issues())


def write(path, text: str, step: int) -> None:
    tmp = str(path) + ".tmp"
    with open(tmp, "w") as fh:
        fh.write(text)
    os.utime(tmp, ns=(step, step))  # a new mtime each step, whatever the clock's granularity
    os.replace(tmp, path)


def check_step(src: FileSource, store: Store, path: str) -> None:
    store.apply(src.read())
    fresh, fresh_store = FileSource([path]), Store()
    fresh_store.apply(fresh.read())
    if src._files[path].issues or fresh._files[path].issues:
        return  # a file that cannot be read changes nothing: the store keeps what the last good read gave
    assert records(src, path) == records(fresh, path)
    assert issues(src) == issues(fresh)
    assert store.services == fresh_store.services and store.held == fresh_store.held
    assert sorted(map(str, store.errors())) == sorted(map(str, fresh_store.errors()))


@pytest.mark.parametrize("shape", SHAPES)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_edit_gives_what_a_read_from_scratch_gives(shape, data, tmp_path, monkeypatch):
    monkeypatch.setattr(files_mod, "GROUP", data.draw(st.sampled_from([1, 2, 3, 64])))
    edit_and_compare(shape, data, tmp_path, 8)


def edit_and_compare(shape: str, data, tmp_path, most: int) -> None:
    """A file of 2-9 objects edited up to ``most`` times; after each edit, what the source
    read equals a read from scratch (``check_step``)."""
    n = data.draw(st.integers(2, 9))
    objs = [service(i, f"10.0.0.{i + 1}") if i % 4 != 3 else config_map(i) for i in range(n)]
    path = str(tmp_path / ("f.json" if shape.startswith("json") else "f.yaml"))
    text = render(objs, shape)
    write(path, text, 1)
    src, store = FileSource([path]), Store()
    check_step(src, store, path)
    for step, edit in enumerate(data.draw(st.lists(edits(shape), min_size=1, max_size=most)), 2):
        text = apply_edit(text, edit, shape)
        write(path, text, step)
        check_step(src, store, path)


@pytest.mark.parametrize("shape", SHAPES)
def test_one_object_changed_in_the_middle_is_cut_again_only_there(shape, tmp_path):
    path = str(tmp_path / ("f.json" if shape.startswith("json") else "f.yaml"))
    objs = [service(i, f"10.0.{i // 250}.{i % 250 + 1}") for i in range(300)]
    write(path, render(objs, shape), 1)
    src, store = FileSource([path]), Store()
    store.apply(src.read())
    assert src.units_parsed == 300 and src.recuts == 0
    objs[150] = service(150, "10.7.7.7")
    write(path, render(objs, shape), 2)
    events = src.read()
    assert src.recuts == 1 and src.units_parsed == 1
    assert [(e.type, e.obj["metadata"]["name"]) for e in events] == [("ADDED", "s150")]
    assert store.apply(events).services["d/s150"][1].ips == ("10.7.7.7",)
    del objs[200]  # an object removed: its DELETED, nothing parsed
    write(path, render(objs, shape), 3)
    events = src.read()
    assert src.recuts == 1 and src.units_parsed == 0
    assert [(e.type, e.obj["metadata"]["name"]) for e in events] == [("DELETED", "s200")]
    assert records(src, path) == records(_read(path), path)


def _read(path: str) -> FileSource:
    fresh = FileSource([path])
    fresh.read()
    return fresh


def test_a_duplicate_made_by_an_edit_is_reported_as_from_scratch(tmp_path):
    path = str(tmp_path / "f.yaml")
    objs = [service(i, f"10.0.0.{i + 1}") for i in range(20)]
    write(path, render(objs, "yaml-docs"), 1)
    src, store = FileSource([path]), Store()
    store.apply(src.read())
    objs[15] = service(3, "10.0.0.99")  # s3 defined again later in the file: the first one stays
    write(path, render(objs, "yaml-docs"), 2)
    store.apply(src.read())
    assert store.services["d/s3"].ips == ("10.0.0.4",) and "d/s15" not in store.services
    (dup,) = [i for i in src.issues() if i.severity == "error"]
    assert "duplicate Service d/s3" in dup.message


def test_the_cut_of_a_bom_file_and_a_file_without_final_newline(tmp_path):
    text = render([service(i, f"10.0.0.{i + 1}") for i in range(5)], "yaml-docs").rstrip("\n")
    data = normalise(b"\xef\xbb\xbf" + text.encode(), False)
    assert len(cut(data, False)) == 5
    path = str(tmp_path / "f.yaml")
    write(path, "\ufeff" + text, 1)
    src, store = FileSource([path]), Store()
    store.apply(src.read())
    write(path, "\ufeff" + text.replace("10.0.0.3", "10.0.3.3"), 2)
    store.apply(src.read())
    assert store.services["d/s2"].ips == ("10.0.3.3",) and len(store.services) == 5


def _units(text: str, json_: bool):
    try:
        units = cut(normalise(text.encode(), json_), json_)
    except Exception as exc:  # noqa: BLE001 - the same error either way
        return type(exc).__name__
    return [(u.start, bytes(u.data), u.seq is None, u.seq.fill if u.seq is not None else None) for u in units]


@pytest.mark.parametrize("shape", SHAPES)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_a_cut_in_small_windows_is_the_cut_in_one_scan(shape, data):
    """The line patterns are searched window by window (config.parse.SCAN, 1 MiB, so a
    large file never holds the interpreter for one long scan); with windows of a few bytes
    every unit comes out where one scan over the whole text puts it, for any edit."""
    from speakerd.config import parse as parse_mod
    n = data.draw(st.integers(1, 9))
    objs = [service(i, f"10.0.0.{i + 1}") if i % 4 != 3 else config_map(i) for i in range(n)]
    text = render(objs, shape)
    for edit in data.draw(st.lists(edits(shape), max_size=4)):
        text = apply_edit(text, edit, shape)
    json_ = shape.startswith("json")
    whole = _units(text, json_)
    old = parse_mod.SCAN
    try:
        parse_mod.SCAN = data.draw(st.integers(1, 200))
        assert _units(text, json_) == whole
    finally:
        parse_mod.SCAN = old


@pytest.fixture
def mapped(monkeypatch):
    """Files compared from a map under a read lease, as ``speakerd run`` does (SIGIO ignored);
    the maps made are counted."""
    import signal
    old = signal.signal(signal.SIGIO, signal.SIG_IGN)
    monkeypatch.setattr(files_mod, "MAP_AT_LEAST", 0)
    made = []
    real = files_mod.map_under_lease

    def counted(fd, size):
        m = real(fd, size)
        made.append(m is not None)
        return m
    monkeypatch.setattr(files_mod, "map_under_lease", counted)
    yield made
    signal.signal(signal.SIGIO, old)


@pytest.mark.parametrize("shape", SHAPES)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_mapped_file_compares_as_a_read_one(shape, data, tmp_path, mapped):
    edit_and_compare(shape, data, tmp_path, 6)
    assert all(mapped)  # every comparison was made from a map  # every comparison was made from a map


def test_a_writer_waits_for_the_lease_and_a_file_open_for_writing_is_not_mapped(tmp_path, mapped):
    import threading
    path = tmp_path / "f.yaml"
    path.write_bytes(b"x" * 100)
    fd = os.open(path, os.O_RDONLY)
    m = files_mod.map_under_lease(fd, 100)
    assert m is not None
    opened = threading.Event()

    def writer():
        os.close(os.open(path, os.O_WRONLY | os.O_TRUNC))  # waits until the lease is given back
        opened.set()
    t = threading.Thread(target=writer)
    t.start()
    import fcntl
    import time
    deadline = time.monotonic() + 10
    while fcntl.fcntl(fd, fcntl.F_GETLEASE) != fcntl.F_UNLCK:  # the writer's open is breaking the lease
        assert time.monotonic() < deadline
        time.sleep(0.001)
    assert not opened.is_set()  # ... and waits for it: the map cannot be cut short meanwhile
    assert bytes(m[:3]) == b"xxx"
    m.close()
    files_mod.release_lease(fd)
    t.join(10)
    assert opened.is_set()
    os.close(fd)
    w = os.open(path, os.O_WRONLY)  # open for writing elsewhere: no lease, no map (pread instead)
    fd = os.open(path, os.O_RDONLY)
    assert files_mod.map_under_lease(fd, os.fstat(fd).st_size) is None
    os.close(fd)
    os.close(w)


def test_a_file_kept_open_for_writing_is_read_after_busy_for(tmp_path, mapped):
    now = [0.0]
    path = str(tmp_path / "f.yaml")
    write(path, render([service(0, "10.0.0.1")], "yaml-docs"), 1)
    src = FileSource([path], clock=lambda: now[0])
    assert len(src.read()) == 1
    w = open(path, "w")  # kept open for good by some process
    w.write(render([service(0, "10.0.0.2"), service(1, "10.0.0.3")], "yaml-docs"))
    w.flush()
    for t in (0.0, 1.0, src.BUSY_FOR):  # however many reads the writer's pieces set off meanwhile
        now[0] = t
        assert src.read() == [] and src.busy == [path]
    now[0] = src.BUSY_FOR + 0.1
    events = src.read()  # read anyway
    assert src.busy == [] and sorted(e.obj["metadata"]["name"] for e in events) == ["s0", "s1"]
    w.close()


def test_a_raw_line_break_in_a_json_key_is_a_syntax_error_not_a_crash(tmp_path):
    path = str(tmp_path / "f.json")
    text = render([service(0, "10.0.0.1")], "json-list").replace('"apiVersion"', '"\napiVersion"', 1)
    write(path, text, 1)
    src = FileSource([path])
    assert src.read() == []
    assert any("JSON syntax error" in i.message and "line 2" in i.message for i in src.issues())


@settings(max_examples=50, deadline=None)
@given(keys=st.sets(st.tuples(st.sampled_from(["Service", "Node"]), st.text(max_size=3), st.text(max_size=5)),
                    max_size=60), run=st.integers(1, 7))
def test_identity_hashes_sorted_in_runs_are_sorted(keys, run):
    old = files_mod.RUN
    files_mod.RUN = run
    try:
        assert list(files_mod._sorted_ids(hash(k) for k in keys)) == sorted(hash(k) for k in keys)
    finally:
        files_mod.RUN = old


def test_the_version_read_is_held_open_until_the_next_is_read(tmp_path, monkeypatch):
    """A large file stays open from one read to the next (a writer's rename over it then
    leaves its pages to be dropped when it is closed here, off the loop); the one replaced
    is closed once the new one is read, a file gone is closed too."""
    monkeypatch.setattr(files_mod, "MAP_AT_LEAST", 0)
    path = str(tmp_path / "f.yaml")
    write(path, render([service(0, "10.0.0.1")], "yaml-docs"), 1)
    src = FileSource([str(tmp_path)], hold_open=True)
    src.read()
    first = src._held[path]
    assert os.fstat(first.fileno()).st_ino == os.stat(path).st_ino
    write(path, render([service(0, "10.0.0.2")], "yaml-docs"), 2)  # renamed over
    [event] = src.read()
    assert event.obj["status"]["loadBalancer"]["ingress"][0]["ip"] == "10.0.0.2"
    second = src._held[path]
    assert second is not first and os.fstat(second.fileno()).st_ino == os.stat(path).st_ino
    src._closer.submit(lambda: None).result()  # the closer thread has done what it was given
    assert first.closed
    os.remove(path)
    src.read()
    src._closer.submit(lambda: None).result()
    assert second.closed and src._held == {}
    src.close()
