"""Every command of ``graphcnn.cli.app.COMMANDS`` answers bad flags and bad paths with one clear
error and exit code 2: an unknown flag, a missing file, a directory, an unreadable file, and
paths with spaces and non-ASCII letters, for its argument and for each of its file options.

The walk is driven by the commands' own parameters, so a new command or file option is covered
without editing this file; :data:`BASE` only says how to call each command when all is well.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from graphcnn.cli import main
from graphcnn.cli.app import COMMANDS

BASE: dict[str, list[str]] = {
    "list": [],
    "check": ["lenet5"],
    "dump": ["lenet5"],
    "passes": [],
    "compile": ["lenet5", "--target", "onnx", "-o", "{out}/m.onnx"],
    "profile": ["lenet5"],
    "analyze": ["lenet5", "--device", "h100-sxm"],
    "import": ["{onnx}"],
    "bench": ["lenet5", "--backend", "torch", "--repeat", "1", "--warmup", "0"],
    "draw": ["lenet5", "-o", "{out}/g.svg"],
    "train": ["lenet5", "--epochs", "1", "-o", "{out}/run"],
    "search": ["lenet5", "--space", "classes=choice(10, 12)", "--trials", "1", "--no-plot"],
}
"""A working call of each command ({out}: a fresh folder, {onnx}: a small valid model)."""

NEEDS: dict[tuple[str, str], list[str]] = {
    ("compile", "calibration"): ["--int8"],
    ("compile", "timing_cache"): ["--target", "tensorrt", "-o", "{out}/m.engine"],
}
"""Flags an option only takes effect with."""

PATH_TEXT = {("train", "data")}
"""Options that take a path but are typed as text (they also accept a name: ``digits``)."""

SPACEY = "dir with spaces ünïcødé"
KINDS = ("missing", "directory", "unreadable", "garbage")


def _is_path(p: click.Parameter) -> bool:
    return isinstance(p.type, (click.Path, click.File)) or p.name in ("spec", "model")


def _is_path_of(cmd: str, p: click.Parameter) -> bool:
    return _is_path(p) or (cmd, p.name) in PATH_TEXT


def _path_params() -> list[tuple[str, str]]:
    out = []
    for cmd in COMMANDS:
        for p in cmd.params:
            if _is_path_of(str(cmd.name), p) and p.name is not None:
                out.append((str(cmd.name), p.name))
    return out


def test_every_command_has_a_working_base_call() -> None:
    assert {str(c.name) for c in COMMANDS} == set(BASE), "add the new command to BASE"


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("onnx")
    out = tmp_path_factory.mktemp("model") / "lenet.onnx"
    result = CliRunner().invoke(main, ["compile", "lenet5", "--target", "onnx", "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out


def _fill(args: list[str], out: Path, onnx_file: Path) -> list[str]:
    return [a.format(out=out, onnx=onnx_file) for a in args]


@contextlib.contextmanager
def _unreadable(path: Path) -> Iterator[None]:
    """``path`` cannot be opened: chmod 000, and (root ignores modes) open() refused."""
    path.chmod(0)
    target = str(path.resolve())
    real_open, real_os_open = builtins.open, os.open

    def check(file: Any) -> None:
        if isinstance(file, (str, os.PathLike)) and os.path.realpath(file) == target:
            raise PermissionError(13, "Permission denied", str(file))

    def fake_open(file: Any, *a: Any, **k: Any) -> Any:
        check(file)
        return real_open(file, *a, **k)

    def fake_os_open(file: Any, *a: Any, **k: Any) -> Any:
        check(file)
        return real_os_open(file, *a, **k)

    mp = pytest.MonkeyPatch()
    mp.setattr(builtins, "open", fake_open)
    mp.setattr(io, "open", fake_open)
    mp.setattr(os, "open", fake_os_open)
    try:
        yield
    finally:
        mp.undo()
        path.chmod(0o644)


def _bad_path(kind: str, root: Path, suffix: str) -> Path:
    folder = root / SPACEY
    folder.mkdir(exist_ok=True)
    p = folder / f"bäd input{suffix}"
    if kind == "directory":
        p.mkdir()
    elif kind in ("unreadable", "garbage"):
        p.write_bytes(b"\x00\xffnot what it should be\n" * 3)
    return p


def _suffix(cmd: str, param: str) -> str:
    return {
        "spec": ".gcnn",
        "model": ".onnx",
        "weights_file": ".pt",
        "calibration": ".npz",
        "timing_cache": ".cache",
        "output": ".onnx" if cmd == "import" else ".py",
        "plot_path": ".png",
        "weights": ".pt",
        "data": "",
        "out": "",
    }.get(param, "")


def _invoke(cmd: str, param: str, value: str, out: Path, onnx_file: Path) -> list[str]:
    command = next(c for c in COMMANDS if c.name == cmd)
    p = next(q for q in command.params if q.name == param)
    args = [cmd, *_fill(BASE[cmd] + NEEDS.get((cmd, param), []), out, onnx_file)]
    if isinstance(p, click.Argument):
        args[1] = value
    else:
        flag = max(p.opts, key=len)
        if flag in args:
            args[args.index(flag) + 1] = value
        else:
            short = [o for o in p.opts if o in args]
            if short:
                args[args.index(short[0]) + 1] = value
            else:
                args += [flag, value]
    return args


def _one_clear_error(result: Any) -> None:
    text = result.output
    assert result.exit_code == 2, (result.exit_code, text, result.exception)
    assert "Traceback" not in text, text
    errors = [ln for ln in text.splitlines() if ln.lower().startswith("error")]
    assert len(errors) == 1, text
    assert "No such command" not in text, text


@pytest.mark.parametrize("cmd", sorted(BASE))
def test_unknown_flag_is_one_clear_error(cmd: str) -> None:
    result = CliRunner().invoke(main, [cmd, "--no-such-flag"])
    _one_clear_error(result)
    assert "--no-such-flag" in result.output


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("cmd_param", _path_params(), ids="-".join)
def test_bad_path_is_one_clear_error(
    cmd_param: tuple[str, str], kind: str, tmp_path: Path, onnx_file: Path
) -> None:
    cmd, param = cmd_param
    writes = param in ("output", "plot_path", "timing_cache")
    if writes and kind in ("missing", "unreadable", "garbage"):
        pytest.skip("a missing output is created and an existing one replaced: not an error")
    if param == "out" and kind != "garbage":
        pytest.skip("an output folder may be missing (created) or exist: only a file is wrong")
    if cmd == "compile" and param == "timing_cache":
        pytest.importorskip("tensorrt", reason="the tensorrt target checks TensorRT first")
    out = tmp_path / "out"
    bad = _bad_path(kind, tmp_path, _suffix(cmd, param))
    args = _invoke(cmd, param, str(bad), out, onnx_file)
    with _unreadable(bad) if kind == "unreadable" else contextlib.nullcontext():
        result = CliRunner().invoke(main, args)
    _one_clear_error(result)
    shown = result.output.replace("\n", " ")
    assert bad.name in shown or SPACEY in shown or "'" + str(bad) in shown, shown
    if cmd == "compile":
        assert not out.exists() or not any(out.iterdir()), "compile wrote despite the error"
