"""The fast YAML reader gives exactly what the full loader gives, or defers to it."""
from __future__ import annotations

import glob
import os

import pytest
import yaml

from speakerd.config.fastyaml import fast_load_all
from speakerd.config.load import KubeLoader

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def slow(text):
    return yaml.load_all(text, Loader=KubeLoader)


SAMPLES = [
    "a: 1\nb: [x, 64500:1, 'q']\nc:\n- k: v\n  n: 2\n- plain\nd:\n  e: yes\n  f: ~\n  g: \"s\"\n",
    "a: 1.5\nb: 0x10\nc: &x 1\nd: *x\n",  # falls back
    "a: |\n  text\n",  # falls back
    "key: value # comment\n",  # falls back
    "list:\n- a\n-   b: 1\n    c: 2\nz: {}\n",
    "---\n---\na: 1\n...\n",
]


@pytest.mark.parametrize("text", SAMPLES)
def test_same_as_full_loader(text):
    assert fast_load_all(text, slow) == [d for d in slow(text) if d is not None]


def test_every_example_file_same_as_full_loader():
    files = glob.glob(os.path.join(ROOT, "config", "examples", "**", "*.yaml"), recursive=True)
    assert files
    for f in files:
        text = open(f).read()
        assert fast_load_all(text, slow) == [d for d in slow(text) if d is not None], f


# Inputs the fast reader once read differently from the full loader.
DIVERGED = {
    "key with space before colon": "a : b\n",
    "byte order mark": "\ufeffapiVersion: v1\nkind: Service\n",
    "nested sequence": "a:\n- - x\n- -\n",
    "flow list trailing comma": "a: [x, y,]\n",
    "flow list with a space": "a: [ ]\n",
    "int key": "1: x\n",
    "bool key": "on: x\n",
    "null key": "~: x\n",
    "merge key": "b: {}\n<<: {}\n",
    "document marker with content": "--- {a: b}\n",
    "paragraph separator ends a line": "a: b\u2029",
    "trailing no-break space is content": "a: b\u00a0\n",
    "leading ideographic space is content": "a: \u3000b\n",
    "no-break space in a flow list": "a: [x\u00a0, y]\n",
}
INVALID = {
    "dash value": "a: - b\n",
    "lone dash value": "a: -\n",
    "empty flow item": "a: [x, , y]\n",
    "value tag": "a: =\n",
    "marker before a key": "x: 1\n--- a: b\n",
    "control character": "a: b\x07\n",
    "form feed": "a: b\x0c\n",
    "NUL": "a: b\x00\n",
    "next line (NEL) is a line break": "a: b\x85c\n",
    "line separator in a key": "a\u2028b: c\n",
    "lone carriage return": "a: b\rc\n",
}


def _both(text):
    try:
        want = [d for d in slow(text) if d is not None]
    except yaml.YAMLError as exc:
        want = type(exc)
    try:
        got = fast_load_all(text, slow)
    except yaml.YAMLError as exc:
        got = type(exc)
    return want, got


@pytest.mark.parametrize("text", [*DIVERGED.values(), *INVALID.values()], ids=[*DIVERGED, *INVALID])
@pytest.mark.parametrize("copies", [1, 40], ids=["one", "shaped"])
def test_edge_cases_same_as_full_loader(text, copies):
    """Alone and as 40 documents of one shape (the skeleton path): same data, or the same error."""
    text = "---\n".join([text] * copies)
    want, got = _both(text)
    assert got == want


# Random block documents from tricky keys and values (seeded: the same cases every run).
_KEYS = ["a", "name", "'q'", "1", "on", "a b", "x.y/z", "é", "-k", "k#", "?", "<<", "0x1", "null", "a\u00a0"]
_VALS = ["x", "1", "-1", "01", "1.5", "1e3", "1_0", "0x1f", "yes", "~", "", "'s'", "\"s\"", "'a''b'", "[a, b]", "[]",
         "{}", "[1, 'x']", "[a,]", "[ ]", "64500:100", "10.0.0.1", "2001:db8::1", "a#b", "a #b", "x: y", "-", "- z",
         "!t x", "&a x", "*a", "|", "@x", "a,b", "{a: b}", "2001-12-14", "12:30:00", ".5", "=", "a\tb", "a:", "a::b",
         "---", "...", "b\u00a0", "\u3000b"]


def _block(r, indent, depth):
    lines = []
    seq = r.random() < 0.3
    for _ in range(r.randint(1, 4)):
        pad = " " * indent
        if seq:
            lines.append(f"{pad}- {r.choice(_KEYS)}: {r.choice(_VALS)}".rstrip(" ") if depth < 3 and r.random() < 0.3
                         else f"{pad}- {r.choice(_VALS)}".rstrip(" "))
        elif depth < 3 and r.random() < 0.3:
            lines.append(f"{pad}{r.choice(_KEYS)}:")
            lines += _block(r, indent + r.choice([0, 2, 4]), depth + 1)
        else:
            lines.append(f"{pad}{r.choice(_KEYS)}: {r.choice(_VALS)}".rstrip(" "))
    return lines


@pytest.mark.parametrize("seed", range(4))
def test_random_documents_same_as_full_loader(seed):
    import random
    r = random.Random(seed)
    for _ in range(150):
        text = "\n".join(_block(r, 0, 0)) + "\n"
        for copies in (1, 20):
            want, got = _both("---\n".join([text] * copies))
            assert got == want, text
