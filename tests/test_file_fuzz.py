"""A short budget of the file fuzzer (:mod:`helpers.file_fuzz`): malformed ONNX models,
checkpoints and calibration data end as a load or a clean error, never a crash, hang or
runaway memory. ``tools/fuzz_files.py`` runs the long budget (docs/robustness.md, "Files").
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.file_fuzz import FAILURES, TARGETS, Worker, fuzz, make_input
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("onnx")
pytest.importorskip("torch")
pytest.importorskip("PIL")

BUDGET = 12
"""Inputs per target in the fixed-seed run (the hypothesis test draws more)."""


@pytest.fixture(scope="module")
def worker() -> Iterator[Worker]:
    w = Worker(timeout=30.0, memory_mb=2048)
    yield w
    w.close()


@pytest.fixture(scope="module")
def seeds() -> dict[str, list[bytes]]:
    return {name: t.seeds() for name, t in TARGETS.items()}


def test_the_harness_tells_each_outcome_apart(worker: Worker, tmp_path: Path) -> None:
    """The classifier itself: without this, a fuzz run could pass by seeing nothing."""
    path = tmp_path / "x"
    path.write_bytes(b"")
    worker.timeout = 3.0
    try:
        assert worker.run("_crash", path)[0] == "crash"
        assert worker.run("_memory", path)[0] == "memory"
        assert worker.run("_die", path)[0] == "crash"
        assert worker.run("_hang", path)[0] == "hang"
        assert worker.run("onnx", path)[0] == "clean"  # the worker came back after the hang
    finally:
        worker.timeout = 30.0


def test_seeds_load(worker: Worker, seeds: dict[str, list[bytes]], tmp_path: Path) -> None:
    """The unmutated seeds load: mutations start from files graphcnn accepts."""
    for name, target in TARGETS.items():
        for i, data in enumerate(seeds[name]):
            if target.suffix:
                path = tmp_path / f"{name}{i}{target.suffix}"
                path.write_bytes(data)
            else:
                path = tmp_path / f"{name}{i}"
                path.mkdir()
                (path / "a.png").write_bytes(seeds[name][0])
            assert worker.run(name, path) == ("ok", ""), name


def test_short_budget_has_no_crash_hang_or_memory(worker: Worker, tmp_path: Path) -> None:
    report = fuzz(list(TARGETS), BUDGET, 0, tmp_path, worker)
    assert report.total == BUDGET * len(TARGETS)
    assert report.failures == [], report.failures
    assert sum(c["clean"] for c in report.counts.values()) > report.total // 3


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(target=st.sampled_from(sorted(TARGETS)), seed=st.integers(0, 2**32 - 1))
def test_hypothesis_drawn_inputs(
    worker: Worker,
    seeds: dict[str, list[bytes]],
    tmp_path_factory: pytest.TempPathFactory,
    target: str,
    seed: int,
) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    path, mutations = make_input(
        target, seeds[target], seed, random.Random(seed).randrange(99), folder
    )
    outcome, detail = worker.run(target, path)
    assert outcome not in FAILURES, (target, seed, mutations, detail)
