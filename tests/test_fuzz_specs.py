"""A short fuzzing budget in the test suite (issue 10): hypothesis draws specs from the grammar,
network bodies of grammar-generated statements and mutations of the zoo specs and docs examples;
each runs through ``graphcnn check`` in a worker process with a time and a memory limit and must
end ``ok`` or with one located error (``tests/helpers/fuzz.py`` says how an input is judged).
The long campaign is ``tools/fuzz_specs.py``; docs/robustness.md has its numbers.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from helpers import fuzz
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def pool() -> Iterator[fuzz.Pool]:
    import graphcnn.cli.app  # noqa: F401 - imported once, before the worker forks

    p = fuzz.Pool(workers=1, timeout_s=30.0, memory_mb=2048)
    yield p
    p.close()


def _chooser(data: st.DataObject) -> fuzz.Choose:
    return lambda n: data.draw(st.integers(0, n - 1)) if n > 1 else 0


def _judge(pool: fuzz.Pool, text: str) -> None:
    ((_, _, outcome),) = list(pool.run([(0, text)]))
    assert outcome.kind in ("ok", "located"), (
        f"{outcome.kind}: {outcome.detail}\n--- input:\n{text}"
    )


@SETTINGS
@given(st.data())
def test_grammar_programs(pool: fuzz.Pool, data: st.DataObject) -> None:
    _judge(pool, fuzz.grammar_program(_chooser(data)))


@SETTINGS
@given(st.data())
def test_network_bodies(pool: fuzz.Pool, data: st.DataObject) -> None:
    _judge(pool, fuzz.skeleton_program(_chooser(data)))


@settings(SETTINGS, max_examples=100)
@given(st.data())
def test_mutated_zoo_and_docs_specs(pool: fuzz.Pool, data: st.DataObject) -> None:
    choose = _chooser(data)
    seeds = fuzz.seed_corpus()
    _, text = seeds[choose(len(seeds))]
    _judge(pool, fuzz.mutate(text, choose))


def test_seed_corpus_covers_the_zoo_and_the_docs() -> None:
    names = [name for name, _ in fuzz.seed_corpus()]
    assert "resnet.gcnn" in names and any(n.startswith("language.md#") for n in names)


def test_the_judge_tells_the_outcomes_apart(pool: fuzz.Pool) -> None:
    """The classifier itself: each outcome is reachable, so the fuzz tests can fail."""
    ok = "network n() {\n  x = input(3, 8, 8)\n  return x\n}\n"
    bad = ok.replace("return x", "return zz")
    assert [o.kind for _, _, o in pool.run([(0, ok), (1, bad)])] == ["ok", "located"]
    assert fuzz.classify_output(2, "error: no location\n", bad, "f.gcnn").kind == "unlocated"
    wrong_line = "f.gcnn:3:3: error: x\n    3 | something else\n"
    assert fuzz.classify_output(2, wrong_line, bad, "f.gcnn").kind == "unlocated"
    assert fuzz.classify_output(1, "internal error: KeyError", bad, "f.gcnn").kind == "crash"
    assert (
        fuzz.classify_output(2, "Traceback (most recent call last):", bad, "f.gcnn").kind == "crash"
    )
    assert fuzz.classify_output(0, "", bad, "f.gcnn").kind == "ok"
    oom = "internal error: MemoryError: \n  this is a bug"
    assert fuzz.classify_output(1, oom, bad, "f.gcnn").kind == "memory"


def test_the_pool_reports_hangs_and_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker that does not answer in time is killed (``hang``); one that runs out of its
    address space reports ``memory``; both are replaced and the pool goes on."""

    def slow_or_greedy(text: str, folder: str) -> fuzz.Outcome:
        while text == "hang":  # busy: a hang is measured in CPU time
            pass
        if text == "memory":
            try:
                _ = bytearray(8 * 1024**3)
            except MemoryError:
                return fuzz.Outcome("memory", "MemoryError")
        return fuzz.Outcome("ok")

    monkeypatch.setattr(fuzz, "check_in_process", slow_or_greedy)
    p = fuzz.Pool(workers=1, timeout_s=1.0, memory_mb=1024)
    try:
        got = {text: o.kind for _, text, o in p.run(enumerate(["hang", "memory", "fine"]))}
    finally:
        p.close()
    assert got == {"hang": "hang", "memory": "memory", "fine": "ok"}
