#!/usr/bin/env python3
"""Long fuzzing run of the BGP codec and the session machine.

    .venv/bin/python bench/fuzz_long.py --target codec --seconds 600
    .venv/bin/python bench/fuzz_long.py --target session --engine random --seconds 120

Engines:

* ``atheris`` (default when ``import atheris`` works): coverage-guided
  libFuzzer over the speakerd.wire / speakerd.fsm / speakerd.rib code.  The
  first input byte picks the negotiated context (codec) or the session set-up
  (session); the rest is the message stream.  The seed corpus is every valid
  message speakerd's encoder produces (tests/robustness/mutate.py) plus
  tests/data/fuzz_corpus/.  libFuzzer prints exec/s itself; crashes are
  written to ``--out`` as ``crash-*``.
* ``random``: a plain mutation loop over the same seeds (bit flips, byte
  sets, truncation, extension, splicing, wrong lengths); prints executions/s
  every 10 s and saves each new failure to ``--out`` as ``<target>-<n>.bin``.

A failure is any exception other than a BGPError with an RFC-defined
(code, subcode) from the codec, or any exception / invalid NOTIFICATION from
the session machine.  A saved input becomes a regression test by copying it
into tests/data/fuzz_corpus/ (tests/unit/test_fuzz_corpus.py replays them).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CORPUS = ROOT / "tests" / "data" / "fuzz_corpus"


def _load():
    from tests.robustness import mutate
    return mutate


def codec_one(mutate, names, data: bytes) -> None:
    if not data:
        return
    ctx = mutate.CONTEXTS[names[data[0] % len(names)]]
    body = data[1:]
    mutate.check_decode(body, ctx)
    mutate.check_stream(body, ctx, (data[0] >> 4) % 4 * 7)


def session_one(mutate, inputs, data: bytes) -> None:
    """First byte: set-up (bit 3: establish first); then the stream, cut at
    0x00 0x00 0xFF 0xFE boundaries into separate reads, with a fake-clock tick
    between reads."""
    if not data:
        return
    kind = data[0] & 7
    steps = [("connected", 0, 0)]
    if data[0] & 8:
        steps += [("data", 0, ()), ("data", -1, ())]
    for part in data[1:].split(b"\x00\x00\xff\xfe"):
        steps.append(("raw", 0, part))
        steps.append(("wait", part[:1][0] if part else 0, 0))
    mutate.run_session(kind, steps, inputs[kind])


def seed_corpus(mutate, target: str) -> Path:
    d = Path(tempfile.mkdtemp(prefix=f"speakerd-fuzz-{target}-"))
    names = sorted(mutate.CONTEXTS)
    n = 0
    for i, name in enumerate(names):
        for raw in mutate.seeds(mutate.CONTEXTS[name]):
            lead = bytes((i | 8,)) if target == "session" else bytes((i,))
            (d / f"seed-{n}").write_bytes(lead + raw)
            n += 1
    if CORPUS.is_dir():
        for f in CORPUS.glob("*.bin"):
            (d / f"corpus-{f.stem}").write_bytes(b"\x00" + f.read_bytes())
    return d


def run_atheris(target: str, seconds: int, out: Path, extra: list[str]) -> None:
    import atheris
    with atheris.instrument_imports(include=["speakerd"]):
        mutate = _load()
    names = sorted(mutate.CONTEXTS)
    inputs = {k: mutate.session_inputs(mutate.session_config(k)) for k in range(8)}
    if target == "codec":
        def one(data: bytes) -> None:
            codec_one(mutate, names, data)
    else:
        def one(data: bytes) -> None:
            session_one(mutate, inputs, data)
    corpus = seed_corpus(mutate, target)
    out.mkdir(parents=True, exist_ok=True)
    argv = [sys.argv[0], f"-max_total_time={seconds}", f"-artifact_prefix={out}/", "-print_final_stats=1",
            "-max_len=8192", *extra, str(corpus)]
    print(f"atheris: {target}, {seconds}s, seed corpus {corpus}, crashes to {out}/", flush=True)
    atheris.Setup(argv, one)
    atheris.Fuzz()


def run_random(target: str, seconds: int, out: Path, seed: int) -> int:
    mutate = _load()
    rng = random.Random(seed)
    names = sorted(mutate.CONTEXTS)
    pools = {n: mutate.seeds(mutate.CONTEXTS[n]) for n in names}
    inputs = {k: mutate.session_inputs(mutate.session_config(k)) for k in range(8)}
    out.mkdir(parents=True, exist_ok=True)
    start = last = time.monotonic()
    execs = failures = 0
    seen: set[str] = set()
    while True:
        now = time.monotonic()
        if now - start >= seconds:
            break
        if now - last >= 10:
            print(f"{now - start:7.0f}s  {execs:>10} execs  {execs / (now - start):8.0f} exec/s  "
                  f"{failures} failures", flush=True)
            last = now
        try:
            if target == "codec":
                i = rng.randrange(len(names))
                pool = pools[names[i]]
                data = bytes((i | (rng.randrange(4) << 4),)) + mutate.apply(rng.choice(pool),
                                                                             mutate.random_mutations(rng), pool)
                codec_one(mutate, names, data)
            else:
                kind = rng.randrange(8)
                steps = mutate.random_steps(rng, rng.randrange(1, 30))
                data = repr(steps).encode()
                mutate.run_session(kind, steps, inputs[kind])
        except mutate.OracleFailure as e:
            key = str(e).split(" for ")[0][:200]
            if key not in seen:
                seen.add(key)
                failures += 1
                path = out / f"{target}-{hashlib.sha1(data).hexdigest()[:12]}.bin"
                path.write_bytes(data)
                print(f"FAILURE saved to {path}: {str(e)[:500]}", flush=True)
        execs += 1
    elapsed = time.monotonic() - start
    print(f"done: {execs} execs in {elapsed:.0f}s = {execs / elapsed:.0f} exec/s, {failures} distinct failures")
    return 1 if failures else 0


def main() -> int:
    try:
        import atheris  # noqa: F401
        default_engine = "atheris"
    except ImportError:
        default_engine = "random"
    p = argparse.ArgumentParser(description=__doc__.split("\n")[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", choices=["codec", "session"], default="codec")
    p.add_argument("--engine", choices=["atheris", "random"], default=default_engine)
    p.add_argument("--seconds", type=int, default=600)
    p.add_argument("--out", type=Path, default=Path("fuzz-artifacts"))
    p.add_argument("--seed", type=int, default=int.from_bytes(os.urandom(4), "big"))
    p.add_argument("libfuzzer", nargs="*", help="extra libFuzzer flags (atheris), after --")
    a = p.parse_args()
    if a.engine == "atheris":
        run_atheris(a.target, a.seconds, a.out, a.libfuzzer)
        return 0
    print(f"random engine: {a.target}, {a.seconds}s, seed {a.seed}", flush=True)
    return run_random(a.target, a.seconds, a.out, a.seed)


if __name__ == "__main__":
    sys.exit(main())
