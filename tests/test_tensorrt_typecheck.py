"""tools/typecheck_tensorrt: the TensorRT backend (every module of backends/to_tensorrt/)
type-checks against TensorRT 10's stubs, and the check catches a wrong API name, keyword or
argument type, given a modified module (FILE) or a modified copy of the package (DIR).

The stubs come from PyPI (``tensorrt-stubs``, fetched by tools/tensorrt_stubs.py); where they
cannot be fetched (offline) the mypy tests are skipped with that reason. The stub patching
itself is tested without any download.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

CHECK = REPO / "tools" / "typecheck_tensorrt"
PACKAGE = REPO / "backends" / "to_tensorrt"
MODULES = sorted(PACKAGE.glob("*.py"))
EXIT_UNAVAILABLE = 3


def _stubs_tool():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(
        "tensorrt_stubs", REPO / "tools" / "tensorrt_stubs.py"
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def test_patch_renames_keyword_parameters_and_fills_defaults() -> None:
    tool = _stubs_tool()
    src = (
        "from __future__ import annotations\n"
        "import typing\n"
        "class P:\n"
        "    def f(self, in: list[int], out: list[int]) -> int:\n"
        '        """:arg in: inputs"""\n'
        "    def g(self, a: int, b: W = None, c: dict[str, int], *, d: int) -> None:\n"
        "        ...\n"
        "    def h(self, x: typing_extensions.Buffer, p: capsule) -> None:\n"
        "        ...\n"
    )
    with pytest.raises(SyntaxError):
        compile(src, "<stub>", "exec")
    out, notes = tool.patch_source(src)
    compile(out, "<stub>", "exec")  # parses now
    assert "def f(self, in_: list[int], out: list[int]) -> int:" in out
    assert ":arg in: inputs" in out  # docstrings untouched
    assert "def g(self, a: int, b: W = None, c: dict[str, int] = ..., *, d: int) -> None:" in out
    assert out.startswith("from __future__ import annotations\nimport typing_extensions\n")
    assert "capsule = _typing.Any" in out
    assert len(notes) == 4


def _run(*paths: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        ["bash", str(CHECK), *map(str, paths)], capture_output=True, text=True, timeout=900,
        cwd=REPO,
    )  # fmt: skip
    if proc.returncode == EXIT_UNAVAILABLE:
        pytest.skip(f"tensorrt-stubs cannot be fetched here: {proc.stderr.strip()[-300:]}")
    return proc


MISTAKES = [
    # (original, mistake, what mypy must say)
    (
        "builder.create_network(0)",
        "builder.create_netwrk(0)",
        '"Builder" has no attribute "create_netwrk"',
    ),
    (
        "config.set_timing_cache(tc, ignore_mismatch=False)",
        "config.set_timing_cache(tc, ignore_mismatched=False)",
        'Unexpected keyword argument "ignore_mismatched" for "set_timing_cache"',
    ),
    (
        "config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace)",
        "config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, str(workspace))",
        'Argument 2 to "set_memory_pool_limit" of "IBuilderConfig" has incompatible type "str"',
    ),
    (
        "self.context.set_tensor_address(spec.name, x.data_ptr())",
        "self.context.set_tensor_addr(spec.name, x.data_ptr())",
        '"IExecutionContext" has no attribute "set_tensor_addr"',
    ),
]


def _holder(original: str) -> Path:
    """The one module of the package that holds ``original``, once."""
    holders = [p for p in MODULES if original in p.read_text()]
    assert len(holders) == 1, f"{original!r} is in {[p.name for p in holders] or 'no module'}"
    assert holders[0].read_text().count(original) == 1, f"{original!r} twice in {holders[0]}"
    return holders[0]


@pytest.mark.slow
def test_backend_typechecks_and_mistakes_fail(tmp_path: Path) -> None:
    if shutil.which("bash") is None:
        pytest.skip("bash is not available")
    good = _run()
    assert good.returncode == 0, good.stdout + good.stderr
    # every module of the package is checked
    assert f"Success: no issues found in {len(MODULES)} source files" in good.stdout
    for original, mistake, says in MISTAKES:
        source = _holder(original)
        bad = tmp_path / source.name
        bad.write_text(source.read_text().replace(original, mistake))
        proc = _run(bad)
        assert proc.returncode == 1, f"{mistake!r} passed the check:\n{proc.stdout}{proc.stderr}"
        assert says in proc.stdout, proc.stdout
        assert str(bad) in proc.stdout  # errors name the checked file
        bad.unlink()


@pytest.mark.slow
def test_a_package_folder_replaces_the_whole_package(tmp_path: Path) -> None:
    """DIR stands for backends/to_tensorrt/: mistakes in two of its modules are both found."""
    if shutil.which("bash") is None:
        pytest.skip("bash is not available")
    copy = tmp_path / "to_tensorrt"
    copy.mkdir()
    for p in MODULES:
        (copy / p.name).write_text(p.read_text())
    found = []
    for original, mistake, says in (MISTAKES[0], MISTAKES[3]):
        source = copy / _holder(original).name
        source.write_text(source.read_text().replace(original, mistake))
        found.append((source, says))
    assert found[0][0] != found[1][0]  # two modules
    proc = _run(copy)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    for source, says in found:
        assert any(
            line.startswith(f"{source}:") and says in line for line in proc.stdout.splitlines()
        ), proc.stdout
    assert "Found 2 errors in 2 files" in proc.stdout


def test_checker_refuses_a_missing_file(tmp_path: Path) -> None:
    proc = subprocess.run(
        ["bash", str(CHECK), str(tmp_path / "nope.py")], capture_output=True, text=True
    )
    assert proc.returncode == 2 and "no such file" in proc.stderr


def test_checker_refuses_a_file_that_replaces_no_module(tmp_path: Path) -> None:
    stray = tmp_path / "buid.py"
    stray.write_text("")
    proc = subprocess.run(["bash", str(CHECK), str(stray)], capture_output=True, text=True)
    assert proc.returncode == 2 and "has no module buid.py" in proc.stderr
    proc = subprocess.run(["bash", str(CHECK), str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 2 and "not a package" in proc.stderr


def test_stub_tool_runs_as_a_script_without_network_when_given_a_wheel(tmp_path: Path) -> None:
    """--wheel builds the stub folder from a local wheel (here: a tiny fake one)."""
    import zipfile

    wheel = tmp_path / "tensorrt_stubs-0.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("tensorrt/__init__.pyi", "from tensorrt_bindings.tensorrt import *\n")
        z.writestr(
            "tensorrt_bindings/tensorrt.pyi",
            "from __future__ import annotations\nclass B:\n    def f(self, in: int) -> None: ...\n",
        )
    proc = subprocess.run(
        [sys.executable, str(REPO / "tools" / "tensorrt_stubs.py"), "--dest", str(tmp_path / "s"),
         "--version", "0.0", "--wheel", str(wheel), "--mypy-config", str(tmp_path / "m.ini")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    folder = Path(proc.stdout.strip())
    assert folder == tmp_path / "s" / "0.0"
    assert "in_: int" in (folder / "tensorrt_bindings" / "tensorrt.pyi").read_text()
    ini = (tmp_path / "m.ini").read_text()
    assert f"mypy_path = {folder}" in ini and "strict = True" in ini
    assert "ignore_missing_imports = False" in ini and "follow_imports = silent" in ini
