"""``graphcnn search`` from the command line: one JSON object, pareto.png, located errors with
exit code 2, the cell-search example with training, several worker processes on one study."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO
from helpers.cli import invoke

pytest.importorskip("optuna")

CELLS = str(REPO / "docs" / "examples" / "nasnet_cells.gcnn")
OPS = "choice(sep3, sep5, pool3, skip)"


def test_json_is_one_object_with_trials_and_pareto(tmp_path: Path) -> None:
    r = invoke(
        "search",
        CELLS,
        "--space",
        f"n0={OPS}",
        "--space",
        "c=choice(8, 16, 32)",
        "--max-params",
        "60K",
        "--trials",
        "4",
        "--out",
        str(tmp_path),
        "--json",
    )
    obj = json.loads(r.stdout)
    assert obj["counts"]["complete"] >= 4
    for t in obj["trials"]:
        assert {"params", "cost", "value", "state"} <= t.keys()
        assert (t["cost"]["params"] > 60_000) == (t["state"] == "rejected")
    assert obj["pareto"] and set(obj["pareto"]) <= {t["number"] for t in obj["trials"]}
    png = tmp_path / "pareto.png"
    assert obj["png"] == str(png) and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_table_names_the_rejected_and_the_front(tmp_path: Path) -> None:
    r = invoke(
        "search",
        CELLS,
        "--space",
        "c=choice(8, 64)",
        "--sampler",
        "grid",
        "--max-macs",
        "3M",
        "--trials",
        "1",
        "--out",
        str(tmp_path),
        "--no-plot",
    )
    assert "rejected by cost before training" in r.output
    assert "rejected: MACs" in r.output and "*pareto" in r.output
    assert not (tmp_path / "pareto.png").exists()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--space", "c=choice(8, 16)", "--space", "cells=int(3, 1)"], "--space 2:1:11: error:"),
        (["--space", "nope=choice(1, 2)"], "'nope' is not a parameter of the network"),
        (["--space", "c=choice(8)", "--max-macs", "lots"], "--max-macs: expected a count"),
        (["--space", "c=choice(8)", "--max-latency", "2ms"], "--max-latency needs a latency"),
        (["--space", "c=choice(8)", "--objective", "accuracy"], "cannot read term 'accuracy'"),
        ([], "nothing to search"),
    ],
)
def test_bad_input_is_one_error_and_exit_2(tmp_path: Path, args: list[str], words: str) -> None:
    r = invoke("search", CELLS, *args, "--out", str(tmp_path / "s"), code=2)
    assert words in r.output and "Traceback" not in r.output
    assert not (tmp_path / "s" / "pareto.png").exists()


def test_latency_limit_uses_the_roofline(tmp_path: Path) -> None:
    r = invoke(
        "search",
        "resnet18",
        "--set",
        "classes=10",
        "--input",
        "3x32x32",
        "--space",
        "layers=choice([1,1,1,1], [2,2,2,2], [3,4,6,3])",
        "--sampler",
        "grid",
        "--device",
        "h100-sxm",
        "--max-latency",
        "8us",
        "--objective",
        "latency",
        "--trials",
        "3",
        "--out",
        str(tmp_path),
        "--json",
    )
    trials = json.loads(r.stdout)["trials"]
    assert len(trials) == 3
    for t in trials:
        assert (t["cost"]["latency_s"] > 8e-6) == (t["state"] == "rejected")
        if t["state"] == "complete":
            assert t["value"] == t["cost"]["latency_s"]


@pytest.mark.slow
def test_cell_search_trains_on_digits(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    r = invoke(
        "search",
        CELLS,
        *(a for i in range(4) for a in ("--space", f"n{i}={OPS}")),
        "--space",
        "lr=loguniform(1e-3, 1e-2)",
        "--max-macs",
        "2M",
        "--objective",
        "val_accuracy",
        "--train",
        "epochs=1",
        "--train",
        "threads=1",
        "--trials",
        "2",
        "--out",
        str(tmp_path),
        "--json",
    )
    obj = json.loads(r.stdout)
    assert obj["direction"] == "maximize"
    done = [t for t in obj["trials"] if t["state"] == "complete"]
    assert len(done) == 2
    for t in done:
        assert t["cost"]["macs"] <= 2_000_000 and 0.0 <= t["value"] <= 1.0
        assert t["value"] == t["trained"]["val_accuracy"] and "lr" in t["params"]
    assert all(t["cost"]["macs"] > 2_000_000 for t in obj["trials"] if t["state"] == "rejected")


@pytest.mark.slow
@pytest.mark.parametrize("storage", [None, "journal"])
def test_two_workers_share_one_study(tmp_path: Path, storage: str | None) -> None:
    extra = [] if storage is None else ["--storage", f"journal:{tmp_path / 'study.log'}"]
    cmd = [
        sys.executable,
        "-m",
        "graphcnn.cli",
        "search",
        CELLS,
        "--space",
        f"n0={OPS}",
        "--space",
        f"n2={OPS}",
        "--space",
        "c=int(8, 32)",
        "--trials",
        "30",
        "--workers",
        "2",
        "--out",
        str(tmp_path),
        "--json",
        "--no-plot",
        *extra,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=REPO)
    obj = json.loads(out.stdout)
    assert obj["storage"].startswith("journal:" if storage else "sqlite:")
    assert (tmp_path / ("study.log" if storage else "study.db")).is_file()
    assert 30 <= obj["counts"]["complete"] <= 31  # each process may finish its last trial
    assert {t["worker"] for t in obj["trials"]} == {0, 1}  # both processes evaluated trials
    numbers = sorted(t["number"] for t in obj["trials"])
    assert numbers == list(range(len(numbers)))


def test_measured_latency_in_onnx_runtime(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    r = invoke(
        "search",
        CELLS,
        "--space",
        "c=choice(8, 16)",
        "--sampler",
        "grid",
        "--measure",
        "ort",
        "--max-latency",
        "10s",
        "--objective",
        "measured",
        "--trials",
        "2",
        "--out",
        str(tmp_path),
        "--json",
        "--no-plot",
    )
    trials = json.loads(r.stdout)["trials"]
    assert len(trials) == 2 and all(t["state"] == "complete" for t in trials)
    for t in trials:
        assert 0 < t["cost"]["measured_s"] < 10 and t["value"] == t["cost"]["measured_s"]
        assert "latency_s" not in t["cost"]  # no --device: no roofline estimate
