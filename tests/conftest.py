"""Shared test helpers: the repo root, torchvision's published numbers, spec compilation."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import graphcnn
from graphcnn.errors import SpecError

REPO = Path(__file__).resolve().parent.parent
META_TSV = Path(__file__).resolve().parent / "reference" / "torchvision_meta.tsv"

# Keep subprocesses (CLI tests) on this interpreter and away from user config.
os.environ.setdefault("PYTHONHASHSEED", "0")


def torchvision_meta() -> dict[str, dict[str, float]]:
    """torchvision model name -> {"params": int, "gmacs": float, "crop": int} (first weights row).

    torchvision's table leaves mobilenet_v2's num_params empty; its quantized row has it.
    """
    table: dict[str, dict[str, float]] = {}
    with META_TSV.open() as f:
        for row in csv.reader((line for line in f if not line.startswith("#")), delimiter="\t"):
            file, enum = row[0], row[1]
            name = enum.lower().removesuffix("_weights").removesuffix("_quantizedweights")
            entry = table.setdefault(
                name, {"params": 0, "gmacs": float(row[4]), "crop": int(row[7])}
            )
            if not entry["params"] and row[3]:
                entry["params"] = int(row[3])
            if file.startswith("quantization/"):
                continue
    return table


def compile_text(text: str, **kw: object) -> graphcnn.Graph:
    return graphcnn.compile_text(text, **kw)  # type: ignore[arg-type]


def spec_error(text: str, **kw: object) -> SpecError:
    """Compile ``text`` expecting a SpecError; return it."""
    with pytest.raises(SpecError) as info:
        graphcnn.compile_text(text, **kw)  # type: ignore[arg-type]
    return info.value


@pytest.fixture(scope="session")
def torch() -> Any:
    """torch, a test-only dependency: the test is skipped where it is missing."""
    return pytest.importorskip("torch")


@pytest.fixture(scope="module")
def torch1(torch: Any) -> Iterator[Any]:
    """torch with the cores shared between xdist workers (one thread each on the 2-core machine),
    for the module that asks; skips without torch."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    old = torch.get_num_threads()
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))
    yield torch
    torch.set_num_threads(old)
