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
    n = data.draw(st.integers(2, 9))
    objs = [service(i, f"10.0.0.{i + 1}") if i % 4 != 3 else config_map(i) for i in range(n)]
    path = str(tmp_path / ("f.json" if shape.startswith("json") else "f.yaml"))
    text = render(objs, shape)
    write(path, text, 1)
    src, store = FileSource([path]), Store()
    check_step(src, store, path)
    for step, edit in enumerate(data.draw(st.lists(edits(shape), min_size=1, max_size=8)), 2):
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
