"""``graphcnn train`` from the command line: --json, the deploy path, and one error per bad input.

Bad input (a missing or malformed data folder, a class count the head does not have, a frozen
scope that does not exist, a bad option value) is one message, exit code 2, no traceback and
nothing written. A trained checkpoint deploys with ``graphcnn compile --weights``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from graphcnn.cli import main

pytest.importorskip("torch")
pytest.importorskip("torchvision")

SPEC = """
network tiny(classes = 10) {
  x = input(1, 8, 8)
  x = x -> conv(4, 3, pad: 1) as conv1 -> bn as bn1 -> relu -> flatten
        -> dropout(0.1) as drop -> linear(classes) as fc
  return x
}
"""
FAST = ["--epochs", "1", "--threads", "1", "--batch-size", "128"]


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def spec(tmp_path: Path) -> str:
    path = tmp_path / "tiny.gcnn"
    path.write_text(SPEC)
    return str(path)


def test_json_is_one_object_and_the_checkpoint_deploys(spec: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    r = invoke("train", spec, *FAST, "--out", str(out), "--json")
    assert r.exit_code == 0, r.output
    obj = json.loads(r.stdout)
    for key in (
        "best_val_accuracy",
        "best_epoch",
        "epochs_run",
        "stopped_early",
        "images_per_second",
    ):
        assert key in obj
    assert obj["epochs_run"] == 1 and obj["best_epoch"] == 1
    pytest.importorskip("onnx")
    onnx_file = tmp_path / "tiny.onnx"
    r = invoke(
        "compile",
        spec,
        "--weights",
        str(out / "best.safetensors"),
        "--target",
        "onnx",
        "--pipeline",
        "inference",
        "-o",
        str(onnx_file),
    )
    assert r.exit_code == 0, r.output
    assert onnx_file.stat().st_size > 0


def test_drop_connect_flag_notes_where_it_went(spec: str, tmp_path: Path) -> None:
    r = invoke("train", spec, *FAST, "--drop-connect", "0.2", "--out", str(tmp_path / "run"))
    assert r.exit_code == 0, r.output
    assert "--drop-connect 0.2: on the 1 linear layer(s)" in r.output


def test_human_output_has_a_summary(spec: str, tmp_path: Path) -> None:
    r = invoke("train", spec, *FAST, "--out", str(tmp_path / "run"))
    assert r.exit_code == 0, r.output
    assert "best validation accuracy" in r.stdout and "epoch 1/1" in r.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "{tmp}/missing"], "no such folder"),
        (["--data", "{tmp}/empty"], "Couldn't find any class folder"),
        (["--set", "classes=7"], "head has 7 outputs but --data digits has 10 classes"),
        (["--freeze", "layer4"], "--freeze layer4: no layer with parameters"),
        (["--freeze-until", "head"], "--freeze-until head: no layer with parameters"),
        (["--cutout", "8"], "--cutout 8 does not fit inside a 8x8 input"),
        (["--augment", "flip,jitter"], "unknown policy 'jitter'"),
        (["--weights", "{tmp}/none.safetensors"], "no such file"),
        (["--resume"], "holds no run to resume"),
        (["--freeze", "conv1", "--freeze-until", "fc"], "exclusive"),
        (["--drop-connect", "1"], "--drop-connect"),
    ],
)
def test_bad_input_is_one_error(spec: str, tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "empty").mkdir()
    out = tmp_path / "run"
    r = invoke(
        "train", spec, *FAST, "--out", str(out), *[a.replace("{tmp}", str(tmp_path)) for a in args]
    )
    assert r.exit_code == 2, r.output
    assert message in r.output
    assert "Traceback" not in r.output
    assert not out.exists()
