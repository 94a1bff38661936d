"""The command line: list, check, dump and profile, human and --json output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import REPO
from helpers.cli import invoke

from graphcnn import zoo


def run(*args: str) -> str:
    return invoke(*args).output


def test_help_explains_every_command() -> None:
    text = run("--help")
    for cmd in ("list", "check", "dump", "profile"):
        assert cmd in text
    profile_help = run("profile", "--help")
    for opt in ("--network", "--set", "--input", "--batch", "--depth", "--json", "--training"):
        assert opt in profile_help


def test_list_json_covers_the_zoo() -> None:
    data = json.loads(run("list", "--json"))
    rows = {r["name"]: r for r in data["models"]}
    assert set(rows) == set(zoo.names())
    assert rows["resnet50"]["params"] == 25_557_032 and rows["inception_v3"]["input"] == [
        3,
        299,
        299,
    ]


def test_list_table() -> None:
    text = run("list")
    assert "resnet50" in text and "25,557,032" in text


def test_check_and_dump() -> None:
    assert run("check", "resnet18").startswith("ok resnet18: ")
    dump = run("dump", "resnet18")
    assert "%layer1.0.conv1: f32[N,64,56,56] = conv2d(%maxpool)" in dump
    assert "# resnet.gcnn:" in dump


def test_check_every_network_of_a_file(tmp_path: Path) -> None:
    spec = tmp_path / "two.gcnn"
    spec.write_text("""
network a(c = 4) { x = input(3, 8, 8) -> conv(c, 3)
  return x }
network b(c) { x = input(3, 8, 8) -> conv(c, 3)
  return x }
model a8 = a(c: 8)
""")
    out = json.loads(run("check", str(spec), "--json"))
    assert [(r["network"], r["ok"]) for r in out["results"]] == [
        ("a", True),
        ("b", None),
        ("a8", True),
    ]


def test_profile_json_is_one_object_with_the_documented_keys() -> None:
    data = json.loads(run("profile", "resnet50", "--json"))
    assert set(data) >= {"model", "input", "convention", "totals", "layers", "training_only"}
    assert data["model"] == "resnet50" and data["input"] == [3, 224, 224]
    assert data["totals"] == {
        "params": 25_557_032,
        "macs": 4_089_184_256,
        "flops": data["totals"]["flops"],
        "activation_bytes": data["totals"]["activation_bytes"],
        "weight_bytes": data["totals"]["weight_bytes"],
    }
    row = data["layers"][0]
    assert {"name", "op", "output", "params", "macs", "flops"} <= set(row)
    assert row["name"] == "conv1" and row["output"] == [64, 112, 112]
    assert sum(r["macs"] for r in data["layers"]) == data["totals"]["macs"]
    assert "macs" in data["convention"] and "flops" in data["convention"]


def test_profile_depth_aggregates_rows_and_keeps_totals() -> None:
    full = json.loads(run("profile", "googlenet", "--json"))
    top = json.loads(run("profile", "googlenet", "--json", "--depth", "1"))
    names = [r["name"] for r in top["layers"]]
    assert names[:4] == ["conv1", "maxpool1", "conv2", "conv3"]
    assert "inception3a" in names and "aux1" in names and names[-1] == "fc"
    assert top["totals"] == full["totals"]
    row = next(r for r in top["layers"] if r["name"] == "inception3a")
    assert row["op"] != "conv2d" and row["output"] == [256, 28, 28]


def test_training_only_parts_are_reported_beside_the_totals() -> None:
    inf = json.loads(run("profile", "inception_v3", "--json"))
    train = json.loads(run("profile", "inception_v3", "--json", "--training"))
    assert inf["totals"]["params"] + inf["training_only"]["params"] == 27_161_264
    assert train["totals"]["params"] == 27_161_264
    assert round(inf["totals"]["macs"] / 1e9, 3) == 5.713


def test_profile_set_input_batch_and_network(tmp_path: Path) -> None:
    data = json.loads(
        run(
            "profile",
            "resnet18",
            "--json",
            "--set",
            "classes=10",
            "--input",
            "3x32x32",
            "--batch",
            "8",
        )
    )
    assert data["input"] == [3, 32, 32] and data["layers"][-1]["output"] == [10]
    one = json.loads(
        run("profile", "resnet18", "--json", "--set", "classes=10", "--input", "3x32x32")
    )
    assert data["totals"]["macs"] == 8 * one["totals"]["macs"]
    assert data["totals"]["params"] == one["totals"]["params"]
    spec = tmp_path / "n.gcnn"
    spec.write_text(
        "network tiny(w = 2) { x = input(1, 4, 4) -> conv(w, 3)\n return x }\n"
        "network other() { x = input(1, 4, 4)\n return x }"
    )
    data = json.loads(run("profile", str(spec), "-n", "tiny", "--set", "w=3", "--json"))
    assert data["totals"]["params"] == 3 * 9 + 3


def test_profile_table_prints_totals_and_convention() -> None:
    text = run("profile", "resnet18", "--depth", "1")
    assert "layer1" in text and "11,689,512" in text and "convention:" in text


def test_installed_console_script_runs() -> None:
    exe = Path(sys.executable).with_name("graphcnn")
    proc = subprocess.run(
        [str(exe), "profile", "lenet5", "--json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["totals"]["params"] == 61_706
