"""``graphcnn train`` under ``torchrun --nproc_per_node 2`` (gloo on CPU) matches one process.

With the same global batch, DDP's averaged gradient over two half-batches is the one-process
gradient over the whole batch, and the DistributedSampler's two shards of one permutation are
exactly the one-process batches: on a network without batch norm or dropout both runs reach the
same validation accuracy and (up to float summation order) the same losses. Only rank 0 writes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")

SPEC = """
network flat(classes = 10) {
  x = input(1, 8, 8)
  x = x -> conv(8, 3, pad: 1) as conv1 -> relu -> flatten -> linear(classes) as fc
  return x
}
"""
ARGS = ["--epochs", "3", "--batch-size", "64", "--lr", "0.01", "--threads", "1", "--json"]


def _graphcnn() -> str:
    exe = Path(sys.executable).with_name("graphcnn")
    return str(exe) if exe.exists() else shutil.which("graphcnn") or "graphcnn"


def _run(cmd: list[str], cwd: Path) -> dict[str, Any]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    lines = [line for line in p.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, p.stdout  # --json: exactly one object, from rank 0 only
    return dict(json.loads(lines[0]))


@pytest.mark.slow
def test_two_processes_reach_the_accuracy_of_one(tmp_path: Path) -> None:
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip("torchrun is not installed beside this interpreter")
    (tmp_path / "flat.gcnn").write_text(SPEC)
    one = _run([_graphcnn(), "train", "flat.gcnn", *ARGS, "--out", "one"], tmp_path)
    two = _run(
        [
            str(torchrun),
            "--standalone",
            "--nproc_per_node",
            "2",
            _graphcnn(),
            "train",
            "flat.gcnn",
            *ARGS,
            "--out",
            "two",
        ],
        tmp_path,
    )
    assert two["processes"] == 2 and one["processes"] == 1
    assert two["data"] == one["data"]
    assert two["best_val_accuracy"] == pytest.approx(one["best_val_accuracy"], abs=0.01)
    assert two["final"]["train_loss"] == pytest.approx(one["final"]["train_loss"], rel=1e-4)
    assert two["final"]["val_loss"] == pytest.approx(one["final"]["val_loss"], rel=1e-4)
    written = sorted(p.name for p in (tmp_path / "two").iterdir())
    assert written == sorted(p.name for p in (tmp_path / "one").iterdir())
    assert not [p for p in (tmp_path / "two").iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_nproc_launches_torchrun(tmp_path: Path) -> None:
    if not Path(sys.executable).with_name("torchrun").exists():
        pytest.skip("torchrun is not installed beside this interpreter")
    (tmp_path / "flat.gcnn").write_text(SPEC)
    two = _run([_graphcnn(), "train", "flat.gcnn", *ARGS, "--nproc", "2", "--out", "n"], tmp_path)
    assert two["processes"] == 2
    assert (tmp_path / "n" / "best.safetensors").is_file()


def test_the_global_batch_must_divide_among_processes() -> None:
    from graphcnn.train import TrainError
    from graphcnn.train.distributed import Dist, check_batch

    d = Dist(rank=0, world=3, local_rank=0, device=None)
    assert check_batch(63, d) == 21
    with pytest.raises(TrainError, match="must divide evenly among 3 processes"):
        check_batch(64, d)
